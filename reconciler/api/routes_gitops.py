"""/api/v1/sync: environments' sync status and history (the Environment objects), a pass now, a
dry-run pass (diff), and suspending or resuming one environment's sync."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from reconciler.spec import SpecError
from reconciler.store.errors import NotFound
from reconciler.sync import status as status_book

from .auth import check_namespace_access, grant_of, require_read, require_write
from .common import ApiError, body_doc, check_name, json_response, optional_json_body, state_of

router = APIRouter(prefix="/api/v1/sync", tags=["sync"])
NO_REPO = "no repository configured: start the daemon with `reconciler up --repo URL|PATH`"


@router.get("/status", dependencies=[Depends(require_read)],
            summary="Each environment: branch, namespace, commit applied, phase and why")
def sync_status(request: Request) -> Response:
    state = state_of(request)
    loop = state.sync_loop
    grant = grant_of(request)
    items = [status_book.summary(e) for e in status_book.list_environments(state.store)]
    return json_response({
        "items": [i for i in items if grant.sees(i["namespace"])],
        "syncing": loop is not None,
        "firstPassDone": bool(loop and loop.first_pass_done),
        "passes": loop.passes if loop else 0,
        "lastError": loop.last_error if loop else "",
    })


@router.get("/history/{env}", dependencies=[Depends(require_read)],
            summary="The last syncs of an environment, newest first, with their plans")
def sync_history(request: Request, env: str) -> Response:
    check_name(env, "environment")
    found = status_book.read(state_of(request).store, env)
    if found is None:
        raise ApiError(404, f"environment {env!r} has not been synced yet")
    check_namespace_access(request, (found.get("spec") or {}).get("namespace"))
    return json_response({"items": list(reversed((found.get("status") or {}).get("history") or []))})


@router.get("/diff", dependencies=[Depends(require_read)],
            summary="What a sync pass would do now, applied nowhere (`reconciler diff -o json`'s objects)")
async def sync_diff(request: Request,
                    env: str | None = Query(None, description="only this environment")) -> Response:
    loop = state_of(request).sync_loop
    if loop is None:
        raise ApiError(503, NO_REPO)
    if env:
        check_name(env, "environment")
    try:
        results = await run_in_threadpool(loop.dry_run, env)
    except SpecError as exc:
        raise ApiError(409, "cannot read the repository's environments", [str(p) for p in exc.problems]) from None
    except KeyError as exc:
        raise ApiError(404, str(exc.args[0])) from None
    grant = grant_of(request)
    if env and results and not grant.sees(results[0].namespace):
        check_namespace_access(request, results[0].namespace)
    return json_response({"items": [r.to_dict() for r in results if grant.sees(r.namespace)]})


@router.post("/", dependencies=[Depends(require_write)], status_code=202, include_in_schema=False)
@router.post("", dependencies=[Depends(require_write)], status_code=202,
             summary="Sync now: 202 and a pass soon; with wait=true, 200 and the pass's results")
async def sync_now(request: Request, wait: bool = False,
                   env: str | None = Query(None, description="with wait: only this environment")) -> Response:
    loop = state_of(request).sync_loop
    if loop is None:
        raise ApiError(503, NO_REPO)
    if not wait:
        if env:
            raise ApiError(400, "env needs wait=true (a background pass syncs every environment)")
        check_namespace_access(request, None)  # a pass touches every environment
        loop.trigger()
        return json_response({"triggered": True}, 202)
    if env:
        check_name(env, "environment")
    # An environment not synced yet may be new in reconciler.yaml: a full pass finds out, and a bad
    # name never reaches SyncLoop.run_pass (whose failure would show as the loop's lastError).
    found = status_book.read(state_of(request).store, env) if env else None
    known = env is None or found is not None
    # A scoped token syncs the environments of its namespaces only, named one at a time.
    check_namespace_access(request, (found.get("spec") or {}).get("namespace") if found else None)
    results = await run_in_threadpool(loop.run_pass, env if known else None)
    if env:
        results = [r for r in results if r.environment == env]
        if not results and not loop.last_error:
            raise ApiError(404, f"no environment {env!r} in the repository's reconciler.yaml")
    return json_response({"items": [r.to_dict() for r in results], "error": loop.last_error})


def _set_suspended(request: Request, env: str, suspended: bool, reason: str) -> Response:
    check_name(env, "environment")
    found = status_book.read(state_of(request).store, env)
    # A scoped token pauses only the environments of its namespaces (an unknown one needs every namespace).
    check_namespace_access(request, (found.get("spec") or {}).get("namespace") if found else None)
    try:
        obj = status_book.set_suspended(state_of(request).store, env, suspended, reason)
    except NotFound:
        raise ApiError(404, f"environment {env!r} has not been synced yet") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    loop = state_of(request).sync_loop
    if loop is not None and not suspended:
        loop.trigger()  # catch up now rather than at the next poll
    return json_response(status_book.summary(obj))


@router.put("/environments/{env}/suspend", dependencies=[Depends(require_write)],
            summary="Stop syncing one environment (polls, webhooks, sync) until resumed; kept across restarts",
            openapi_extra=body_doc("optional", {"reason": "incident 42: hold prod"}, False))
def suspend_environment(request: Request, env: str, body: Any = Depends(optional_json_body)) -> Response:
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    reason = (body or {}).get("reason") or ""
    if not isinstance(reason, str):
        raise ApiError(400, "reason must be a string")
    return _set_suspended(request, env, True, reason)


@router.put("/environments/{env}/resume", dependencies=[Depends(require_write)],
            summary="Sync one environment again, starting with a pass now")
def resume_environment(request: Request, env: str) -> Response:
    return _set_suspended(request, env, False, "")

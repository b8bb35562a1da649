"""/api/v1/sync: environments' sync status and history (the Environment objects), a pass now, and a
dry-run pass (diff)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from reconciler.spec import SpecError
from reconciler.sync import status as status_book

from .auth import check_namespace_access, grant_of, require_read, require_write
from .common import ApiError, check_name, json_response, state_of

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

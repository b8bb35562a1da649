"""Push webhooks: GitHub (and Gitea/Forgejo, same header) and GitLab start a sync of the pushed branch.

Order of checks: no secret configured -> 404 (the endpoint does not exist); bad or malformed signature
-> 401; no repository configured -> 503; a body nested too deeply -> 400; not a branch push (ping, tag,
other events) -> 204; a delivery seen before (same delivery id, or the same body) -> 200 and nothing
happens (deliveries.py); every environment of the branch suspended -> 200 and no pass; a new push -> 202
and SyncLoop.trigger(branch). The raw body is verified before it is parsed. A push only ever starts a
pass that fetches the branch head from the remote: the commit named in the body is never applied, so no
body, old or forged, can move an environment back.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from reconciler.source.webhook import pushed_branch, verify_signature, verify_token
from reconciler.sync import status as status_book

from . import deliveries, nesting
from .common import ApiError, json_response, state_of

log = logging.getLogger("reconciler.api.webhook")
router = APIRouter(prefix="/api/v1/webhook", tags=["webhooks"])


def _secret(request: Request) -> str:
    secret = state_of(request).settings.webhook_secret
    if not secret:
        raise ApiError(404, "webhooks are off: set RECONCILER_WEBHOOK_SECRET (or _FILE) on the daemon")
    return secret


def _payload(body: bytes) -> object:
    """The parsed body; None when it is not JSON (not a push, then); 400 when nested too deeply."""
    try:
        return nesting.loads(body)
    except nesting.TooDeep as exc:
        raise ApiError(400, str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        return None


async def _accept(request: Request, body: bytes, payload: object, is_push: bool, provider: str,
                  delivery_id: str | None) -> Response:
    state = state_of(request)
    loop = state.sync_loop
    if loop is None:
        raise ApiError(503, "no repository configured: start the daemon with `reconciler up --repo URL|PATH`")
    branch = pushed_branch(payload) if is_push and isinstance(payload, dict) else None
    if branch is None:
        return Response(status_code=204)
    if await run_in_threadpool(deliveries.seen_before, state.store, provider, delivery_id, body):
        log.warning("%s push webhook for branch %s ignored: delivery %s was received before (a replay)",
                    provider, branch, delivery_id or "(no id, same body)")
        return json_response({"triggered": False, "duplicate": True, "branch": branch,
                              "message": "this delivery was received before; nothing done"}, 200)
    envs = [e for e in await run_in_threadpool(status_book.list_environments, state.store)
            if (e.get("spec") or {}).get("branch") == branch]
    suspended = [e["metadata"]["name"] for e in envs if status_book.is_suspended(e)]
    if envs and len(suspended) == len(envs):
        # Every environment of the branch is paused: a pass would do nothing for this push.
        log.info("%s push webhook for branch %s ignored: environment(s) %s suspended", provider, branch,
                 ", ".join(suspended), extra={"branch": branch})
        return json_response({"triggered": False, "branch": branch, "suspended": suspended}, 200)
    log.info("%s push webhook for branch %s", provider, branch, extra={"branch": branch})
    loop.trigger(branch)
    return json_response({"triggered": True, "branch": branch, "suspended": suspended}, 202)


@router.post("/github", summary="GitHub push webhook (X-Hub-Signature-256); also Gitea and Forgejo")
async def github(request: Request) -> Response:
    secret = _secret(request)
    body = await request.body()
    if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
        raise ApiError(401, "invalid or missing X-Hub-Signature-256")
    event = request.headers.get("x-github-event") or request.headers.get("x-gitea-event") or "push"
    delivery = request.headers.get("x-github-delivery") or request.headers.get("x-gitea-delivery")
    return await _accept(request, body, _payload(body), event == "push", "github", delivery)


@router.post("/gitlab", summary="GitLab push webhook (X-Gitlab-Token)")
async def gitlab(request: Request) -> Response:
    secret = _secret(request)
    if not verify_token(secret, request.headers.get("x-gitlab-token")):
        raise ApiError(401, "invalid or missing X-Gitlab-Token")
    body = await request.body()
    payload = _payload(body)
    kind = payload.get("object_kind") if isinstance(payload, dict) else None
    event = request.headers.get("x-gitlab-event", "Push Hook")
    return await _accept(request, body, payload, event == "Push Hook" and kind in (None, "push"), "gitlab",
                         request.headers.get("x-gitlab-event-uuid"))

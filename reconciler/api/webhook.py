"""Push webhooks: GitHub (and Gitea/Forgejo, same header) and GitLab start a sync of the pushed branch.

Order of checks: no secret configured -> 404 (the endpoint does not exist); bad signature -> 401;
no repository configured -> 503; not a branch push (ping, tag, other events) -> 204; a push -> 202
and SyncLoop.trigger(branch), or 200 and no pass when every environment of the branch is suspended.
The raw body is verified before it is parsed.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reconciler.source.webhook import pushed_branch, verify_signature, verify_token
from reconciler.sync import status as status_book

from .common import ApiError, json_response, state_of

log = logging.getLogger("reconciler.api.webhook")
router = APIRouter(prefix="/api/v1/webhook", tags=["webhooks"])


def _secret(request: Request) -> str:
    secret = state_of(request).settings.webhook_secret
    if not secret:
        raise ApiError(404, "webhooks are off: set RECONCILER_WEBHOOK_SECRET (or _FILE) on the daemon")
    return secret


def _accept(request: Request, body: bytes, is_push: bool, provider: str) -> Response:
    loop = state_of(request).sync_loop
    if loop is None:
        raise ApiError(503, "no repository configured: start the daemon with `reconciler up --repo URL|PATH`")
    branch = pushed_branch(body) if is_push else None
    if branch is None:
        return Response(status_code=204)
    envs = [e for e in status_book.list_environments(state_of(request).store)
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
    return _accept(request, body, event == "push", "github")


@router.post("/gitlab", summary="GitLab push webhook (X-Gitlab-Token)")
async def gitlab(request: Request) -> Response:
    secret = _secret(request)
    if not verify_token(secret, request.headers.get("x-gitlab-token")):
        raise ApiError(401, "invalid or missing X-Gitlab-Token")
    body = await request.body()
    try:
        kind = json.loads(body).get("object_kind")
    except (ValueError, AttributeError):
        kind = None
    event = request.headers.get("x-gitlab-event", "Push Hook")
    return _accept(request, body, event == "Push Hook" and kind in (None, "push"), "gitlab")

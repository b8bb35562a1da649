"""create_app(state): the FastAPI application of the daemon's API.

Routes live in routes_workflows.py, routes_objects.py, routes_gitops.py and webhook.py; this module
adds what is common to all of them: the body-size limit and path guard (pure ASGI, before anything is
parsed), one error format ({"code", "message", "problems"}), /healthz, /readyz and the /metrics hook.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from reconciler.operations import OperationError
from reconciler.store.errors import AlreadyExists, Conflict, DamagedStore, NotFound, StoreError, TransientStoreError

from . import routes_gitops, routes_objects, routes_workflows, webhook
from .common import ApiError, ApiState, error_response, json_response, state_of

log = logging.getLogger("reconciler.api")

__all__ = ["ApiState", "create_app"]


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: 413 for a body over the limit (by Content-Length, or counted as it streams in),
    400 for a path with `.`/`..` segments, empty segments or encoded slashes, before any route runs."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad = _bad_path(scope)
        if bad:
            await _send(send, 400, f"invalid path: {bad}")
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _send(send, 413 if length.isdigit() else 400,
                        f"request body over {self.max_body} bytes" if length.isdigit() else "bad Content-Length")
            return
        seen, started = 0, False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _send(send, 413, f"request body over {self.max_body} bytes")


def _bad_path(scope: dict) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    lowered = raw.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw or b"%00" in lowered:
        return "encoded slashes, backslashes and NUL are not allowed"
    segments = scope["path"].split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is fine
    if any(s in ("", ".", "..") for s in segments):
        return "'.', '..' and empty segments are not allowed"
    return ""


async def _send(send: Any, status: int, message: str) -> None:
    response = error_response(status, message)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _version() -> str:
    try:
        return metadata.version("reconciler")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def create_app(state: ApiState) -> FastAPI:
    app = FastAPI(title="reconciler", version=_version(),
                  description="The reconciler daemon's API: workflows, cron workflows, GitOps sync, webhooks. "
                              "See docs/API.md.",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.api = state
    app.include_router(routes_workflows.router)
    app.include_router(routes_objects.router)
    app.include_router(routes_gitops.router)
    app.include_router(webhook.router)
    _add_health(app)
    _add_error_handlers(app)
    if state.metrics_app is not None:
        # The metrics module's ASGI app, open like the health checks.
        app.router.routes.append(Route("/metrics", _AsgiEndpoint(state.metrics_app), include_in_schema=False))
    app.add_middleware(Guard, max_body=state.settings.max_body)
    return app


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive (always 200)")
    def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"],
             summary="200 when the store answers and, with a repository, the first sync pass has finished")
    def readyz(request: Request) -> Response:
        state = state_of(request)
        try:
            state.store.current_version()
        except Exception as exc:  # any failure of the store means not ready
            return json_response({"status": "not ready", "reason": f"store: {exc}"}, 503)
        loop = state.sync_loop
        if loop is not None and not loop.first_pass_done:
            return json_response({"status": "not ready", "reason": "the first sync pass has not finished"}, 503)
        return json_response({"status": "ready"})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.problems, exc.headers)

    @app.exception_handler(OperationError)
    async def operation_error(_: Request, exc: OperationError) -> Response:
        return error_response(exc.status, str(exc), [str(p) for p in exc.problems])

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, (Conflict, AlreadyExists)) else 400
        if isinstance(exc, (DamagedStore, TransientStoreError)):
            status = 503  # the daemon's own store, not the request, is at fault
        return error_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            where = (detail.get("ctx") or {}).get("error", "")
            return error_response(400, f"malformed JSON body{': ' + str(where) if where else ''}")
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors]
        return error_response(422, "invalid request", problems)

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> Response:
        # JSON bodies are depth-checked before parsing (nesting.py); this catches what else recurses on
        # input, such as a YAML manifest nested thousands of levels deep: bad input, not a server error.
        return error_response(400, "input nested too deeply to read")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


class _AsgiEndpoint:
    """Starlette treats a plain function as a request -> response endpoint; prometheus-client's
    app is an ASGI function, so it is handed over as an object with __call__ (an ASGI app)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)

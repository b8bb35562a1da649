"""What every route module shares: the state the app serves, errors, name checks, JSON replies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from reconciler import names
from reconciler.store.base import ObjectStore

from . import nesting
from .settings import ApiSettings


@dataclass
class ApiState:
    """Everything the routes use. The daemon fills it; tests can build one on a store of their own."""

    store: ObjectStore  # the API's own connection: never the runner's or the sync loop's
    home: Path
    settings: ApiSettings
    sync_loop: Any = None  # reconciler.sync.SyncLoop when the daemon syncs a repository
    repo: str | None = None
    # Hook for the metrics module: an ASGI app (e.g. prometheus_client.make_asgi_app(registry)) that
    # create_app serves, unauthenticated, at /metrics. None: /metrics answers 404.
    metrics_app: Any = None
    # Encoded list replies by (kind, namespace, limit), each with the store version it was read at: a
    # list is answered again without reading or encoding anything while nothing has been written.
    list_cache: dict = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []
        self.headers = headers


def state_of(request: Request) -> ApiState:
    return request.app.state.api


def check_name(name: str, what: str = "name") -> str:
    """A name in a URL path, checked as Kubernetes checks names (a DNS-1123 subdomain), or a 400."""
    try:
        names.check_name(name, what)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return name


def check_namespace(namespace: str) -> str:
    """A namespace in a URL path (a DNS-1123 label), or a 400."""
    try:
        names.check_namespace(namespace)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return namespace


def error_body(status: int, message: str, problems: list[str] | None = None) -> dict:
    return {"code": status, "message": message, "problems": problems or []}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON straight from plain dicts: skips FastAPI's per-field encoder, which costs more than the
    store read on a list of a thousand workflows."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, problems: list[str] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return json_response(error_body(status, message, problems), status, headers)


async def _json(request: Request, required: bool) -> Any:
    """The body as JSON whatever its Content-Type (`curl -d` sends a form type), or a 400."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON body is required")
        return None
    try:
        return nesting.loads(raw)
    except nesting.TooDeep as exc:
        raise ApiError(400, str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None


async def json_body(request: Request) -> Any:
    return await _json(request, True)


async def optional_json_body(request: Request) -> Any:
    return await _json(request, False)


def body_doc(description: str, example: dict, required: bool = True) -> dict:
    """openapi_extra for a route that reads its JSON body through json_body."""
    return {"requestBody": {"required": required, "description": description, "content": {
        "application/json": {"schema": {"type": "object"}, "example": example}}}}


def manifests_of(body: Any) -> list[tuple[str, str]]:
    """(filename, YAML text) pairs of a `{"manifest": .., "filename": ..}` or `{"manifests": [..]}` body."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    entries = body["manifests"] if "manifests" in body else [body]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ApiError(400, "manifests must be a non-empty list of {\"manifest\": .., \"filename\": ..}")
    manifests = []
    for entry in entries:
        text, filename = entry.get("manifest"), entry.get("filename") or "manifest"
        if not isinstance(text, str) or not isinstance(filename, str):
            raise ApiError(400, "manifest must be YAML text (a string), filename a string")
        manifests.append((filename, text))
    return manifests


def flag(body: Any, name: str) -> bool:
    """An optional true/false field of a JSON object body."""
    value = body.get(name, False) if isinstance(body, dict) else False
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false")
    return value

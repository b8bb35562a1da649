"""Who may call the API: bearer tokens, each with a grant (tokens.py), compared in constant time.

- Tokens are configured (RECONCILER_API_TOKEN, a tokens file, or both): mutating calls need one whose
  grant has the `write` verb; reads need one with `read`, unless open reads are on. A call naming a
  namespace (in its path, or `?namespace=`) needs a grant covering that namespace, else 403; routes
  that reach several namespaces (lists, sync status, apply) filter or check with `grant_of(request)`.
- No token: the server only ever listens on loopback (settings.check refuses anything else) and
  every call is allowed, as on a local Docker socket. A browser on the same machine must not turn
  that into access for any web page, so calls must name a loopback Host (no DNS rebinding) and
  mutating calls must not come from another site's page (Origin, when sent, must be loopback).
/healthz, /readyz, /metrics and the webhooks (which check their own signatures) use none of this.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from . import tokens as token_book
from .common import ApiError, state_of
from .settings import is_loopback

CHALLENGE = 'Bearer realm="reconciler"'


def require_read(request: Request) -> None:
    _authorize(request, "read")


def require_write(request: Request) -> None:
    _authorize(request, "write")


def grant_of(request: Request) -> token_book.Grant:
    """What the caller may do; set by require_read/require_write (everything when no token is configured)."""
    return getattr(request.state, "grant", token_book.EVERYTHING)


def check_namespace_access(request: Request, namespace: str | None) -> None:
    """403 unless the caller's grant covers `namespace` (None/"": cluster-scoped or every namespace)."""
    grant = grant_of(request)
    if not grant.sees(namespace):
        what = f"namespace {namespace!r}" if namespace else "cluster-scoped objects or all namespaces"
        raise ApiError(403, f"token {grant.name!r} may not use {what}: it is limited to namespaces "
                            f"{', '.join(sorted(grant.namespaces or ()))}")


def _authorize(request: Request, verb: str) -> None:
    settings = state_of(request).settings
    if not settings.authenticated:
        _check_local(request, write=verb == "write")
        return
    if verb == "read" and settings.open_reads:
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(401, "this call needs a bearer token: send 'Authorization: Bearer <RECONCILER_API_TOKEN>'",
                       headers={"WWW-Authenticate": CHALLENGE})
    grant = token_book.find(settings.tokens, credentials.strip())
    if grant is None:
        raise ApiError(401, "invalid bearer token", headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})
    if not grant.may(verb):
        raise ApiError(403, f"token {grant.name!r} may not {verb} (it may {', '.join(sorted(grant.verbs))})")
    request.state.grant = grant
    namespace = request.path_params.get("namespace") or request.query_params.get("namespace")
    if namespace:
        check_namespace_access(request, namespace)


def _host_of(value: str) -> str:
    return urlsplit(f"//{value}").hostname or ""


def _check_local(request: Request, *, write: bool) -> None:
    host = _host_of(request.headers.get("host", ""))
    if not is_loopback(host):
        raise ApiError(403, f"Host {host!r} is not a loopback name: without a token the API only answers "
                            "requests addressed to localhost")
    origin = request.headers.get("origin")
    if write and origin and origin != "null" and not is_loopback(urlsplit(origin).hostname or ""):
        raise ApiError(403, f"cross-site request from {origin} refused")
    if write and origin == "null":
        raise ApiError(403, "cross-site request from an opaque origin refused")

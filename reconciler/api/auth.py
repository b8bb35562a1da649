"""Who may call the API: a bearer token, compared in constant time.

- A token is configured: mutating calls need it; reads need it too unless open reads are on.
- No token: the server only ever listens on loopback (settings.check refuses anything else) and
  every call is allowed, as on a local Docker socket. A browser on the same machine must not turn
  that into access for any web page, so calls must name a loopback Host (no DNS rebinding) and
  mutating calls must not come from another site's page (Origin, when sent, must be loopback).
/healthz, /readyz, /metrics and the webhooks (which check their own signatures) use none of this.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import Request

from .common import ApiError, state_of
from .settings import is_loopback

CHALLENGE = 'Bearer realm="reconciler"'


def require_read(request: Request) -> None:
    _authorize(request, write=False)


def require_write(request: Request) -> None:
    _authorize(request, write=True)


def _authorize(request: Request, *, write: bool) -> None:
    settings = state_of(request).settings
    if settings.token is None:
        _check_local(request, write=write)
        return
    if not write and settings.open_reads:
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(401, "this call needs a bearer token: send 'Authorization: Bearer <RECONCILER_API_TOKEN>'",
                       headers={"WWW-Authenticate": CHALLENGE})
    if not hmac.compare_digest(credentials.strip().encode(), settings.token.encode()):
        raise ApiError(401, "invalid bearer token", headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})


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

"""HTTP to the Kubernetes API server over the official client: one request with retries, one watch stream.

The official client builds the URL, the credentials (in-cluster service account, KUBECONFIG,
`--context`) and TLS; answers are read as plain JSON, since the store hands out plain dicts and the
client's models would cost a conversion both ways. Kubernetes' answers map to the store's errors:
404 NotFound, 409 AlreadyExists or Conflict, 410 Conflict (history compacted), 422 Invalid with the
server's message, 429/5xx still failing after the retries TransientStoreError. 429, 5xx and dropped
connections are retried with backoff and never fatal.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import urllib3

from .errors import AlreadyExists, Conflict, Invalid, NotFound, StoreError, TransientStoreError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
REQUEST_TIMEOUT = 30.0
MAX_WATCH_LINE = 64 * 1024 * 1024  # one watch event; etcd's own object limit is ~1.5 MiB
_RETRIED = {429, 500, 502, 503, 504}


def load_api_client(context: str | None = None, kubeconfig: str | None = None) -> Any:
    """An official ApiClient from the in-cluster service account, else KUBECONFIG (and `context`)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if context is None and kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg)
        except config.ConfigException:
            pass
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except (config.ConfigException, OSError) as exc:
        raise StoreError(f"no Kubernetes configuration: not in a cluster, and KUBECONFIG: {exc}") from None
    return client.ApiClient(cfg)


class KubeApi:
    """Requests to one API server; every method raises only StoreError and its subclasses."""

    def __init__(self, api_client: Any, *, max_attempts: int = MAX_ATTEMPTS, sleep=time.sleep) -> None:
        self.client = api_client
        self.max_attempts = max_attempts
        self._sleep = sleep

    def request(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float = REQUEST_TIMEOUT) -> dict:
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = self._send(method, path, query, body, content_type, (5.0, timeout))
                data = resp.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt == self.max_attempts:
                    raise TransientStoreError(f"{method} {path}: {exc}") from None
                self.backoff(attempt, None, f"{method} {path}: {type(exc).__name__}")
                continue
            status = resp.status
            if status in _RETRIED and attempt < self.max_attempts:
                self.backoff(attempt, resp.headers.get("Retry-After"), f"{method} {path}: HTTP {status}")
                continue
            parsed = _json(data, method, path)
            if 200 <= status < 300:
                return parsed
            raise error_from_status(status, parsed, f"{method} {path}")
        raise StoreError(f"{method} {path}: gave up after {self.max_attempts} attempts")

    def stream(self, path: str, query: dict, read_timeout: float | None) -> Iterator[dict]:
        """The events of one watch request, parsed; ends when the server closes the stream."""
        resp = self._send("GET", path, query, None, "application/json", (5.0, read_timeout))
        if resp.status != 200:
            raise error_from_status(resp.status, _json(resp.read(), "GET", path), f"watch {path}")
        raw = resp.response
        try:
            buffer = b""
            for chunk in raw.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield _json(line, "watch", path)
                if len(buffer) > MAX_WATCH_LINE:
                    raise StoreError(f"watch {path}: an event over {MAX_WATCH_LINE} bytes")
        finally:
            raw.release_conn()

    def _send(self, method: str, path: str, query: dict | None, body: Any, content_type: str, timeout) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
                  if v is not None]
        serialized = self.client.param_serialize(
            method=method, resource_path=quote(path), query_params=params, header_params=headers, body=body,
            auth_settings=["BearerToken"])
        return self.client.call_api(*serialized, _request_timeout=timeout)

    def backoff(self, attempt: int, retry_after: str | None, what: str) -> None:
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if retry_after and retry_after.isdigit():
            delay = min(BACKOFF_CAP, max(delay, float(retry_after)))
        log.warning("%s; retrying in %.2fs (attempt %d of %d)", what, delay, attempt, self.max_attempts)
        self._sleep(delay)


def error_from_status(code: int, body: Any, what: str) -> StoreError:
    """The store error for a Kubernetes Status answer."""
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    text = f"{what}: {message or reason or f'HTTP {code}'}"
    if code == 404:
        return NotFound(text)
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(text)
    if code in (409, 410):
        return Conflict(text)
    if code == 422:
        return Invalid(text)
    if code in _RETRIED:  # still failing after the retries
        return TransientStoreError(f"{text} (HTTP {code})")
    return StoreError(f"{text} (HTTP {code})")


def _json(data: bytes, method: str, path: str) -> Any:
    try:
        return json.loads(data) if data else {}
    except ValueError:
        raise StoreError(f"{method} {path}: the API server's answer is not JSON: {data[:200]!r}") from None

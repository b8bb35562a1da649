"""`http` templates: the request Argo's agent makes (workflow/executor/agent.go), made by the daemon
(executors/daemonside.py runs it in a worker thread).

Argo runs http templates in an agent pod, not in the step's container; here the daemon makes the
request in a worker thread, so the request has the daemon's network (not a step's sandbox). The
response body becomes `outputs.result`; without `successCondition` a 2xx status succeeds, with it
the expression sees `request` and `response` (statusCode, body, headers) as in Argo. Bounds: the
body read is capped at MAX_BODY bytes, and a request without `timeoutSeconds` (or a step timeout)
gives up after DEFAULT_TIMEOUT seconds (Argo would wait forever); only http and https URLs.
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from typing import Any

from reconciler.spec.expressions.expr import evaluate

from .base import FAILED, SUCCEEDED

MAX_BODY = 1024 * 1024
DEFAULT_TIMEOUT = 30.0


class HttpError(Exception):
    pass


def _request(spec: dict) -> urllib.request.Request:
    url = str(spec.get("url") or "")
    if not url.lower().startswith(("http://", "https://")):
        raise HttpError(f"url {url!r}: only http and https URLs are requested")
    if spec.get("bodyFrom") is not None:
        data = base64.b64decode(str((spec["bodyFrom"] or {}).get("bytes") or ""), validate=True)
    else:
        data = str(spec.get("body") or "").encode()
    method = str(spec.get("method") or "GET").upper()
    request = urllib.request.Request(url, data=data if (data or method not in ("GET", "HEAD")) else None,
                                     method=method)
    for header in spec.get("headers") or []:
        if header.get("valueFrom"):
            raise HttpError(f"header {header.get('name')}: valueFrom.secretKeyRef needs a Kubernetes Secret, "
                            "which the local executor does not have")
        request.add_header(str(header["name"]), str(header.get("value") or ""))
    return request


def perform(spec: dict, timeout: float | None) -> tuple[str, int, str, str]:
    """(phase, status code, body, message) of one http template's request; HttpError if none came."""
    request = _request(spec)
    context = ssl._create_unverified_context() if spec.get("insecureSkipVerify") else None  # noqa: S323 - Argo's insecureSkipVerify
    limit = float(spec["timeoutSeconds"]) if spec.get("timeoutSeconds") is not None else (timeout or DEFAULT_TIMEOUT)
    try:
        response = urllib.request.urlopen(request, timeout=limit, context=context)  # noqa: S310 - scheme checked
    except urllib.error.HTTPError as exc:
        response = exc  # a non-2xx answer is still an answer: successCondition may accept it
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HttpError(f"request to {request.full_url} failed: {getattr(exc, 'reason', exc)}") from None
    with response:
        raw = response.read(MAX_BODY + 1)
        status = int(response.status)
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.items():
            headers.setdefault(name, []).append(value)
    if len(raw) > MAX_BODY:
        raise HttpError(f"response body is larger than {MAX_BODY} bytes")
    body = raw.decode("utf-8", errors="replace")
    condition = spec.get("successCondition")
    if not condition:
        if 200 <= status < 300:
            return SUCCEEDED, status, body, ""
        return FAILED, status, body, f"received non-2xx response code: {status}"
    scope: dict[str, Any] = {
        "request": {"method": spec.get("method") or "", "url": spec.get("url"), "body": spec.get("body") or "",
                    "headers": {h["name"]: [str(h.get("value") or "")] for h in spec.get("headers") or []}},
        "response": {"statusCode": status, "body": body, "headers": headers},
    }
    result = evaluate(str(condition), scope)
    if not isinstance(result, bool):
        raise HttpError(f"successCondition '{condition}' did not evaluate to a boolean: {result!r}")
    if result:
        return SUCCEEDED, status, body, ""
    return FAILED, status, body, f"successCondition '{condition}' evaluated false"

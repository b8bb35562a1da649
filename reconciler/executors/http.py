"""Steps the daemon runs itself, not as processes: `http` templates, the request Argo's agent makes
(workflow/executor/agent.go), and `data` templates (executors/data.py).

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
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any

from reconciler.artifacts.base import ArtifactRepository
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.expr import evaluate

from .base import ERROR, FAILED, SUCCEEDED, Executor, PodJob, PodResult, error_result
from .data import DataError
from .data import process as process_data

MAX_BODY = 1024 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_CONCURRENT = 16


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


class DaemonSideExecutor(Executor):
    """Runs jobs that carry an http or data template, each in its own thread (at most MAX_CONCURRENT)."""

    name = "daemon"
    isolation = "none"

    def __init__(self, artifacts: ArtifactRepository | None = None) -> None:
        self.artifacts = artifacts
        self._done: deque[PodResult] = deque()
        self._running: set[str] = set()
        self._killed: dict[str, str] = {}
        self._cond = threading.Condition()
        self._slots = threading.Semaphore(MAX_CONCURRENT)

    def start(self, job: PodJob) -> None:
        with self._cond:
            if job.node_id in self._running:
                raise ValueError(f"node {job.node_id} is already running")
            self._running.add(job.node_id)
        threading.Thread(target=self._run, args=(job,), name=f"http-{job.node_id}", daemon=True).start()

    def _run(self, job: PodJob) -> None:
        started = time.time()
        with self._slots:
            try:
                if job.data is not None:
                    if self.artifacts is None:
                        raise DataError("no artifact repository to list")
                    body = process_data(job.data, job.namespace, self.artifacts)
                    result = self._result(job, SUCCEEDED, None, body, "", started)
                else:
                    phase, code, body, message = perform(job.http or {}, job.timeout)
                    result = self._result(job, phase, code, body, message, started)
            except (HttpError, DataError, ExpressionError, ValueError) as exc:
                result = error_result(job, ERROR, str(exc), started)
        with self._cond:
            if job.node_id in self._killed:
                result = error_result(job, FAILED, self._killed.pop(job.node_id) or "killed", started)
            self._done.append(result)
            self._cond.notify_all()

    @staticmethod
    def _result(job: PodJob, phase: str, code: int | None, body: str, message: str, started: float) -> PodResult:
        # The log says what came back; outputs.result is the body whatever the phase (as Argo).
        log_path = job.scratch_dir / "main.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        head = f"HTTP {code}\n" if code is not None else ""
        log_path.write_text(f"{head}{body}\n" + (f"{message}\n" if message else ""))
        return PodResult(job.node_id, phase, None, message, body, log_path, dict.fromkeys(job.output_parameter_paths),
                         {a.name: None for a in job.output_artifacts}, started, time.time())

    def kill(self, node_id: str, reason: str = "") -> None:
        # A request in flight cannot be interrupted; its result is replaced by the kill.
        with self._cond:
            if node_id in self._running:
                self._killed[node_id] = reason

    def poll(self, timeout: float) -> list[PodResult]:
        with self._cond:
            if not self._done and timeout > 0:
                self._cond.wait(timeout)
            out = list(self._done)
            self._done.clear()
            for r in out:
                self._running.discard(r.node_id)
        return out

    def running(self) -> set[str]:
        with self._cond:
            return set(self._running)

    def close(self) -> None:
        with self._cond:
            for node_id in self._running:
                self._killed.setdefault(node_id, "executor closed")


class WithDaemonSide(Executor):
    """An executor that hands http and data jobs to a DaemonSideExecutor and everything else to ``inner``."""

    def __init__(self, inner: Executor, artifacts: ArtifactRepository | None = None) -> None:
        self.inner = inner
        self.http = DaemonSideExecutor(artifacts)
        self.name = inner.name
        self.isolation = inner.isolation

    def __getattr__(self, attr: str) -> Any:
        # adopt(), logs() and the like belong to the process executor.
        return getattr(self.inner, attr)

    def start(self, job: PodJob) -> None:
        (self.http if job.http is not None or job.data is not None else self.inner).start(job)

    def kill(self, node_id: str, reason: str = "") -> None:
        target = self.http if node_id in self.http.running() else self.inner
        target.kill(node_id, reason)

    def poll(self, timeout: float) -> list[PodResult]:
        done = self.http.poll(0)
        if self.http.running() and not done:
            # Wake for either kind: short inner waits while a request is in flight.
            done = self.inner.poll(min(timeout, 0.05)) + self.http.poll(0)
            return done
        return done + self.inner.poll(0 if done else timeout)

    def running(self) -> set[str]:
        return self.inner.running() | self.http.running()

    def close(self) -> None:
        self.http.close()
        self.inner.close()

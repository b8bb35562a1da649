"""Steps the daemon runs itself, in worker threads, rather than as processes: `http` templates
(executors/http.py, as Argo's agent pod) and `data` templates (executors/data.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

from reconciler.artifacts.base import ArtifactRepository
from reconciler.spec.expressions.errors import ExpressionError

from .base import ERROR, FAILED, SUCCEEDED, Executor, JobKey, PodJob, PodResult, error_result
from .data import DataError
from .data import process as process_data
from .http import HttpError, perform
from .queued import ResultQueue

MAX_CONCURRENT = 16


class DaemonSideExecutor(ResultQueue, Executor):
    """Runs jobs that carry an http or data template, each in its own thread (at most MAX_CONCURRENT)."""

    name = "daemon"
    isolation = "none"

    def __init__(self, artifacts: ArtifactRepository | None = None) -> None:
        super().__init__()
        self.artifacts = artifacts
        self._killed: dict[JobKey, str] = {}
        self._slots = threading.Semaphore(MAX_CONCURRENT)

    def start(self, job: PodJob) -> None:
        with self._cond:
            self._mark_running(job)
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
            if job.key in self._killed:
                result = error_result(job, FAILED, self._killed.pop(job.key) or "killed", started)
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
                         {a.name: None for a in job.output_artifacts}, started, time.time(), namespace=job.namespace)

    def kill(self, key: JobKey, reason: str = "") -> None:
        # A request in flight cannot be interrupted; its result is replaced by the kill.
        with self._cond:
            if key in self._running:
                self._killed[key] = reason

    def close(self) -> None:
        with self._cond:
            for key in self._running:
                self._killed.setdefault(key, "executor closed")


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

    def kill(self, key: JobKey, reason: str = "") -> None:
        target = self.http if key in self.http.running() else self.inner
        target.kill(key, reason)

    def poll(self, timeout: float) -> list[PodResult]:
        done = self.http.poll(0)
        if self.http.running() and not done:
            # Wake for either kind: short inner waits while a request is in flight.
            done = self.inner.poll(min(timeout, 0.05)) + self.http.poll(0)
            return done
        return done + self.inner.poll(0 if done else timeout)

    def running(self) -> set[JobKey]:
        return self.inner.running() | self.http.running()

    def close(self) -> None:
        self.http.close()
        self.inner.close()

"""An executor that finishes every job instantly, inside the calling process.

It exists so the engine benchmark can time the engine alone (20,000 jobs), so it must stay
cheap per job: no thread, no file, no process. ``func(job) -> PodResult`` customizes results,
e.g. to make chosen steps fail or to fake outputs in engine tests.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .base import ERROR, SUCCEEDED, Executor, JobKey, PodJob, PodResult

_DEVNULL = Path(os.devnull)  # a readable, empty "log" that costs no file per job


def succeeded(job: PodJob, stdout: str = "") -> PodResult:
    """The default result: Succeeded, empty stdout, every declared output missing."""
    now = time.time()
    return PodResult(
        node_id=job.node_id,
        phase=SUCCEEDED,
        exit_code=0,
        message="",
        stdout=stdout,
        log_path=_DEVNULL,
        output_parameters=dict.fromkeys(job.output_parameter_paths),
        output_artifacts={a.name: None for a in job.output_artifacts},
        started_at=now,
        finished_at=now,
        namespace=job.namespace,
    )


class InProcessExecutor(Executor):
    name = "inprocess"
    isolation = "none"

    def __init__(self, func: Callable[[PodJob], PodResult] | None = None) -> None:
        self._func = func or succeeded
        self._done: deque[PodResult] = deque()
        self._running: set[str] = set()
        # A Condition (not a sleep) so poll() from another thread wakes as soon as start() runs.
        self._cond = threading.Condition()

    def start(self, job: PodJob) -> None:
        try:
            result = self._func(job)
        except Exception as exc:  # noqa: BLE001 - func is user code: report it as a pod error
            result = PodResult(job.node_id, ERROR, None, f"{type(exc).__name__}: {exc}", "", _DEVNULL,
                               dict.fromkeys(job.output_parameter_paths),
                               {a.name: None for a in job.output_artifacts}, time.time(), time.time(),
                               namespace=job.namespace)
        with self._cond:
            if job.key in self._running:
                raise ValueError(f"node {job.node_id} is already running in namespace {job.namespace}")
            self._running.add(job.key)
            self._done.append(result)
            self._cond.notify()

    def kill(self, key: JobKey, reason: str = "") -> None:
        # Every job has already finished by the time start() returns: nothing to kill.
        return None

    def poll(self, timeout: float) -> list[PodResult]:
        with self._cond:
            if not self._done and timeout > 0:
                self._cond.wait(timeout)
            out = list(self._done)
            self._done.clear()
            for r in out:
                self._running.discard(r.key)
        return out

    def running(self) -> set[JobKey]:
        with self._cond:
            return set(self._running)

    def close(self) -> None:
        with self._cond:
            self._done.clear()
            self._running.clear()

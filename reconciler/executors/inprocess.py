"""An executor that finishes every job instantly, inside the calling process.

It exists so the engine benchmark can time the engine alone (20,000 jobs), so it must stay
cheap per job: no thread, no file, no process. ``func(job) -> PodResult`` customizes results,
e.g. to make chosen steps fail or to fake outputs in engine tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .base import ERROR, SUCCEEDED, Executor, JobKey, PodJob, PodResult
from .queued import ResultQueue

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


class InProcessExecutor(ResultQueue, Executor):
    name = "inprocess"
    isolation = "none"

    def __init__(self, func: Callable[[PodJob], PodResult] | None = None) -> None:
        super().__init__()
        self._func = func or succeeded

    def start(self, job: PodJob) -> None:
        try:
            result = self._func(job)
        except Exception as exc:  # noqa: BLE001 - func is user code: report it as a pod error
            result = PodResult(job.node_id, ERROR, None, f"{type(exc).__name__}: {exc}", "", _DEVNULL,
                               dict.fromkeys(job.output_parameter_paths),
                               {a.name: None for a in job.output_artifacts}, time.time(), time.time(),
                               namespace=job.namespace)
        with self._cond:
            self._mark_running(job)
            self._done.append(result)
            self._cond.notify()

    def kill(self, key: JobKey, reason: str = "") -> None:
        # Every job has already finished by the time start() returns: nothing to kill.
        return None

    def close(self) -> None:
        with self._cond:
            self._done.clear()
            self._running.clear()

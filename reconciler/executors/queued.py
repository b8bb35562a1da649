"""The result queue of executors that run no process of their own (in-process, daemon-side): jobs
are marked running when started, their results queued when done (by any thread), and `poll` hands
them out, waking as soon as one is queued."""

from __future__ import annotations

import threading
from collections import deque

from .base import JobKey, PodJob, PodResult


class ResultQueue:
    """Mixed into an Executor: provides `poll` and `running`."""

    def __init__(self) -> None:
        self._done: deque[PodResult] = deque()
        self._running: set[JobKey] = set()
        # A Condition (not a sleep) so poll() from another thread wakes as soon as a result is queued.
        self._cond = threading.Condition()

    def _mark_running(self, job: PodJob) -> None:
        """Call with self._cond held."""
        if job.key in self._running:
            raise ValueError(f"node {job.node_id} is already running in namespace {job.namespace}")
        self._running.add(job.key)

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

"""SyncLoop: the daemon's background sync, a pass every poll interval beside the runner.

    loop = SyncLoop(store, repo="https://git.example.com/team/workflows.git", home=home, interval=30)
    loop.start()            # background thread; first pass right away
    loop.wait_first_pass()  # e.g. before reporting ready on /healthz
    loop.trigger()          # a push webhook arrived: pass now
    loop.stop()

A failed fetch keeps the last good state (environments still self-heal at their applied commit)
and is retried with exponential backoff, capped at the poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.spec import SpecError
from reconciler.store.base import ObjectStore

from . import status as status_book
from .model import EnvironmentResult
from .reconcile import Reconciler

log = logging.getLogger("reconciler.sync")

BACKOFF_START = 1.0


class SyncLoop:
    def __init__(self, store: ObjectStore, repo: str, home: Path, interval: float = 30.0, *,
                 config_branch: str | None = None) -> None:
        self.interval = float(interval)
        self.reconciler = Reconciler(store, repo, Path(home), config_branch=config_branch,
                                     quiet_seconds=status_book.HEARTBEAT_SECONDS)
        self._lock = threading.Lock()  # one pass at a time, whether from the thread or run_pass()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._first_pass = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0  # consecutive failed fetches, for the backoff
        self.last_results: list[EnvironmentResult] = []
        self.last_error: str = ""
        self.passes = 0
        # Called with each pass's results, e.g. to bring the schedules in line with what it applied.
        self.after_pass: list[Callable[[list[EnvironmentResult]], None]] = []

    # ---- what the daemon calls ---------------------------------------------------------------------
    def run_pass(self, env: str | None = None) -> list[EnvironmentResult]:
        """One pass now, in the calling thread: fetch, then sync every environment (or just `env`)."""
        with self._lock:
            try:
                results = self.reconciler.run_pass(env)
                self.last_error = ""
            except SpecError as exc:  # no usable config yet (or a fetch that failed): said, not a crash
                self.last_error = str(exc)
                log.error("sync pass failed: %s", exc)
                results = []
            except Exception as exc:  # a bug must not kill the daemon's thread either
                self.last_error = str(exc)
                log.exception("sync pass failed: %s", exc)
                results = []
            fetched = self.reconciler.last_fetch
            self._failures = 0 if fetched is None or fetched.ok else self._failures + 1
            self.last_results = results
            self.passes += 1
        self._first_pass.set()
        for hook in self.after_pass:
            try:
                hook(results)
            except Exception:  # a hook must not stop the sync loop
                log.exception("after-sync hook failed")
        return results

    def dry_run(self, env: str | None = None) -> list[EnvironmentResult]:
        """What a pass would do now (`reconciler diff`): fetch, build and diff, apply nothing. Unlike
        run_pass, SpecError (no usable reconciler.yaml) and KeyError (unknown `env`) reach the caller."""
        with self._lock:
            return self.reconciler.run_pass(env, dry_run=True)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="reconciler-sync", daemon=True)
        self._thread.start()

    def trigger(self, branch: str | None = None) -> None:
        """Run a pass as soon as possible (a push webhook for `branch`; every branch is fetched anyway)."""
        log.info("sync triggered%s", f" by a push to {branch}" if branch else "")
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.reconciler.source.close()

    @property
    def first_pass_done(self) -> bool:
        return self._first_pass.is_set()

    def wait_first_pass(self, timeout: float | None = None) -> bool:
        return self._first_pass.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the thread ------------------------------------------------------------------------------------
    def next_delay(self) -> float:
        """The poll interval, or a shorter exponential backoff while fetches fail."""
        if self._failures == 0:
            return self.interval
        return min(self.interval, BACKOFF_START * 2 ** (self._failures - 1))

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            started = time.monotonic()
            self.run_pass()
            delay = self.next_delay()
            if self._failures:
                log.warning("fetch failed %d time(s) in a row; retrying in %.0fs", self._failures, delay)
            remaining = delay - (time.monotonic() - started) if not self._failures else delay
            self._wake.wait(max(0.0, remaining))

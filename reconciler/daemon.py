"""`reconciler up`: the one long-running process. For now it runs the workflow runner; the GitOps
sync loop, the scheduler and the HTTP API join it in the same process."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import artifacts_path, store_path
from reconciler.executors import LocalProcessExecutor
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store

log = logging.getLogger("reconciler.daemon")


class Daemon:
    def __init__(self, home: Path, *, max_running: int | None = None, isolation: str = "auto",
                 grace: float = 10.0, lease_seconds: float = 15.0) -> None:
        self.home = Path(home)
        self.grace = grace
        self.stop = threading.Event()
        self.store = open_store(store_path(self.home))
        self.executor = LocalProcessExecutor(isolation=isolation)
        self.runner = WorkflowRunner(self.store, self.executor, LocalArtifactRepository(artifacts_path(self.home)),
                                     self.home, max_running=max_running, lease_seconds=lease_seconds)

    def install_signal_handlers(self) -> None:
        def graceful(signum: int, _frame: object) -> None:
            log.info("received %s: stopping gracefully (grace %.0fs)", signal.Signals(signum).name, self.grace)
            self.stop.set()

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, graceful)

    def run(self) -> None:
        log.info("runner %s serving %s", self.runner.identity, self.home)
        try:
            self.runner.serve(self.stop, grace=self.grace)
        finally:
            self.executor.close()
            self.store.close()
        log.info("stopped; state saved")

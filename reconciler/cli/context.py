"""The parts a CLI command needs, opened lazily from the data directory."""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import ConfigError, artifacts_path, home_dir, open_home_store
from reconciler.engine.submission import store_lookup
from reconciler.runner import WorkflowRunner
from reconciler.store.base import ObjectStore


class Context:
    def __init__(self, home: str | None) -> None:
        self._home_arg = home
        self._executor = None

    @cached_property
    def home(self) -> Path:
        return home_dir(self._home_arg)

    @cached_property
    def store(self) -> ObjectStore:
        try:
            return open_home_store(self.home)
        except ConfigError as exc:  # a store error (an unreachable cluster) is main()'s to report
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    @property
    def lookup(self):
        return store_lookup(self.store)

    def executor(self):
        if self._executor is None:
            from reconciler.executors import LocalProcessExecutor

            self._executor = LocalProcessExecutor()
        return self._executor

    def executor_isolation(self) -> str:
        from reconciler.executors import probe_bwrap

        return "bwrap" if probe_bwrap()[0] else "tmpdir"

    def runner(self) -> WorkflowRunner:
        return WorkflowRunner(self.store, self.executor(), LocalArtifactRepository(artifacts_path(self.home)),
                              self.home)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()

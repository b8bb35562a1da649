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
        """Steps run here get the daemon's sandbox, set by the same environment variables as `up`'s
        flags (RECONCILER_ISOLATION, RECONCILER_STEP_*); bwrap unavailable is an error, not a fallback."""
        if self._executor is None:
            import click

            from reconciler.cli.steps import env_values, step_settings
            from reconciler.executors import LocalProcessExecutor

            try:
                self._executor = LocalProcessExecutor(settings=step_settings(self.home, **env_values()))
            except RuntimeError as exc:
                raise click.ClickException(f"{exc}\nTo run steps without a sandbox, sharing your user's trust, "
                                           "set RECONCILER_ISOLATION=tmpdir (see docs/SECURITY.md)") from None
        return self._executor

    def runner(self) -> WorkflowRunner:
        from reconciler.cli.steps import env_values

        return WorkflowRunner(self.store, self.executor(), LocalArtifactRepository(artifacts_path(self.home)),
                              self.home, keep_scratch=env_values()["keep_scratch"])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()

"""The parts a CLI command needs, opened lazily from the data directory."""

from __future__ import annotations

import copy
import sys
from functools import cached_property
from pathlib import Path

from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import artifacts_path, home_dir, store_path
from reconciler.engine.submission import store_lookup
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store
from reconciler.store.base import CLUSTER_SCOPED_KINDS, ObjectStore
from reconciler.store.errors import NotFound


class Context:
    def __init__(self, home: str | None) -> None:
        self._home_arg = home
        self._executor = None

    @cached_property
    def home(self) -> Path:
        return home_dir(self._home_arg)

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(store_path(self.home))

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

    def get_or_exit(self, kind: str, namespace: str, name: str) -> dict:
        try:
            return self.store.get(kind, namespace, name)
        except NotFound:
            print(f"{kind.lower()} {name!r} not found in namespace {namespace}", file=sys.stderr)
            sys.exit(1)

    def apply_object(self, doc: dict, namespace: str) -> str:
        """Create or replace, like `kubectl apply`; returns kubectl's one-line verdict."""
        obj = copy.deepcopy(doc)
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = "" if kind in CLUSTER_SCOPED_KINDS else (meta.get("namespace") or namespace)
        label = f"{kind.lower()}/{meta['name']}"
        try:
            current = self.store.get(kind, meta["namespace"], meta["name"])
        except NotFound:
            self.store.create(obj)
            return f"{label} created"
        if current.get("spec") == obj.get("spec") and current.get("data") == obj.get("data") and \
                (current["metadata"].get("labels") or {}) == (meta.get("labels") or {}):
            return f"{label} unchanged"
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if "status" in current:
            obj["status"] = current["status"]
        self.store.update(obj)
        return f"{label} configured"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()

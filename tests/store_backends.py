"""The store backends one contract suite runs against: SQLite on a real file, KubernetesStore over real
HTTP to the API-server double, and (with `pytest -m cluster` and KUBECONFIG set) a real cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.store import open_store
from reconciler.store.base import ObjectStore
from reconciler.store.kinds import own_resources
from reconciler.store.kube_client import load_api_client
from reconciler.store.kubernetes import KubernetesStore

from .kubedouble import ApiServerDouble

BACKENDS = ["sqlite", "kubernetes-double", pytest.param("kubernetes-cluster", marks=pytest.mark.cluster)]


@contextmanager
def backend(name: str, tmp_path: Path, *, history: int = 10_000) -> Iterator[ObjectStore]:
    """A fresh, empty store of backend `name`; `history` bounds the events a watch can resume from."""
    if name == "sqlite":
        store = open_store(tmp_path / "store.db", event_retention=history)
        try:
            yield store
        finally:
            store.close()
    elif name == "kubernetes-double":
        double = ApiServerDouble(history=history, bookmark_interval=0.2)
        store = KubernetesStore(double.api_client())
        store.install_crds()
        try:
            yield store
        finally:
            store.close()
            double.close()
    else:
        yield from _cluster_store()


def _cluster_store() -> Iterator[ObjectStore]:
    """The cluster KUBECONFIG points at: a throwaway one (kind, k3d), since every reconciler.io object in
    it is deleted before each test."""
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("pytest -m cluster needs KUBECONFIG pointing at a throwaway cluster")
    store = KubernetesStore(load_api_client())
    store.install_crds()
    for res in own_resources():
        for obj in store.list(res.kind):
            store.delete(res.kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
    try:
        yield store
    finally:
        store.close()


def wf(name: str | None = "wf", namespace: str | None = "default", nodes: dict | None = None, **meta) -> dict:
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {**meta},
        "spec": {"entrypoint": "main"},
    }
    if name is not None:
        obj["metadata"]["name"] = name
    if namespace is not None:
        obj["metadata"]["namespace"] = namespace
    if nodes is not None:
        obj["status"] = {"phase": "Running", "nodes": nodes}
    return obj


def node(i: int, phase: str = "Running") -> dict:
    return {"id": f"n{i}", "name": f"wf.step{i}", "type": "Pod", "phase": phase, "children": [f"n{i + 1}"]}

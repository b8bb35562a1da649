"""Which engine runs each namespace's workflows on a cluster: the `reconciler.io/engine` label of the
Namespace (set by the sync from reconciler.yaml), or the configured Argo namespaces. Kept apart from
the store's CRUD; KubernetesStore mixes it in."""

from __future__ import annotations

import time

from .base import ENGINE_ARGO, ENGINE_RECONCILER
from .errors import NotFound, StoreError
from .kinds import RESOURCES

ENGINE_LABEL = "reconciler.io/engine"   # on a Namespace: who runs its workflows
ENGINE_TTL = 10.0                        # seconds a namespace's engine is trusted from memory


class NamespaceEngines:
    """Needs from its host: _call, ensure_namespace, namespaces, _static_argo, _engines, _argo_listed."""

    def set_engine(self, namespace: str, engine: str) -> None:
        """Label the cluster namespace with its engine, so every process of every replica routes its
        workflows alike: Argo's namespaces hold argoproj.io objects that Argo's controller runs."""
        if engine not in (ENGINE_RECONCILER, ENGINE_ARGO):
            raise StoreError(f"unknown engine {engine!r}")
        if self.namespaces is not None:  # no rights on Namespace objects: the configuration decides
            if (namespace in self._static_argo) != (engine == ENGINE_ARGO):
                raise StoreError(f"namespace {namespace}: engine {engine} disagrees with kubernetes.argoNamespaces "
                                 "(RECONCILER_ARGO_NAMESPACES), which the namespaced mode goes by")
            return
        if self.engine_of(namespace) != engine:
            self.ensure_namespace(namespace)
            self._call("PATCH", RESOURCES["Namespace"].path(None, namespace),
                       body={"metadata": {"labels": {ENGINE_LABEL: engine}}},
                       content_type="application/merge-patch+json")
        self._engines[namespace] = (engine, time.monotonic())
        self._argo_listed = (frozenset(), -ENGINE_TTL)

    def engine_of(self, namespace: str) -> str:
        if namespace in self._static_argo:
            return ENGINE_ARGO
        if self.namespaces is not None:
            return ENGINE_RECONCILER
        cached = self._engines.get(namespace)
        if cached is not None and time.monotonic() - cached[1] < ENGINE_TTL:
            return cached[0]
        try:
            ns = self._call("GET", RESOURCES["Namespace"].path(None, namespace))
            engine = ((ns.get("metadata") or {}).get("labels") or {}).get(ENGINE_LABEL) or ENGINE_RECONCILER
        except NotFound:
            engine = ENGINE_RECONCILER
        self._engines[namespace] = (engine, time.monotonic())
        return engine

    @property
    def argo_namespaces(self) -> frozenset[str]:
        """Namespaces whose workflows are Argo's: configured, or labelled by a sync (cached briefly)."""
        names, read_at = self._argo_listed
        if time.monotonic() - read_at >= ENGINE_TTL:
            if self.namespaces is not None:
                names = frozenset()
            else:
                listed = self._call("GET", RESOURCES["Namespace"].path(), query={
                    "labelSelector": f"{ENGINE_LABEL}={ENGINE_ARGO}"})
                names = frozenset(item["metadata"]["name"] for item in listed.get("items") or [])
            self._argo_listed = (names, time.monotonic())
        return self._static_argo | names

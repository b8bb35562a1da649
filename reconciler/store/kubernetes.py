"""The Kubernetes backend: the cluster's API server is the store.

Each kind maps to one resource (kinds.py); objects are written as they are, with Argo's kinds stored in
the project's own group except in `engine: argo` namespaces. resourceVersions are the server's; the
compare-and-swap is the server's (409 -> Conflict). Kinds with the status subresource take two writes
when both spec and status change (the object, then /status with the new resourceVersion as
precondition). Large node maps are compressed as Argo does (offload.py).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .base import ENGINE_ARGO, ObjectStore, check_new_object, normalize_namespace, object_key
from .errors import AlreadyExists, Conflict, NotFound, StoreError
from .kinds import RESOURCES, Resource, all_crds, argo_resource, presented_api_version, resource_for
from .kube_client import KubeApi
from .kube_engines import ENGINE_TTL, NamespaceEngines
from .kube_informer import Informer
from .kube_watch import ResourceWatch, merged
from .merging import merge_patch
from .offload import DEFAULT_THRESHOLD, FIELD, compress_nodes, inflate_nodes

log = logging.getLogger(__name__)

LIST_PAGE = 500
SYSTEM_NAMESPACE = "reconciler-system"
_BLIND_UPDATE_ATTEMPTS = 8
CRD_ESTABLISH_SECONDS = 60
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow")
# Kinds whose brief lists come from an informer: what the runner and the API scan over and over.
INFORMED_KINDS = ("Workflow",)
_IDENTITY = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields", "selfLink")


class KubernetesStore(NamespaceEngines, ObjectStore):
    """ObjectStore on a Kubernetes API server, through the official client (`api_client`).

    `argo_namespaces`: namespaces whose environment runs on Argo's controller (their Workflow kinds
    are argoproj.io resources). `namespaces`: the namespaced mode, for a daemon without cluster-wide
    rights: every list and watch without a namespace covers exactly these. `create_namespaces`: a create
    in a namespace the cluster lacks makes the namespace first (off where the daemon may not).
    """

    def __init__(self, api_client: Any, *, argo_namespaces: Iterable[str] = (), namespaces: Iterable[str] | None = None,
                 system_namespace: str = SYSTEM_NAMESPACE, offload_threshold: int = DEFAULT_THRESHOLD,
                 create_namespaces: bool = True, api: KubeApi | None = None) -> None:
        self.api = api or KubeApi(api_client)
        self._static_argo = frozenset(argo_namespaces)
        self._engines: dict[str, tuple[str, float]] = {}   # namespace -> (engine, read at)
        self._argo_listed: tuple[frozenset[str], float] = (frozenset(), -ENGINE_TTL)
        self.namespaces = None if namespaces is None else tuple(sorted(set(namespaces)))
        self.system_namespace = system_namespace
        self.offload_threshold = offload_threshold
        self.create_namespaces = create_namespaces
        self._informers: dict[tuple[str, str, str | None], Informer] = {}
        self._informers_lock = threading.Lock()
        self._closed = threading.Event()

    # -- reads -----------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict:
        res, ns = self._resource(kind, namespace)
        return self._present(res, self._call("GET", res.path(ns, name)))

    def list(self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> list[dict]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        out = []
        for res, ns in self._collections(kind, namespace):
            out.extend(self._list_all(res, ns, selector)[0])
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out

    def list_brief(self, kind: str, namespace: str | None = None) -> list[dict]:
        """From an informer's cache where one resource holds the kind (see kube_informer.py)."""
        sources = self._collections(kind, None) if kind in INFORMED_KINDS else []
        if len(sources) != 1 or (namespace is not None and self._resource(kind, namespace)[0] != sources[0][0]):
            return super().list_brief(kind, namespace)
        res, ns = sources[0]
        with self._informers_lock:
            informer = self._informers.get((res.group, res.plural, ns))
            if informer is None:
                informer = Informer(self.api, res, ns, self._closed, lambda: self._list_all(res, ns),
                                    lambda obj: self._present(res, obj))
                self._informers[(res.group, res.plural, ns)] = informer
        return informer.brief(normalize_namespace(kind, namespace) if namespace is not None else None)

    def current_version(self) -> str:
        res = RESOURCES["Workflow"]
        ns = self.namespaces[0] if self.namespaces else None
        return str(self._call("GET", res.path(ns), query={"limit": 1})["metadata"]["resourceVersion"])

    # -- writes ----------------------------------------------------------------------------------

    def create(self, obj: dict) -> dict:
        check_new_object(obj)
        _check_json(obj)
        kind = obj["kind"]
        res, ns = self._resource(kind, obj["metadata"].get("namespace"))
        body = self._wire(res, obj, ns)
        for key in _IDENTITY:
            body["metadata"].pop(key, None)
        try:
            created = self._call("POST", res.path(ns), body=body)
        except NotFound:
            if ns is None or not self.create_namespaces:
                raise
            self.ensure_namespace(ns)
            created = self._call("POST", res.path(ns), body=body)
        if res.status_subresource and isinstance(body.get("status"), dict):
            # The server drops status on create when /status is a subresource; write it there.
            created["status"] = body["status"]
            created = self._call("PUT", res.path(ns, created["metadata"]["name"], "status"), body=created)
        return self._present(res, created)

    def update(self, obj: dict) -> dict:
        _check_json(obj)
        kind, namespace, name = object_key(obj)
        res, ns = self._resource(kind, namespace)
        body = self._wire(res, obj, ns)
        wanted = body["metadata"].get("resourceVersion")
        for attempt in range(_BLIND_UPDATE_ATTEMPTS):
            if not wanted:
                # Kubernetes refuses an update of a custom resource without a resourceVersion; the
                # store promises an unconditional one, so take the current version and retry on races.
                body["metadata"]["resourceVersion"] = self._call("GET", res.path(ns, name))["metadata"][
                    "resourceVersion"]
            try:
                return self._present(res, self._replace(res, ns, name, body))
            except Conflict:
                if wanted or attempt == _BLIND_UPDATE_ATTEMPTS - 1:
                    raise
                self.api.backoff(attempt + 1, None, f"update {kind} {namespace}/{name}: lost a race")
        raise AssertionError("unreachable")

    def patch(self, kind: str, namespace: str, name: str, patch: dict, resource_version: str | None = None, *,
              return_object: bool = True) -> dict:
        if not isinstance(patch, dict):
            raise StoreError("a merge patch must be a mapping")
        _check_json(patch)
        res, ns = self._resource(kind, namespace)
        patch = _without_identity(patch)
        wanted = resource_version
        if isinstance(patch.get("metadata"), dict):
            in_patch = patch["metadata"].pop("resourceVersion", None)  # a precondition, as in Kubernetes
            wanted = wanted or in_patch
            if not patch["metadata"]:
                patch.pop("metadata")
        status_nodes = isinstance(patch.get("status"), dict) and "nodes" in patch["status"]
        if status_nodes and kind == "Workflow":
            # Nodes may be stored compressed: a server-side merge into status.nodes would land beside
            # the compressed copy, so merge here and write the whole object under the same precondition.
            current = self.get(kind, namespace, name)
            if wanted:
                current["metadata"]["resourceVersion"] = str(wanted)
            merged = merge_patch(current, patch)
            merged["metadata"]["resourceVersion"] = str(wanted or current["metadata"]["resourceVersion"])
            result = self._present(res, self._replace(res, ns, name, self._wire(res, merged, ns)))
        else:
            result = self._present(res, self._merge(res, ns, name, patch, wanted))
        if not return_object:
            return {"apiVersion": result["apiVersion"], "kind": result["kind"], "metadata": result["metadata"]}
        return result

    def server_side_apply(self, obj: dict, manager: str, *, force: bool = True) -> dict:
        """Server-side apply of `obj` as field manager `manager` (what Flux does): fields other writers
        own survive, fields this manager applied before and no longer sends are removed, and with
        `force` fields another writer changed are taken back instead of being a conflict."""
        check_new_object(obj)
        _check_json(obj)
        kind, namespace, name = object_key(obj)
        res, ns = self._resource(kind, namespace)
        body = self._wire(res, obj, ns)
        for key in _IDENTITY:
            body["metadata"].pop(key, None)
        body.pop("status", None)  # never ours to apply: the runner and controllers write status
        query = {"fieldManager": manager, "force": force}
        try:
            applied = self._call("PATCH", res.path(ns, name), body=body, query=query,
                                 content_type="application/apply-patch+yaml")
        except NotFound:
            if ns is None or not self.create_namespaces:
                raise
            self.ensure_namespace(ns)
            applied = self._call("PATCH", res.path(ns, name), body=body, query=query,
                                 content_type="application/apply-patch+yaml")
        return self._present(res, applied)

    def delete(self, kind: str, namespace: str, name: str, resource_version: str | None = None) -> None:
        res, ns = self._resource(kind, namespace)
        body: dict = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if resource_version:
            body["preconditions"] = {"resourceVersion": str(resource_version)}
        self._call("DELETE", res.path(ns, name), body=body)

    def install_crds(self) -> None:
        """Create or update the CRDs of the project's own kinds (needs rights on CRDs; the Helm chart
        ships them instead where the daemon has none)."""
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for crd in all_crds():
            try:
                self._call("POST", path, body=crd)
            except AlreadyExists:
                current = self._call("GET", f"{path}/{crd['metadata']['name']}")
                crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self._call("PUT", f"{path}/{crd['metadata']['name']}", body=crd)
        # A new CRD is served only once Established; until then its resources answer 404.
        deadline = time.monotonic() + CRD_ESTABLISH_SECONDS
        for crd in all_crds():
            while not _established(self._call("GET", f"{path}/{crd['metadata']['name']}")):
                if time.monotonic() > deadline:
                    raise StoreError(f"CRD {crd['metadata']['name']} not Established after {CRD_ESTABLISH_SECONDS}s")
                time.sleep(0.2)

    def ensure_namespace(self, namespace: str) -> None:
        """Create the cluster namespace unless it exists (environments' namespaces are the cluster's)."""
        ns_res = RESOURCES["Namespace"]
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": {"app.kubernetes.io/managed-by": "reconciler"}}}
        try:
            self._call("POST", ns_res.path(), body=body)
        except AlreadyExists:
            pass

    # -- watch -----------------------------------------------------------------------------------

    def watch(self, kind: str | None = None, namespace: str | None = None, since: str | None = None,
              timeout: float | None = None) -> Iterator[dict]:
        kinds = [k for k in RESOURCES if k != "Namespace"] if kind is None else [kind]
        sources = [src for k in kinds for src in self._collections(k, namespace)]
        # "From now" is now, at the call, not when the caller first iterates.
        starts = [since or self._list_version(res, ns) for res, ns in sources]
        watchers = [ResourceWatch(self.api, res, ns, start, self._closed, lambda obj, res=res: self._present(res, obj))
                    for (res, ns), start in zip(sources, starts)]
        if len(watchers) == 1:
            return watchers[0].events(timeout)
        return merged(watchers, timeout, self._closed)

    # -- plumbing --------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed.set()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict:
        if self._closed.is_set():
            raise StoreError("the store is closed")
        return self.api.request(method, path, **kwargs)

    def _resource(self, kind: str, namespace: str | None) -> tuple[Resource, str | None]:
        try:
            ns = normalize_namespace(kind, namespace)
            argo = frozenset([ns]) if kind in ARGO_KINDS and ns and self.engine_of(ns) == ENGINE_ARGO else frozenset()
            res = resource_for(kind, ns, argo)
        except KeyError as exc:
            raise StoreError(str(exc.args[0])) from None
        ns = normalize_namespace(kind, namespace) if res.namespaced and kind != "Namespace" else None
        if ns is not None and self.namespaces is not None and ns not in self.namespaces \
                and ns != self.system_namespace:
            raise StoreError(f"namespace {ns!r} is not one this daemon watches ({', '.join(self.namespaces)})")
        return res, ns

    def _collections(self, kind: str, namespace: str | None) -> list[tuple[Resource, str | None]]:
        """The (resource, namespace) pairs a list or watch of `kind` in `namespace` (None: all) covers."""
        if namespace is not None or kind == "Namespace":
            return [self._resource(kind, namespace)]
        res = resource_for(kind) if kind in RESOURCES else self._resource(kind, None)[0]
        if not res.namespaced:
            return [(res, None)]
        out: list[tuple[Resource, str | None]]
        if self.namespaces is None:
            out = [(res, None)]
        else:
            out = [(res, ns) for ns in (*self.namespaces, self.system_namespace)]
        if kind in ("Workflow", "WorkflowTemplate", "CronWorkflow"):
            argo = self.argo_namespaces
            out = [(r, n) for r, n in out if n not in argo]
            out += [(argo_resource(kind), ns) for ns in sorted(argo)]
        return out

    def _list_all(self, res: Resource, ns: str | None, selector: str | None = None) -> tuple[list[dict], str]:
        """Every object of the collection, page by page, and the resourceVersion of the first page."""
        items: list[dict] = []
        token, version = None, ""
        while True:
            page = self._call("GET", res.path(ns), query={"labelSelector": selector, "limit": LIST_PAGE,
                                                          "continue": token})
            version = version or str((page.get("metadata") or {}).get("resourceVersion") or "")
            for item in page.get("items") or []:
                # Lists of built-in kinds carry neither apiVersion nor kind on their items.
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
                items.append(self._present(res, item))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, version

    def _list_version(self, res: Resource, ns: str | None) -> str:
        return str(self._call("GET", res.path(ns), query={"limit": 1})["metadata"]["resourceVersion"])

    def _replace(self, res: Resource, ns: str | None, name: str, body: dict) -> dict:
        stored = self._call("PUT", res.path(ns, name), body=body)
        if res.status_subresource and body.get("status") != stored.get("status"):
            status_body = {**stored, "status": body.get("status") or {}}
            stored = self._call("PUT", res.path(ns, name, "status"), body=status_body)
        return stored

    def _merge(self, res: Resource, ns: str | None, name: str, patch: dict, wanted: str | None) -> dict:
        kind_patch = "application/merge-patch+json"
        parts = [(None, patch)]
        if res.status_subresource and "status" in patch:
            main = {k: v for k, v in patch.items() if k != "status"}
            parts = ([(None, main)] if main else []) + [("status", {"status": patch["status"]})]
        result: dict = {}
        for sub, body in parts:
            if wanted:
                body = {**body, "metadata": {**(body.get("metadata") or {}), "resourceVersion": str(wanted)}}
            result = self._call("PATCH", res.path(ns, name, sub), body=body, content_type=kind_patch)
            wanted = result["metadata"]["resourceVersion"] if wanted else None
        return result

    def _wire(self, res: Resource, obj: dict, ns: str | None) -> dict:
        """The object as the server stores it: its resource's apiVersion, its namespace, nodes compressed."""
        body = copy.deepcopy(obj)
        body["apiVersion"] = res.api_version
        meta = body.setdefault("metadata", {})
        if ns is None:
            meta.pop("namespace", None)
        else:
            meta["namespace"] = ns
        if res.kind == "Workflow":
            body = compress_nodes(body, self.offload_threshold)
        return body

    def _present(self, res: Resource, obj: dict) -> dict:
        """The object as callers see it whichever backend: Argo's apiVersion, "" for cluster scope,
        nodes inflated, the server's bookkeeping fields left out."""
        obj["apiVersion"] = presented_api_version(res)
        obj.setdefault("kind", res.kind)
        meta = obj.setdefault("metadata", {})
        meta.pop("managedFields", None)
        if not res.namespaced:
            meta["namespace"] = ""
        if res.kind == "Workflow" and FIELD in (obj.get("status") or {}):
            inflate_nodes(obj)
        return obj


def _established(crd: dict) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _without_identity(patch: dict) -> dict:
    """A patch may not rename, move or re-identify an object; those keys are dropped, as SQLite does."""
    out = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items()
                           if k not in ("name", "namespace", "uid", "creationTimestamp", "generation",
                                        "managedFields", "selfLink", "generateName")}
    return out


def _check_json(obj: Any) -> None:
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"object is not JSON: {exc}") from None

"""Mutexes, semaphores and the per-namespace cap on running workflows, kept in the store.

Each lock is a `Lock` object whose status lists its holders; taking or freeing a slot is a
compare-and-swap update of that object, so two runners sharing a store never overfill a lock.
Holders are `namespace/workflow` (workflow-level locks and the namespace cap) or
`namespace/workflow/node-id` (template-level). Taking a lock one already holds succeeds, which is
what lets a workflow that was replayed after a crash carry on with the locks it had. A holder
whose workflow is gone, finished, or whose node is finished is stale (its runner died before
freeing it) and is dropped when the lock is found full.

Semaphore sizes come from a ConfigMap key, as in Argo (`configMapKeyRef`); the namespace cap from
the ConfigMap `reconciler-limits`, key `maxRunningWorkflows`, else the runner's default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from reconciler import metrics
from reconciler.engine import nodes as N
from reconciler.names import object_name
from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, Conflict, NotFound

log = logging.getLogger(__name__)

LIMITS_CONFIGMAP = "reconciler-limits"
MAX_RUNNING_KEY = "maxRunningWorkflows"
NAMESPACE_CAP = "workflows"


@dataclass(frozen=True)
class LockRequest:
    namespace: str
    name: str                     # the Lock object's name
    label: str                    # how a person knows it: "semaphore my-config/workflow"
    size_ref: tuple[str, str] | None = None   # (configmap, key) for semaphores; None: a mutex (1)
    default_size: int | None = None           # the namespace cap's fallback


def requests_for(sync: dict | None, namespace: str) -> list[LockRequest]:
    """Argo's `synchronization` in both shapes: v4's lists and v3's single mutex/semaphore."""
    if not sync:
        return []
    out = []
    mutexes = list(sync.get("mutexes") or []) + ([sync["mutex"]] if sync.get("mutex") else [])
    semaphores = list(sync.get("semaphores") or []) + ([sync["semaphore"]] if sync.get("semaphore") else [])
    for m in mutexes:
        ns = m.get("namespace") or namespace
        out.append(LockRequest(ns, object_name(f"mutex.{m['name']}"), f"mutex {m['name']}"))
    for s in semaphores:
        ref = s["configMapKeyRef"]
        ns = s.get("namespace") or namespace
        out.append(LockRequest(ns, object_name(f"semaphore.{ref['name']}.{ref['key']}"),
                               f"semaphore {ref['name']}/{ref['key']}",
                               size_ref=(ref["name"], ref["key"])))
    return sorted(set(out), key=lambda r: (r.namespace, r.name))


def namespace_cap(namespace: str, default: int | None) -> LockRequest:
    return LockRequest(namespace, NAMESPACE_CAP, "namespace limit on running workflows",
                       size_ref=(LIMITS_CONFIGMAP, MAX_RUNNING_KEY), default_size=default)


class LockManager:
    def __init__(self, store: ObjectStore, is_stale: Callable[[str], bool]) -> None:
        self.store = store
        self.is_stale = is_stale
        self.held: dict[str, list[LockRequest]] = {}   # holder -> locks it took through us
        self.waiters: set[str] = set()

    def size(self, req: LockRequest) -> int | None:
        """The lock's capacity; None for "no limit" (a namespace cap nobody set)."""
        if req.size_ref is None:
            return 1
        cm, key = req.size_ref
        try:
            data = self.store.get("ConfigMap", req.namespace, cm).get("data") or {}
        except NotFound:
            data = {}
        raw = data.get(key)
        if raw is None:
            return req.default_size
        try:
            return max(0, int(str(raw).strip()))
        except ValueError:
            log.warning("ConfigMap %s/%s key %s is not a number: %r", req.namespace, cm, key, raw)
            return 0

    def acquire(self, holder: str, requests: list[LockRequest]) -> str | None:
        """Take every lock in `requests` or none of them. None on success, else why it waits."""
        taken = []
        for req in requests:
            waiting = self._take(holder, req)
            if waiting is not None:
                for done in taken:
                    self._give_back(holder, done)
                if holder not in self.waiters:  # count each wait once, not each retry
                    self.waiters.add(holder)
                    metrics.observe_lock_wait(req.namespace, req.label)
                return waiting
            taken.append(req)
        self.waiters.discard(holder)
        self.held[holder] = list(requests)
        return None

    def release(self, holder: str, requests: list[LockRequest] | None = None) -> None:
        if requests is None:
            requests = self.held.pop(holder, None)
        if requests is None:
            # Not taken through us: a runner that died took it, and we carried its workflow on.
            requests = self._held_in_store(holder)
        for req in requests:
            self._give_back(holder, req)

    def holders(self, req: LockRequest) -> list[str]:
        try:
            return list((self.store.get("Lock", req.namespace, req.name).get("status") or {}).get("holders", []))
        except NotFound:
            return []

    def _held_in_store(self, holder: str) -> list[LockRequest]:
        return [LockRequest(obj["metadata"]["namespace"], obj["metadata"]["name"],
                            (obj.get("spec") or {}).get("description", obj["metadata"]["name"]))
                for obj in self.store.list("Lock")
                if holder in (obj.get("status") or {}).get("holders", [])]

    # ---- compare-and-swap on the Lock object ---------------------------------------------------
    def _take(self, holder: str, req: LockRequest) -> str | None:
        for _ in range(20):
            size = self.size(req)
            obj = self._get_or_create(req)
            holders = list((obj.get("status") or {}).get("holders", []))
            if holder in holders:
                return None
            if size is not None and len(holders) >= size:
                # A holder we took is never stale: we free it ourselves once what ends it (a
                # finished node or workflow) is persisted. Judging it stale from our in-memory
                # state would start the next holder before that is recorded.
                live = [h for h in holders if h in self.held or not self.is_stale(h)]
                if len(live) >= size:
                    if size == 0:
                        return f"Waiting for {req.label}: its size is 0 (set it with `reconciler semaphore set`)"
                    return f"Waiting for {req.label}, {len(live)}/{size} held"
                holders = live
            obj.setdefault("status", {})["holders"] = holders + [holder]
            obj["status"]["size"] = size
            try:
                self.store.update(obj)
                return None
            except (Conflict, NotFound):
                continue
        return f"Waiting for {req.label}: busy"

    def _give_back(self, holder: str, req: LockRequest) -> None:
        for _ in range(20):
            try:
                obj = self.store.get("Lock", req.namespace, req.name)
            except NotFound:
                return
            holders = list((obj.get("status") or {}).get("holders", []))
            if holder not in holders:
                return
            obj["status"]["holders"] = [h for h in holders if h != holder]
            try:
                self.store.update(obj)
                return
            except (Conflict, NotFound):
                continue

    def _get_or_create(self, req: LockRequest) -> dict:
        try:
            return self.store.get("Lock", req.namespace, req.name)
        except NotFound:
            pass
        try:
            return self.store.create({
                "apiVersion": "reconciler.io/v1", "kind": "Lock",
                "metadata": {"name": req.name, "namespace": req.namespace},
                "spec": {"description": req.label}, "status": {"holders": []},
            })
        except AlreadyExists:
            return self.store.get("Lock", req.namespace, req.name)


def holder_is_stale(holder: str, ops: dict, store: ObjectStore) -> bool:
    """Whether a lock holder's workflow is gone or finished, or its node finished: `ops` are the
    operators this runner drives (known without reading the store), others are read from it."""
    parts = holder.split("/")
    if len(parts) < 2:
        return True
    key = (parts[0], parts[1])
    op = ops.get(key)
    if op is not None:
        if len(parts) == 2:
            return op.finished
        node = op.nodes.get(parts[2])
        return node is None or (N.is_fulfilled(node) and parts[2] not in op.locked)
    try:
        obj = store.get("Workflow", *key) if len(parts) > 2 else None
        brief = obj or next(o for o in store.list_brief("Workflow", key[0]) if o["metadata"]["name"] == key[1])
    except (NotFound, StopIteration):
        return True
    if (brief.get("status") or {}).get("phase") in (N.SUCCEEDED, N.FAILED, N.ERROR):
        return True
    if len(parts) > 2:
        node = ((obj or {}).get("status") or {}).get("nodes", {}).get(parts[2])
        return node is not None and N.is_fulfilled(node)
    return False

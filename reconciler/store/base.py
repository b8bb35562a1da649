"""The object store interface every backend implements, plus the helpers they share.

Shaped like APScheduler 3's job stores: a small abstract class here, one module per backend. sync/,
engine/ and schedule/ only ever see an ObjectStore.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler import names

from .errors import Conflict, Invalid, StoreError

if TYPE_CHECKING:  # typing.Self is 3.11+, and annotations are never evaluated at runtime here
    from typing_extensions import Self

CLUSTER_SCOPED_KINDS = {"ClusterWorkflowTemplate"}
ENGINE_RECONCILER = "reconciler"
ENGINE_ARGO = "argo"
DEFAULT_NAMESPACE = "default"


class ObjectStore(ABC):
    """Kubernetes-shaped objects keyed by (kind, namespace, name), versioned by resourceVersion.

    Every object returned is the caller's own deep copy. Cluster-scoped kinds live in namespace "".
    """

    @abstractmethod
    def get(self, kind: str, namespace: str, name: str) -> dict:
        """Return the object; NotFound if absent."""

    @abstractmethod
    def list(
        self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict]:
        """Objects of `kind` (in `namespace`, or all namespaces for None) whose labels include
        every pair of `labels`, sorted by (namespace, name)."""

    @abstractmethod
    def create(self, obj: dict) -> dict:
        """Store a new object, filling uid, resourceVersion, creationTimestamp, generation and a
        name from metadata.generateName if needed. AlreadyExists if the name is taken."""

    @abstractmethod
    def update(self, obj: dict) -> dict:
        """Replace the whole object. Conflict if metadata.resourceVersion is set and stale."""

    @abstractmethod
    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict,
        resource_version: str | None = None,
        *,
        return_object: bool = True,
    ) -> dict:
        """Apply an RFC 7386 JSON merge patch. Conflict if `resource_version` (or
        patch.metadata.resourceVersion) is given and stale.

        With return_object=False only {apiVersion, kind, metadata} is returned: building the full
        object costs as much as the object, which defeats a small patch on a huge workflow.
        """

    @abstractmethod
    def delete(self, kind: str, namespace: str, name: str, resource_version: str | None = None) -> None:
        """Remove the object; NotFound if absent, Conflict if `resource_version` is stale."""

    @abstractmethod
    def watch(
        self,
        kind: str | None = None,
        namespace: str | None = None,
        since: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict]:
        """Yield {"type": ADDED|MODIFIED|DELETED, "object": obj} for changes after `since` (None:
        changes from this call on), in resourceVersion order; stop after `timeout` idle seconds.
        A backend may coalesce: a watcher that falls behind can get one event with an object's latest
        state in place of several; Conflict if `since` is older than the retained history."""

    def list_brief(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Like list(), but without `status.nodes`: what a scan over many workflows needs, at a
        cost that does not grow with their node counts."""
        out = self.list(kind, namespace)
        for obj in out:
            if isinstance(obj.get("status"), dict):
                obj["status"].pop("nodes", None)
        return out

    def changes(self, since: str | None, kind: str | None = None) -> tuple[list[Change], str]:
        """Keys of the objects changed after resourceVersion `since` (None: from now), and the
        cursor to pass next time. Conflict when `since` is older than the retained history."""
        out: list[Change] = []
        cursor = since
        for event in self.watch(kind, None, since, timeout=0):
            meta = event["object"]["metadata"]
            out.append(Change(event["type"], event["object"]["kind"], meta.get("namespace", ""), meta["name"],
                              meta["resourceVersion"]))
            cursor = meta["resourceVersion"]
        if cursor is None:
            cursor = self.current_version()
        return out, cursor

    def set_engine(self, namespace: str, engine: str) -> None:
        """Record who runs the workflows of `namespace`: "reconciler" (this project's runner) or "argo"
        (an Argo controller in the cluster; only a backend on a cluster can have one)."""
        if engine != ENGINE_RECONCILER:
            raise StoreError(f"engine: {engine} needs --backend kubernetes (a cluster whose Argo controller runs "
                             f"the workflows); this store is {type(self).__name__}")

    def engine_of(self, namespace: str) -> str:
        """Who runs the workflows of `namespace` (see set_engine)."""
        return ENGINE_RECONCILER

    def current_version(self) -> str:
        """The store's latest resourceVersion (each backend knows how to read it cheaply)."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None:
        """Release the backend's resources; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Change(NamedTuple):
    type: str             # ADDED | MODIFIED | DELETED
    kind: str
    namespace: str
    name: str
    resource_version: str


def normalize_namespace(kind: str, namespace: str | None) -> str:
    """The namespace an object of `kind` really lives in (cluster-scoped kinds ignore it)."""
    if kind in CLUSTER_SCOPED_KINDS:
        return ""
    return namespace or DEFAULT_NAMESPACE


def check_new_object(obj: Any) -> None:
    """Raise StoreError unless `obj` has the fields create() cannot invent."""
    if not isinstance(obj, dict):
        raise StoreError(f"an object must be a mapping, not {type(obj).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            raise StoreError(f"object has no {field}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise StoreError(f"{obj['kind']} has no metadata")
    if not _nonempty_str(meta.get("name")) and not _nonempty_str(meta.get("generateName")):
        raise StoreError(f"{obj['kind']} has neither metadata.name nor metadata.generateName")
    check_meta(obj["kind"], meta)


def check_meta(kind: str, meta: dict, *, identity: bool = True) -> None:
    """Raise Invalid unless `meta` obeys Kubernetes' (and Argo's) name and label rules. Without
    `identity` only labels and annotations are looked at: an update cannot change the name or
    namespace, which were checked when the object was created."""
    try:
        names.check_meta(kind, meta, namespaced=kind not in CLUSTER_SCOPED_KINDS, identity=identity)
    except names.InvalidName as exc:
        raise Invalid(str(exc)) from None


def object_key(obj: dict) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object that already has a name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not _nonempty_str(meta.get("name")):
        raise StoreError("object has no metadata.name")
    kind = obj.get("kind")
    if not _nonempty_str(kind):
        raise StoreError("object has no kind")
    return kind, normalize_namespace(kind, meta.get("namespace")), meta["name"]


def generated_name(prefix: str) -> str:
    return names.generate_name(prefix)


def now_timestamp() -> str:
    """RFC 3339 UTC with second precision, as Kubernetes writes creationTimestamp."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels_match(obj: dict, selector: Mapping[str, str] | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def raise_if_stale(kind: str, namespace: str, name: str, stored: object, wanted: object) -> None:
    """The compare-and-swap check: an unset precondition (None or "") always passes."""
    if wanted not in (None, "") and str(wanted) != str(stored):
        raise Conflict(
            f"{kind} {namespace}/{name}: resourceVersion {wanted} is stale (now {stored}); "
            "the object has been modified"
        )


def parse_since(since: str | None) -> int | None:
    if since in (None, ""):
        return None
    try:
        return int(since)
    except (TypeError, ValueError):
        raise StoreError(f"resourceVersion {since!r} is not a number") from None


def poll_watch(
    read: Callable[[], tuple[list[dict], bool]],
    wait: Callable[[float], None],
    closed: Callable[[], bool],
    timeout: float | None,
    interval: float,
) -> Iterator[dict]:
    """The loop of a watch that polls: yield what `read()` returns ((events, more_pending)), idle in
    `wait(seconds)` between empty reads, end after `timeout` idle seconds or when the store closes."""
    idle_since = time.monotonic()
    while not closed():
        try:
            batch, more = read()
        except StoreError:
            if closed():
                return
            raise
        yield from batch
        if batch:
            idle_since = time.monotonic()
        if batch or more:  # a full batch may have coalesced to nothing: read on before idling
            continue
        pause = interval
        if timeout is not None:
            remaining = idle_since + timeout - time.monotonic()
            if remaining <= 0:
                return
            pause = min(pause, remaining)
        wait(pause)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""

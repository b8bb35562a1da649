"""An informer, as client-go has them: list a resource, then watch it from the list's resourceVersion
(with bookmarks), keeping a cache of its objects; resume after dropped connections, list again on 410.
`list_brief` is served from it, so the runner's scans and the API's lists cost no request each.
The cache trails the server by one watch event: a caller that must see its own write reads with get()."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable

from .errors import Conflict, StoreError
from .kinds import Resource
from .kube_client import KubeApi
from .kube_watch import ResourceWatch

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 60.0


class Informer:
    def __init__(self, api: KubeApi, res: Resource, ns: str | None, closed: threading.Event,
                 list_all: Callable[[], tuple[list[dict], str]], present: Callable[[dict], dict]) -> None:
        self.api, self.res, self.ns = api, res, ns
        self.closed = closed
        self._list_all = list_all      # () -> (objects as callers see them, the list's resourceVersion)
        self._present = present
        self._objects: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self.relists = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"informer-{res.plural}")
        self._thread.start()

    def brief(self, namespace: str | None) -> list[dict]:
        """The cached objects (of `namespace`, or all), without status.nodes, sorted by (namespace, name)."""
        if not self.synced.wait(SYNC_TIMEOUT):
            raise StoreError(f"informer for {self.res.plural}: the first list did not finish in {SYNC_TIMEOUT}s")
        with self._lock:
            items = [obj for (ns, _), obj in sorted(self._objects.items()) if namespace is None or ns == namespace]
        out = []
        for obj in items:
            status = obj.get("status")
            slim = {k: v for k, v in obj.items() if k != "status"}
            if isinstance(status, dict):
                slim["status"] = {k: v for k, v in status.items() if k != "nodes"}
            out.append(copy.deepcopy(slim))
        return out

    def _run(self) -> None:
        while not self.closed.is_set():
            try:
                objects, version = self._list_all()
            except StoreError as exc:
                log.warning("informer for %s: list failed: %s", self.res.plural, exc)
                self.closed.wait(1.0)
                continue
            with self._lock:
                self._objects = {_key(o): o for o in objects}
            self.synced.set()
            watch = ResourceWatch(self.api, self.res, self.ns, version, self.closed, self._present)
            try:
                for event in watch.events(None):
                    obj = event["object"]
                    with self._lock:
                        if event["type"] == "DELETED":
                            self._objects.pop(_key(obj), None)
                        else:
                            self._objects[_key(obj)] = obj
            except Conflict:
                self.relists += 1  # history compacted under us (410): list again
                log.info("informer for %s: resourceVersion too old; listing again", self.res.plural)
            except StoreError as exc:
                if self.closed.is_set():
                    return
                log.warning("informer for %s: %s; listing again", self.res.plural, exc)
                self.closed.wait(1.0)


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")

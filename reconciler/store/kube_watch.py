"""Watches on the Kubernetes API: one resource's events resumed across dropped connections and the
server's own timeouts (from the last resourceVersion seen, bookmarks included), and several resources'
watches merged for a watch without a kind."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator

import urllib3

from .errors import Conflict, StoreError
from .kinds import Resource
from .kube_client import KubeApi

# The server ends a watch after this long; we resume it from the last resourceVersion seen.
WATCH_SECONDS = 300
# watch(timeout=0) (what changes() asks) has no server-side meaning: events already due arrive within
# a round trip, so "nothing more" is an idle gap this long.
MIN_IDLE = 0.25


class ResourceWatch:
    """The events of one resource (in one namespace, or all for None) after resourceVersion `since`."""

    def __init__(self, api: KubeApi, res: Resource, ns: str | None, since: str, closed: threading.Event,
                 present: Callable[[dict], dict]) -> None:
        self.api, self.res, self.ns, self.since = api, res, ns, since
        self.closed = closed
        self.present = present

    def events(self, timeout: float | None) -> Iterator[dict]:
        """The events after `since`; resumes after the server ends the stream or the connection drops;
        Conflict when `since` is older than the server's history (410); ends after `timeout` idle seconds."""
        api, res, ns, since = self.api, self.res, self.ns, self.since
        idle = None if timeout is None else max(timeout, MIN_IDLE)
        deadline = None if idle is None else time.monotonic() + idle
        rv = since
        failures = 0
        while not self.closed.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            server_seconds = WATCH_SECONDS if remaining is None else max(1, min(WATCH_SECONDS, math.ceil(remaining)))
            query = {"watch": True, "resourceVersion": rv, "allowWatchBookmarks": True,
                     "timeoutSeconds": server_seconds}
            try:
                for event in api.stream(res.path(ns), query, remaining):
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        code = obj.get("code")
                        if code == 410:
                            raise Conflict(f"watch {res.plural}: resourceVersion {rv} is too old: "
                                           f"{obj.get('message', 'history compacted')}")
                        raise StoreError(f"watch {res.plural}: {obj.get('message') or obj}")
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    if kind == "BOOKMARK":
                        continue
                    failures = 0
                    if deadline is not None:
                        deadline = time.monotonic() + idle
                    yield {"type": kind, "object": self.present(obj)}
            except urllib3.exceptions.ReadTimeoutError:
                continue  # the deadline check above ends an idle watch; a bookmark-fed one reconnects
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                failures += 1
                api.backoff(min(failures, 6), None, f"watch {res.plural}: {type(exc).__name__}")
            except StoreError as exc:
                if isinstance(exc, Conflict) or self.closed.is_set():
                    raise
                failures += 1
                api.backoff(min(failures, 6), None, f"watch {res.plural}: {exc}")


def merged(watches: list[ResourceWatch], timeout: float | None, closed: threading.Event) -> Iterator[dict]:
    """Several resources' watches merged through a queue, one thread each; an event's place in the
    merged order follows arrival (Kubernetes orders events within a resource only)."""
    events: queue.Queue = queue.Queue(maxsize=1024)
    stop = threading.Event()

    def pump(watch: ResourceWatch) -> None:
        try:
            for event in watch.events(None if timeout is None else timeout + 1):
                if stop.is_set():
                    return
                events.put(event)
        except StoreError as exc:
            events.put(exc)

    for watch in watches:
        threading.Thread(target=pump, args=(watch,), daemon=True, name=f"watch-{watch.res.plural}").start()
    idle = None if timeout is None else max(timeout, MIN_IDLE)
    try:
        while not closed.is_set():
            try:
                item = events.get(timeout=idle)
            except queue.Empty:
                return
            if isinstance(item, StoreError):
                raise item
            yield item
    finally:
        stop.set()

"""One change feed shared by every event-stream client of the API.

A single thread follows the store's change log (ObjectStore.changes) while anyone listens, reads each
changed object once per batch, and hands the batch to every subscriber whose kind it is. Subscribers
have bounded queues: one that falls MAX_QUEUED batches behind is dropped (its stream ends with an
error event, and the client resumes from its last event id), never buffered without end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.store.base import Change, ObjectStore
from reconciler.store.errors import Conflict, NotFound, StoreError

log = logging.getLogger("reconciler.api")

POLL_SECONDS = 0.2      # how often the feed reads the change log while someone listens
MAX_QUEUED = 256        # batches a subscriber may have waiting before it is dropped
MAX_SUBSCRIBERS = 256   # open streams per daemon; more get 503


@dataclass
class Batch:
    """Events up to store version `cursor`; `events` are {"type", "object"} with the latest state."""

    cursor: int
    events: list[dict]
    reset: str = ""  # non-empty: the feed lost its place (history compacted); subscribers must start over


@dataclass(eq=False)
class Subscriber:
    kinds: frozenset[str]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))
    dropped: bool = False

    def offer(self, batch: Batch) -> None:
        """Runs on the event loop: queue the batch, or drop a subscriber that is too far behind."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.dropped = True
            self.queue.get_nowait()  # room for the wake-up below; the stream ends anyway
            self.queue.put_nowait(None)


class Feed:
    """Started by the first subscriber, stopped when the last leaves."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def subscribe(self, kinds: frozenset[str]) -> Subscriber:
        sub = Subscriber(kinds, asyncio.get_running_loop())
        with self._lock:
            if len(self._subscribers) >= MAX_SUBSCRIBERS:
                raise OverflowError(f"{MAX_SUBSCRIBERS} event streams are open already")
            self._subscribers.add(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                # Pin the starting point before the caller reads its backlog: no change falls between.
                cursor = int(self.store.current_version())
                self._thread = threading.Thread(target=self._run, args=(cursor,), name="reconciler-feed",
                                                daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)
            if not self._subscribers:
                self._stop.set()

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self, cursor: int) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                subscribers = list(self._subscribers)
            if not subscribers:
                return
            try:
                cursor, batches = self._read(cursor, frozenset().union(*(s.kinds for s in subscribers)))
            except Conflict as exc:
                cursor = int(self.store.current_version())
                batches = {kind: Batch(cursor, [], str(exc)) for kind in {k for s in subscribers for k in s.kinds}}
            except StoreError as exc:  # the store closing under us, or a bad read: try again next tick
                if self._stop.is_set():
                    return
                log.warning("event feed: %s", exc)
                continue
            for sub in subscribers:
                for kind in sub.kinds:
                    batch = batches.get(kind)
                    if batch is not None:
                        sub.loop.call_soon_threadsafe(sub.offer, batch)

    def _read(self, cursor: int, kinds: frozenset[str]) -> tuple[int, dict[str, Batch]]:
        changes, new_cursor = self.store.changes(str(cursor))
        out: dict[str, Batch] = {}
        for (kind, namespace, name), change_type in coalesce(c for c in changes if c.kind in kinds).items():
            event = object_event(self.store, kind, namespace, name, change_type)
            out.setdefault(kind, Batch(int(new_cursor), [])).events.append(event)
        return int(new_cursor), out


def coalesce(changes: Iterable[Change]) -> dict[tuple[str, str, str], str]:
    """Each changed object once, in the order of its last change: an object added and then modified
    is still ADDED to a client that saw neither change."""
    latest: dict[tuple[str, str, str], str] = {}
    for change in changes:
        key = (change.kind, change.namespace, change.name)
        before = latest.pop(key, None)
        latest[key] = "ADDED" if before == "ADDED" and change.type == "MODIFIED" else change.type
    return latest


def object_event(store: ObjectStore, kind: str, namespace: str, name: str, change_type: str) -> dict:
    """{"type", "object"} for a changed object as it is now; a deleted one is named by its key only."""
    if change_type != "DELETED":
        try:
            return {"type": change_type, "object": store.get(kind, namespace, name)}
        except NotFound:
            pass
    return {"type": "DELETED", "object": {"kind": kind, "metadata": {"name": name, "namespace": namespace}}}


def feed_of(state: Any) -> Feed:
    """The app's one feed, created on first use."""
    feed = getattr(state, "feed", None)
    if feed is None:
        feed = state.feed = Feed(state.store)
    return feed

"""A leader lease kept as a store object, shaped like Kubernetes' coordination.k8s.io/v1 Lease.

Taking and renewing go through the store's compare-and-swap (create raises AlreadyExists, update
raises Conflict on a stale resourceVersion), so of several contenders exactly one write wins, on
SQLite and on the Kubernetes API alike. A holder counts itself the leader until the moment its last
successful write would let another contender take over (write time + duration), measured on the
same injectable clock, so the two never overlap.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from .base import ObjectStore
from .errors import AlreadyExists, Conflict, NotFound

LEASE_API_VERSION = "coordination.k8s.io/v1"
LEASE_KIND = "Lease"
LEASE_NAMESPACE = "reconciler-system"
LEADER_LEASE = "reconciler-leader"
DEFAULT_DURATION = 15


def micro_time(ts: float) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lease_expiry(obj: dict) -> float | None:
    """When the lease in `obj` runs out (renewTime + leaseDurationSeconds); None if never renewed."""
    spec = obj.get("spec") or {}
    renewed = parse_micro_time(spec.get("renewTime"))
    if renewed is None:
        return None
    return renewed + float(spec.get("leaseDurationSeconds") or 0)


class Lease:
    """One contender for the lease `name`. Thread-safe; every method does at most one store write."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        identity: str,
        *,
        duration: float = DEFAULT_DURATION,
        namespace: str = LEASE_NAMESPACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not identity:
            raise ValueError("a lease contender needs a non-empty identity")
        self.store = store
        self.name = name
        self.identity = identity
        # The object stores whole seconds (leaseDurationSeconds is an integer in Kubernetes).
        self.duration = max(1, math.ceil(duration))
        self.namespace = namespace
        self.clock = clock
        self._held_until = 0.0
        self._lock = threading.Lock()

    # -- queries ---------------------------------------------------------------------------------

    def is_held(self) -> bool:
        """True while our last successful acquire/renew is younger than the lease duration.

        Answered from memory, so it is cheap enough to ask before every action a leader takes."""
        return self.clock() < self._held_until

    def holder(self) -> str | None:
        """Who the stored lease names, if it has not expired (for status displays)."""
        try:
            obj = self.store.get(LEASE_KIND, self.namespace, self.name)
        except NotFound:
            return None
        expiry = lease_expiry(obj)
        holder = (obj.get("spec") or {}).get("holderIdentity") or None
        return holder if expiry is not None and self.clock() < expiry else None

    # -- transitions -----------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours (then this renews it)."""
        with self._lock:
            now = self.clock()
            try:
                current = self.store.get(LEASE_KIND, self.namespace, self.name)
            except NotFound:
                return self._create(now)
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity") or None
            if holder == self.identity:
                return self._write(current, now, taking_over=False)
            expiry = lease_expiry(current)
            if holder is not None and expiry is not None and now <= expiry:
                self._held_until = 0.0
                return False
            return self._write(current, now, taking_over=True)

    def renew(self) -> bool:
        """Extend our lease; False (and no longer held) if someone else has it now."""
        with self._lock:
            now = self.clock()
            try:
                current = self.store.get(LEASE_KIND, self.namespace, self.name)
            except NotFound:
                self._held_until = 0.0
                return False
            if (current.get("spec") or {}).get("holderIdentity") != self.identity:
                self._held_until = 0.0
                return False
            return self._write(current, now, taking_over=False)

    def release(self) -> None:
        """Give the lease up now, so a standby need not wait for it to expire."""
        with self._lock:
            self._held_until = 0.0
            try:
                current = self.store.get(LEASE_KIND, self.namespace, self.name)
            except NotFound:
                return
            spec = dict(current.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            # As client-go's leader election does: no holder, and a renewTime already in the past.
            spec["holderIdentity"] = None
            spec["renewTime"] = micro_time(self.clock() - self.duration - 1)
            current["spec"] = spec
            try:
                self.store.update(current)
            except (Conflict, NotFound):
                pass

    # -- writes ----------------------------------------------------------------------------------

    def _create(self, now: float) -> bool:
        obj = {
            "apiVersion": LEASE_API_VERSION,
            "kind": LEASE_KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            self.store.create(obj)
        except AlreadyExists:
            self._held_until = 0.0
            return False
        self._held_until = self._expiry_of(now)
        return True

    def _expiry_of(self, now: float) -> float:
        # Exactly the expiry another contender reads back (renewTime is stored to the microsecond).
        return (parse_micro_time(micro_time(now)) or now) + self.duration

    def _write(self, current: dict, now: float, *, taking_over: bool) -> bool:
        spec = dict(current.get("spec") or {})
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = self.duration
        spec["renewTime"] = micro_time(now)
        if taking_over:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        current["spec"] = spec
        try:
            # current carries the resourceVersion we read: a concurrent writer makes this Conflict.
            self.store.update(current)
        except (Conflict, NotFound):
            self._held_until = 0.0
            return False
        self._held_until = self._expiry_of(now)
        return True

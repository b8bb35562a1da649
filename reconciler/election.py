"""Leader election between the daemon's replicas: one coordination.k8s.io Lease (store/leases.py).

The leader syncs, schedules and runs workflows; the others serve the read API and try to take the
lease every third of its duration, so a standby takes over within one lease duration of the leader's
last renewal. A leader that cannot renew before its lease runs out stops leading at once (as
client-go's leader election does: the process ends and its supervisor starts it again as a standby).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from reconciler.store.errors import StoreError
from reconciler.store.leases import LEADER_LEASE, Lease

log = logging.getLogger("reconciler.election")

DURATION_ENV = "RECONCILER_LEADER_LEASE_SECONDS"
DEFAULT_DURATION = 15.0


def lease_duration(environ: dict | None = None) -> float:
    raw = (os.environ if environ is None else environ).get(DURATION_ENV) or ""
    if not raw:
        return DEFAULT_DURATION
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{DURATION_ENV}: {raw!r} is not a number of seconds") from None
    if not 1 <= value <= 3600:
        raise ValueError(f"{DURATION_ENV}: {raw} is outside 1..3600 seconds")
    return value


class LeaderElection:
    def __init__(self, store, identity: str, stop: threading.Event, *, namespace: str,
                 duration: float = DEFAULT_DURATION) -> None:
        self.lease = Lease(store, LEADER_LEASE, identity, duration=duration, namespace=namespace)
        self.stop = stop
        self.period = max(0.2, self.lease.duration / 3)
        self.lost = False
        self._thread: threading.Thread | None = None

    def wait_for_leadership(self) -> bool:
        """Block until this replica holds the lease (True) or the daemon is stopping (False)."""
        announced = False
        while not self.stop.is_set():
            try:
                if self.lease.try_acquire():
                    log.info("leader election: %s leads (lease %s/%s)", self.lease.identity,
                             self.lease.namespace, self.lease.name)
                    return True
                if not announced:
                    log.info("leader election: standing by; %s leads", self.lease.holder() or "nobody yet")
                    announced = True
            except StoreError as exc:
                log.warning("leader election: %s", exc)
            self.stop.wait(self.period)
        return False

    def keep_leading(self, on_lost: Callable[[], None]) -> None:
        """Renew in the background; on losing the lease call `on_lost` once."""
        def renew() -> None:
            while not self.stop.wait(self.period):
                try:
                    if self.lease.renew():
                        continue
                except StoreError as exc:
                    log.warning("leader election: renewing failed: %s", exc)
                    if self.lease.is_held():
                        continue  # still ours for a while: try again
                self.lost = True
                log.error("leader election: lost the lease; stopping so that one leader acts at a time")
                on_lost()
                return

        self._thread = threading.Thread(target=renew, name="leader-election", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """On a clean stop: free the lease so a standby takes over now."""
        if self._thread is not None:
            self._thread.join(timeout=self.period + 1)
        if not self.lost:
            try:
                self.lease.release()
            except StoreError as exc:
                log.warning("leader election: releasing failed: %s", exc)

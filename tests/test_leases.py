"""reconciler.store.leases: a Kubernetes-shaped Lease taken by compare-and-swap on a real SQLite store.
Two contenders never both hold it; expiry lets the other take over; release hands it over at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.store import open_store
from reconciler.store.leases import LEASE_NAMESPACE, Lease, parse_micro_time
from tests.schedule_support import FakeClock

T0 = 1_900_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path):
    s = open_store(db)
    yield s
    s.close()


def contenders(store, clock, n=2, duration=15):
    return [Lease(store, "leader", f"node-{i}", duration=duration, clock=clock) for i in range(n)]


def test_first_contender_takes_it_and_the_object_looks_like_a_kubernetes_lease(store):
    clock = FakeClock(T0)
    a, b = contenders(store, clock)
    assert a.try_acquire() and a.is_held()
    assert not b.try_acquire() and not b.is_held()
    obj = store.get("Lease", LEASE_NAMESPACE, "leader")
    assert obj["apiVersion"] == "coordination.k8s.io/v1"
    spec = obj["spec"]
    assert spec["holderIdentity"] == "node-0" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert parse_micro_time(spec["renewTime"]) == T0 == parse_micro_time(spec["acquireTime"])
    assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]
    assert a.holder() == "node-0"


def test_renewing_keeps_it_and_the_other_waits(store):
    clock = FakeClock(T0)
    a, b = contenders(store, clock)
    a.try_acquire()
    for _ in range(10):
        clock.advance(10)
        assert a.renew() and a.is_held()
        assert not b.try_acquire()
    assert store.get("Lease", LEASE_NAMESPACE, "leader")["spec"]["leaseTransitions"] == 0


def test_expiry_lets_the_other_take_over_and_the_old_holder_notices(store):
    clock = FakeClock(T0)
    a, b = contenders(store, clock)
    a.try_acquire()
    clock.set(T0 + 15)  # exactly at expiry: still a's
    assert a.is_held() is False  # a stops acting at the instant b may start
    assert not b.try_acquire()
    clock.set(T0 + 15.001)
    assert b.try_acquire() and b.is_held()
    assert not a.is_held() and not a.renew()
    spec = store.get("Lease", LEASE_NAMESPACE, "leader")["spec"]
    assert spec["holderIdentity"] == "node-1" and spec["leaseTransitions"] == 1
    assert parse_micro_time(spec["acquireTime"]) == pytest.approx(T0 + 15.001)


def test_release_lets_the_other_take_over_immediately(store):
    clock = FakeClock(T0)
    a, b = contenders(store, clock)
    a.try_acquire()
    clock.advance(1)
    a.release()
    assert not a.is_held()
    assert b.try_acquire()
    assert a.holder() == "node-1"
    b.release()
    assert b.holder() is None


def test_release_by_a_non_holder_changes_nothing(store):
    clock = FakeClock(T0)
    a, b = contenders(store, clock)
    a.try_acquire()
    b.release()
    assert a.renew() and not b.try_acquire()


class StaleReads:
    """A store whose next get() is answered, and then `before_return` runs: the read is stale by
    the time the caller writes, as when two daemons read the lease at the same moment."""

    def __init__(self, inner, before_return):
        self.inner, self.before_return = inner, before_return

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get(self, *args):
        obj = self.inner.get(*args)
        hook, self.before_return = self.before_return, None
        if hook:
            hook()
        return obj


def test_two_contenders_racing_for_an_expired_lease_cannot_both_win(db, store):
    clock = FakeClock(T0)
    first = Lease(store, "leader", "old", clock=clock)
    first.try_acquire()
    clock.advance(60)  # expired: up for grabs
    other = open_store(db)
    try:
        b = Lease(other, "leader", "b", clock=clock)
        a = Lease(StaleReads(store, before_return=lambda: b.try_acquire()), "leader", "a", clock=clock)
        won_a = a.try_acquire()  # read the expired lease, then b took it, then a's write
        assert b.is_held() and not won_a and not a.is_held()
    finally:
        other.close()


def test_two_contenders_racing_to_create_cannot_both_win(db, store):
    clock = FakeClock(T0)
    other = open_store(db)
    try:
        b = Lease(other, "leader", "b", clock=clock)
        # a finds no lease, b creates it meanwhile, a's create fails.
        a = Lease(StaleNotFound(store, lambda: b.try_acquire()), "leader", "a", clock=clock)
        assert not a.try_acquire() and b.is_held()
    finally:
        other.close()


class StaleNotFound(StaleReads):
    def get(self, *args):
        from reconciler.store.errors import NotFound

        hook, self.before_return = self.before_return, None
        if hook:
            hook()
            raise NotFound("not yet")
        return self.inner.get(*args)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["acquire", "renew", "release", "wait"]),
                          st.integers(0, 2), st.floats(0, 20)), max_size=40))
def test_never_two_holders_at_once(tmp_path_factory, ops):
    """Any interleaving of acquire/renew/release by three contenders and any clock moves: at every
    moment at most one of them believes it holds the lease."""
    store = open_store(tmp_path_factory.mktemp("lease") / "store.db")
    try:
        clock = FakeClock(T0)
        leases = contenders(store, clock, n=3)
        for op, who, seconds in ops:
            lease = leases[who]
            if op == "acquire":
                lease.try_acquire()
            elif op == "renew":
                lease.renew()
            elif op == "release":
                lease.release()
            else:
                clock.advance(seconds)
            assert sum(x.is_held() for x in leases) <= 1
    finally:
        store.close()


def contend(lease: Lease, barrier: threading.Barrier) -> None:
    barrier.wait()
    if lease.is_held():
        lease.renew()
    else:
        lease.try_acquire()


def test_threads_hammering_one_lease_on_separate_connections(db):
    """Real threads, separate connections, one shared clock that only moves between rounds."""
    clock = FakeClock(T0)
    stores = [open_store(db) for _ in range(4)]
    try:
        leases = [Lease(s, "leader", f"t{i}", duration=5, clock=clock) for i, s in enumerate(stores)]
        for _round in range(25):
            barrier = threading.Barrier(len(leases))

            threads = [threading.Thread(target=contend, args=(x, barrier)) for x in leases]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(x.is_held() for x in leases) == 1
            clock.advance(3 if _round % 5 else 7)  # every fifth round the lease lapses
    finally:
        for s in stores:
            s.close()

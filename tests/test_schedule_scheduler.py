"""reconciler.schedule.CronScheduler on a real SQLite store with an injected clock: fires once per
scheduled time, follows the store (a git commit), catches up within startingDeadlineSeconds after a
restart, survives a kill in the middle of a fire, fires only while holding the leader lease, keeps
history limits; and the real-time APScheduler path registers the right jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciler.schedule import CronScheduler
from reconciler.store import open_store
from reconciler.store.leases import LEADER_LEASE, Lease
from tests.schedule_support import FakeClock, cron_obj, git_update, names, set_phase

UTC = timezone.utc
# Objects get a real creationTimestamp and a CronWorkflow never fires before it exists, so the fake
# clock runs in the future: H is a whole hour at least an hour from now.
H = (int(time.time()) // 3600 + 2) * 3600


def wf(t: float, cron: str = "tick") -> str:
    return f"{cron}-{int(t)}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path):
    s = open_store(db)
    yield s
    s.close()


def scheduler(store, clock, **kwargs) -> CronScheduler:
    kwargs.setdefault("background", False)
    kwargs.setdefault("default_timezone", UTC)
    return CronScheduler(store, clock=clock, **kwargs)


def run_at(s: CronScheduler, clock: FakeClock, *times: float) -> list[str]:
    """Step the scheduler at each time; the workflows it created or found."""
    out = []
    for t in times:
        clock.set(t)
        out += [r.workflow for r in s.step() if r.outcome in ("created", "exists")]
    return out


# -- firing on time -------------------------------------------------------------------------------

def test_fires_each_scheduled_minute_exactly_once(store):
    store.create(cron_obj())
    clock = FakeClock(H + 30)
    s = scheduler(store, clock)
    s.start()
    assert run_at(s, clock, H + 30, H + 59.9, H + 60, H + 60.5, H + 61, H + 119, H + 120.2) == [wf(H + 60), wf(H + 120)]
    assert names(store) == [wf(H + 60), wf(H + 120)]
    status = store.get("CronWorkflow", "default", "tick")["status"]
    assert status["lastScheduledTime"] == datetime.fromtimestamp(H + 120, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_late_wakeup_fires_and_a_long_stall_fires_only_the_latest(store):
    store.create(cron_obj())
    clock = FakeClock(H + 30)
    s = scheduler(store, clock)
    s.start()
    # 45 s late (a starved thread) is still this minute's fire: the scheduler was running at H+60.
    assert run_at(s, clock, H + 105) == [wf(H + 60)]
    # Not called for 4 minutes: the missed minutes coalesce into one fire, as in Argo.
    assert run_at(s, clock, H + 301) == [wf(H + 300)]
    assert names(store) == [wf(H + 60), wf(H + 300)]


def test_several_schedules_and_seconds_in_names(store):
    store.create(cron_obj(schedule=["*/2 * * * *", "1 * * * *"]))
    clock = FakeClock(H - 30)
    s = scheduler(store, clock)
    s.start()
    fired = run_at(s, clock, *[H + 60 * k for k in range(0, 5)])
    assert fired == [wf(H), wf(H + 60), wf(H + 120), wf(H + 240)]


# -- time zones and DST ---------------------------------------------------------------------------

def utc_of(tz: ZoneInfo, *wall: int, fold: int = 0) -> float:
    return datetime(*wall, tzinfo=tz, fold=fold).timestamp()


def first_sunday(year: int, month: int, nth: int = 1) -> int:
    day = next(d for d in range(1, 8) if datetime(year, month, d).weekday() == 6)
    return day + 7 * (nth - 1)


YEAR = datetime.now(UTC).year + 2  # in the future: see H


def test_timezone_fires_at_local_wall_time_in_winter_and_summer(store):
    paris = ZoneInfo("Europe/Paris")
    store.create(cron_obj(schedule="0 9 * * *", timezone="Europe/Paris"))
    clock = FakeClock(utc_of(paris, YEAR, 1, 15, 8))
    s = scheduler(store, clock)
    s.start()
    winter = utc_of(paris, YEAR, 1, 15, 9)
    summer = utc_of(paris, YEAR, 7, 15, 9)
    assert winter % 86400 == 8 * 3600 and summer % 86400 == 7 * 3600  # 08:00Z and 07:00Z
    assert run_at(s, clock, winter - 1, winter + 1) == [wf(winter)]
    # Jump to July (as if leading all along): the stall coalesces to the latest, 09:00 Paris in summer.
    assert run_at(s, clock, summer - 1, summer + 1) == [wf(utc_of(paris, YEAR, 7, 14, 9)), wf(summer)]


def test_dst_fall_back_fires_the_repeated_time_twice_and_spring_forward_skips(store):
    ny = ZoneInfo("America/New_York")
    nov = first_sunday(YEAR, 11)
    mar = first_sunday(YEAR, 3, 2)
    store.create(cron_obj("fall", schedule="30 1 * * *", timezone="America/New_York"))
    store.create(cron_obj("spring", schedule="30 2 * * *", timezone="America/New_York"))
    clock = FakeClock(utc_of(ny, YEAR, 3, mar - 1, 0))
    s = scheduler(store, clock)
    s.start()
    # Spring: walk the clock every 15 minutes over two days.
    t = clock.now
    while t < utc_of(ny, YEAR, 3, mar + 1, 12):
        t += 900
        run_at(s, clock, t)
    assert names(store, "spring") == [wf(utc_of(ny, YEAR, 3, mar - 1, 2, 30), "spring"),
                                      wf(utc_of(ny, YEAR, 3, mar + 1, 2, 30), "spring")]
    # Fall: same walk across the repeated hour.
    clock.set(utc_of(ny, YEAR, 11, nov - 1, 12))
    s.step()
    before = set(names(store, "fall"))
    t = clock.now
    while t < utc_of(ny, YEAR, 11, nov + 1, 12):
        t += 900
        run_at(s, clock, t)
    new = sorted(set(names(store, "fall")) - before)
    first, second = utc_of(ny, YEAR, 11, nov, 1, 30), utc_of(ny, YEAR, 11, nov, 1, 30, fold=1)
    assert second - first == 3600
    assert new == [wf(first, "fall"), wf(second, "fall"), wf(utc_of(ny, YEAR, 11, nov + 1, 1, 30), "fall")]


# -- restarts and missed fires --------------------------------------------------------------------

@pytest.mark.parametrize(("deadline", "expected_catch_up"), [(None, False), (20, False), (60, True), (3600, True)])
def test_missed_fire_after_downtime_follows_the_starting_deadline(store, deadline, expected_catch_up):
    fields = {} if deadline is None else {"startingDeadlineSeconds": deadline}
    store.create(cron_obj(**fields))
    clock = FakeClock(H + 60)
    a = scheduler(store, clock)
    a.start()  # starts exactly at 10:01:00, so 10:01 is a live fire
    assert names(store) == [wf(H + 60)]
    a.shutdown()
    # Down from 10:01:00 to 10:05:30: 10:02..10:05 were missed; 10:05 is 30 s old on restart.
    clock.set(H + 330)
    b = scheduler(store, clock)
    b.start()
    expected = [wf(H + 60)] + ([wf(H + 300)] if expected_catch_up else [])
    assert names(store) == expected  # at most the latest missed time, once
    run_at(b, clock, H + 331, H + 359)
    assert names(store) == expected
    run_at(b, clock, H + 360)
    assert names(store) == expected + [wf(H + 360)]


def test_never_fired_cron_catches_up_only_within_deadline(store):
    store.create(cron_obj(startingDeadlineSeconds=90))
    clock = FakeClock(H + 130)  # first start ever; H+120 was 10 s ago
    s = scheduler(store, clock)
    s.start()
    assert names(store) == [wf(H + 120)]


class Killed(BaseException):
    """The daemon dying: not an Exception, so nothing on the way may swallow it."""


class CrashingStore:
    """Delegates to a store, but "kills the daemon" on the first status write to a CronWorkflow."""

    def __init__(self, inner):
        self.inner = inner
        self.crashed = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def patch(self, kind, *args, **kwargs):
        if kind == "CronWorkflow" and not self.crashed:
            self.crashed = True
            raise Killed("daemon killed")
        return self.inner.patch(kind, *args, **kwargs)


@pytest.mark.parametrize("policy", ["Allow", "Forbid", "Replace"])
def test_restart_in_the_middle_of_a_fire_yields_exactly_one_workflow(store, policy):
    store.create(cron_obj(concurrencyPolicy=policy, startingDeadlineSeconds=60))
    clock = FakeClock(H + 60)
    a = scheduler(CrashingStore(store), clock)
    with pytest.raises(Killed):
        a.start()  # fires 10:01: the Workflow is created, the fire not recorded
    assert names(store) == [wf(H + 60)]
    assert "lastScheduledTime" not in (store.get("CronWorkflow", "default", "tick").get("status") or {})
    set_phase(store, wf(H + 60), "Running")
    clock.set(H + 75)
    b = scheduler(store, clock)
    b.start()
    assert names(store) == [wf(H + 60)]
    assert store.get("Workflow", "default", wf(H + 60))["spec"].get("shutdown") is None
    status = store.get("CronWorkflow", "default", "tick")["status"]
    assert status["lastScheduledTime"].endswith("Z") and [r["name"] for r in status["active"]] == [wf(H + 60)]


def test_a_killed_daemon_process_leaves_one_workflow_and_the_next_one_records_it(db, store):
    """A real process dies (os._exit) right after creating the Workflow, before recording the fire."""
    store.create(cron_obj(startingDeadlineSeconds=300))
    script = textwrap.dedent("""
        import os, sys
        from datetime import timezone
        import reconciler.schedule.firing as firing
        from reconciler.schedule import CronScheduler
        from reconciler.store import open_store

        def killed(*args, **kwargs):
            os._exit(3)

        firing._record = killed
        now = float(sys.argv[2])
        CronScheduler(open_store(sys.argv[1]), clock=lambda: now, background=False,
                      default_timezone=timezone.utc).start()
        sys.exit(0)
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(db), str(H + 60)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ), check=False)
    assert proc.returncode == 3, proc.stderr
    assert names(store) == [wf(H + 60)]
    clock = FakeClock(H + 90)
    s = scheduler(store, clock)
    s.start()
    assert names(store) == [wf(H + 60)]
    assert store.get("CronWorkflow", "default", "tick")["status"]["lastScheduledTime"] == \
        datetime.fromtimestamp(H + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run_at(s, clock, H + 120) == [wf(H + 120)]


# -- following git --------------------------------------------------------------------------------

def test_a_schedule_changed_by_a_git_commit_fires_at_the_new_time_only(store):
    store.create(cron_obj(schedule="0 * * * *", startingDeadlineSeconds=3600))
    clock = FakeClock(H + 3600)
    s = scheduler(store, clock)
    s.start()  # at 11:00 sharp
    assert names(store) == [wf(H + 3600)]
    clock.set(H + 3600 + 45 * 60)  # 11:45: the commit moves it to half past
    git_update(store, "tick", schedule="30 * * * *")
    s.refresh()
    # 11:30 is in the past for the new schedule: not a missed fire (Argo), even with a deadline.
    assert run_at(s, clock, H + 3600 + 45 * 60 + 1) == []
    assert run_at(s, clock, H + 7200 + 1) == []  # 12:00, the old time: nothing
    assert run_at(s, clock, H + 7200 + 1800) == [wf(H + 7200 + 1800)]  # 12:30
    assert names(store) == [wf(H + 3600), wf(H + 7200 + 1800)]


def test_a_schedule_change_while_down_does_not_catch_up_old_times(store):
    store.create(cron_obj(schedule="0 * * * *", startingDeadlineSeconds=3600))
    clock = FakeClock(H + 3600)
    a = scheduler(store, clock)
    a.start()  # fires 11:00
    a.shutdown()
    git_update(store, "tick", schedule="30 * * * *")  # synced while the scheduler was down
    clock.set(H + 3600 + 40 * 60)  # 11:40: "11:30" would be within the deadline
    b = scheduler(store, clock)
    b.start()
    assert names(store) == [wf(H + 3600)]


def test_new_removed_suspended_and_resumed_crons(store):
    clock = FakeClock(H + 10)
    s = scheduler(store, clock, poll_interval=5)
    s.start()
    store.create(cron_obj())  # a sync adds it
    assert run_at(s, clock, H + 60) == [wf(H + 60)]
    store.patch("CronWorkflow", "default", "tick", {"spec": {"suspend": True}})
    assert run_at(s, clock, H + 70, H + 120, H + 180) == []
    store.patch("CronWorkflow", "default", "tick", {"spec": {"suspend": False}})
    # 10:03 passed while suspended: without a deadline it is not caught up on resume.
    assert run_at(s, clock, H + 200, H + 240) == [wf(H + 240)]
    store.delete("CronWorkflow", "default", "tick")
    assert run_at(s, clock, H + 300, H + 360) == []
    assert names(store) == [wf(H + 60), wf(H + 240)]


def test_resume_catches_up_within_the_deadline(store):
    store.create(cron_obj(suspend=True, startingDeadlineSeconds=60))
    clock = FakeClock(H + 10)
    s = scheduler(store, clock)
    s.start()
    assert run_at(s, clock, H + 60, H + 120) == []
    store.patch("CronWorkflow", "default", "tick", {"spec": {"suspend": False}})
    assert run_at(s, clock, H + 150) == [wf(H + 120)]


def test_invalid_schedule_is_a_condition_not_a_crash_and_fixing_it_clears_it(store):
    store.create(cron_obj(schedule="every day at nine"))
    store.create(cron_obj("ok"))
    clock = FakeClock(H + 30)
    s = scheduler(store, clock)
    s.start()
    assert run_at(s, clock, H + 60) == [wf(H + 60, "ok")]
    [condition] = store.get("CronWorkflow", "default", "tick")["status"]["conditions"]
    assert condition["type"] == "SpecError" and "expected 5 fields" in condition["message"]
    git_update(store, "tick", schedule="* * * * *")
    assert run_at(s, clock, H + 90, H + 120) == [wf(H + 120, "ok"), wf(H + 120)]
    assert store.get("CronWorkflow", "default", "tick")["status"].get("conditions") == []


# -- sweep: active list and history ---------------------------------------------------------------

def test_sweep_reconciles_active_and_enforces_history(store, tmp_path):
    home = tmp_path / "home"
    store.create(cron_obj(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1))
    clock = FakeClock(H + 30)
    s = scheduler(store, clock, home=home, sweep_interval=3600)
    s.start()
    fired = run_at(s, clock, *[H + 60 * k for k in range(1, 6)])
    assert len(fired) == 5
    for name, phase in zip(fired, ["Succeeded", "Failed", "Succeeded", "Failed", "Running"]):
        (home / "logs" / "default" / name).mkdir(parents=True)
        set_phase(store, name, phase, finished_at=None if phase == "Running" else clock.now)
    assert s.sweep() == {"tick": [fired[0], fired[1]]}
    assert names(store) == fired[2:]
    assert not (home / "logs" / "default" / fired[0]).exists()
    assert (home / "logs" / "default" / fired[2]).exists()
    assert [r["name"] for r in store.get("CronWorkflow", "default", "tick")["status"]["active"]] == [fired[4]]


def test_step_sweeps_every_sweep_interval(store):
    store.create(cron_obj(successfulJobsHistoryLimit=0))
    clock = FakeClock(H + 30)
    s = scheduler(store, clock, sweep_interval=120)
    s.start()
    run_at(s, clock, H + 60)
    set_phase(store, wf(H + 60), "Succeeded", finished_at=H + 61)
    run_at(s, clock, H + 100)
    assert wf(H + 60) in names(store)  # the last sweep was at start, 70 s ago
    run_at(s, clock, H + 151)
    assert wf(H + 60) not in names(store)


# -- leadership -----------------------------------------------------------------------------------

def test_only_the_lease_holder_fires_and_a_standby_takes_over(db, store):
    other = open_store(db)  # a second daemon: its own connection to the same file
    try:
        clock = FakeClock(H + 30)
        store.create(cron_obj())
        a = scheduler(store, clock, lease=Lease(store, LEADER_LEASE, "a", duration=15, clock=clock))
        b = scheduler(other, clock, lease=Lease(other, LEADER_LEASE, "b", duration=15, clock=clock))
        a.start()
        b.start()
        assert a.leading and not b.leading
        for t in range(H + 35, H + 126, 5):  # both poll every 5 s; a renews its 15 s lease
            clock.set(t)
            b.step()
            a.step()
            assert a.leading and not b.leading
        assert names(store) == [wf(H + 60), wf(H + 120)]
        # a hangs (no renewals): b takes over once the lease has expired, not before.
        run_at(b, clock, H + 135)
        assert not b.leading
        run_at(b, clock, H + 141)
        assert b.leading and not a.lease.is_held()
        clock.set(H + 180)
        assert a.leading and a.tick() == []  # a thinks it leads, but its lease check stops the fire
        run_at(b, clock, H + 180)
        assert names(store) == [wf(H + 60), wf(H + 120), wf(H + 180)]
        # b shuts down cleanly: a can lead again at once.
        b.shutdown()
        run_at(a, clock, H + 181)
        assert a.leading
        assert run_at(a, clock, H + 240) == [wf(H + 240)]
    finally:
        other.close()


# -- the real-time path ---------------------------------------------------------------------------

def next_boundary(step_seconds: int) -> float:
    return (int(time.time()) // step_seconds + 1) * step_seconds


def test_background_scheduler_registers_jobs_with_the_right_next_run_time(store):
    store.create(cron_obj(schedule="*/5 * * * *"))
    store.create(cron_obj("paused", suspend=True))
    s = CronScheduler(store, default_timezone=UTC, poll_interval=3600)
    s.start()
    try:
        runs = s.next_run_times()
        assert runs[("default", "paused")] is None
        assert runs[("default", "tick")].timestamp() == next_boundary(300)
        git_update(store, "tick", schedule="0 0 1 1 *")
        s.refresh()
        year = datetime.now(UTC).year + 1
        assert s.next_run_times()[("default", "tick")] == datetime(year, 1, 1, tzinfo=UTC)
        store.patch("CronWorkflow", "default", "tick", {"spec": {"suspend": True}})
        store.patch("CronWorkflow", "default", "paused", {"spec": {"suspend": False}})
        s.refresh()
        runs = s.next_run_times()
        assert runs[("default", "tick")] is None
        assert runs[("default", "paused")].timestamp() == next_boundary(60)
        store.delete("CronWorkflow", "default", "paused")
        s.refresh()
        assert ("default", "paused") not in s.next_run_times()
    finally:
        s.shutdown()


def test_background_job_fires_through_the_same_path(store):
    """Wake the APScheduler job now (instead of waiting a real minute), with the clock at 10:01:00.5."""
    clock = FakeClock(H + 30)
    fired = []
    store.create(cron_obj())
    s = CronScheduler(store, clock=clock, default_timezone=UTC, poll_interval=3600, on_fire=fired.append)
    s.start()
    try:
        clock.set(H + 60.5)
        s._aps.modify_job("cron:default/tick", next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.workflow for r in fired] == [wf(H + 60)]
        assert fired[0].lag == pytest.approx(0.5)
        assert names(store) == [wf(H + 60)]
        # Its next wake-up is the next real minute: the trigger decides when to wake, due_fire what to fire.
        assert s.next_run_times()[("default", "tick")] - datetime.now(UTC) <= timedelta(seconds=60)
    finally:
        s.shutdown()

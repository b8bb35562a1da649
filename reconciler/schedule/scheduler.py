"""CronScheduler: keeps one APScheduler job per CronWorkflow in the store and fires them while leading.

Production: `start()` runs APScheduler's BackgroundScheduler; each CronWorkflow is a job whose
ScheduleTrigger wakes it at its fire times, and a housekeeping job (every `poll_interval` s) renews
the leader lease, follows the store (`refresh`), fires anything due (a safety net) and now and
then reconciles status.active and history (`sweep`). Tests: `background=False` and an injected
clock, then `step()`/`tick()`; both paths decide through `triggers.due_fire` and fire through
`firing.fire`, so they cannot disagree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from reconciler.engine.submission import store_lookup
from reconciler.store.base import ENGINE_RECONCILER, ObjectStore
from reconciler.store.errors import NotFound, StoreError
from reconciler.store.leases import Lease

from .firing import CREATED, EXISTS, FireResult, fire
from .status import SPEC_ERROR, has_condition, update_status, with_condition, without_condition
from .sweeping import sweep
from .triggers import CronSpec, ScheduleError, ScheduleTrigger, due_fire, format_time, parse_cron_spec, parse_time

log = logging.getLogger(__name__)
UTC = timezone.utc
Key = tuple[str, str]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return a if a.timestamp() >= b.timestamp() else b


@dataclass
class _Entry:
    """What the scheduler knows of one CronWorkflow. One object per (namespace, name, uid)."""

    key: Key
    uid: str
    raw_spec: dict
    spec: CronSpec | None = None
    error: str | None = None
    created: datetime | None = None
    last_scheduled: datetime | None = None  # status.lastScheduledTime, as last read or written
    handled: datetime | None = None  # fired/skipped here, or before the current schedule took effect
    live_from: datetime | None = None  # resumed at: earlier times count as missed, not live
    job_state: str | None = None  # the schedule text the APScheduler job runs, None: no job

    def floor(self) -> datetime | None:
        """Scheduled times at or before this are not due."""
        base = self.last_scheduled if self.last_scheduled is not None else self.created
        return _later(base, self.handled)


class CronScheduler:
    """Fires the store's CronWorkflows. Thread-safe: `refresh()` may be called from any thread."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        home: Path | str | None = None,
        clock: Callable[[], float] = time.time,
        lease: Lease | None = None,
        manage_lease: bool = True,
        namespace: str | None = None,
        default_timezone: tzinfo | None = None,
        poll_interval: float = 5.0,
        sweep_interval: float = 30.0,
        background: bool = True,
        max_workers: int = 8,
        on_fire: Callable[[FireResult], None] | None = None,
    ) -> None:
        self.store = store
        self.home = Path(home) if home is not None else None
        self.clock = clock
        self.lease = lease
        self.manage_lease = manage_lease
        self.namespace = namespace
        self.default_timezone = default_timezone
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self.background = background
        self.max_workers = max_workers
        self.on_fire = on_fire
        self._lookup = store_lookup(store)
        self._entries: dict[Key, _Entry] = {}
        self._lock = threading.RLock()  # guards _entries and the APScheduler jobs
        self._key_locks: dict[Key, threading.Lock] = {}
        self._live_since: datetime | None = None
        self._last_sweep = float("-inf")
        self._aps: BackgroundScheduler | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the store, take the lease if free, catch up; then (background) keep going by itself."""
        if self._started:
            return
        self._started = True
        if self.background:
            self._aps = BackgroundScheduler(
                timezone=UTC,
                executors={"default": ThreadPoolExecutor(self.max_workers)},
                # A late wake-up still fires (due_fire decides what), once, never overlapping itself.
                job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            )
            self._aps.start()
        self.step()
        if self._aps is not None:
            self._aps.add_job(self._housekeeping, "interval", seconds=self.poll_interval, id="housekeeping")

    def shutdown(self, wait: bool = True) -> None:
        """Stop firing; release the lease (if this scheduler manages it) so a standby takes over now."""
        if self._aps is not None:
            self._aps.shutdown(wait=wait)
            self._aps = None
        with self._lock:
            self._live_since = None
            for entry in self._entries.values():
                entry.job_state = None
        if self.lease is not None and self.manage_lease:
            self.lease.release()
        self._started = False

    @property
    def leading(self) -> bool:
        return self._live_since is not None

    def step(self) -> list[FireResult]:
        """One housekeeping round: lease, refresh, sweep when due, fire what is due."""
        became_leader = self._lead()
        self.refresh()
        if not self.leading:
            return []
        if became_leader or self.clock() - self._last_sweep >= self.sweep_interval:
            self.sweep()
        return self.tick()

    def _housekeeping(self) -> None:
        try:
            self.step()
        except Exception:  # a store hiccup must not end the housekeeping job
            log.exception("cron scheduler housekeeping failed")

    def _lead(self) -> bool:
        """Update leadership; True if this scheduler has just become the leader."""
        if self.lease is None:
            held = True
        elif self.manage_lease:
            held = self.lease.renew() if self.lease.is_held() else self.lease.try_acquire()
        else:
            held = self.lease.is_held()
        with self._lock:
            if held and self._live_since is None:
                self._live_since = _dt(self.clock())
                log.info("cron scheduler leading since %s", format_time(self._live_since))
                return True
            if not held and self._live_since is not None:
                log.warning("cron scheduler lost the leader lease; not firing")
                self._live_since = None
        return False

    # -- following the store ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the triggers in line with the store's CronWorkflows (call after every sync)."""
        # Argo's controller fires the CronWorkflows of its namespaces.
        crons = [c for c in self.store.list("CronWorkflow", self.namespace)
                 if self.store.engine_of(c["metadata"].get("namespace") or "default") == ENGINE_RECONCILER]
        now = _dt(self.clock())
        seen = set()
        for cron in crons:
            seen.add(self._observe(cron, now).key)
        with self._lock:
            for key in [k for k in self._entries if k not in seen]:
                entry = self._entries.pop(key)
                self._sync_job(entry, None)

    def _observe(self, cron: dict, now: datetime) -> _Entry:
        """Update (or create) the entry for `cron` as just read, and its APScheduler job."""
        meta = cron["metadata"]
        key = (meta.get("namespace") or "default", meta["name"])
        status = cron.get("status") or {}
        report: str | None = None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.uid != meta.get("uid", ""):
                entry = _Entry(key, meta.get("uid", ""), raw_spec={}, created=parse_time(meta.get("creationTimestamp")))
                self._entries[key] = entry
                fresh = True
            else:
                fresh = False
            entry.last_scheduled = _later(entry.last_scheduled, parse_time(status.get("lastScheduledTime")))
            if fresh or cron.get("spec") != entry.raw_spec:
                report = self._respec(entry, cron.get("spec") or {}, status, now, fresh)
                entry.raw_spec = cron.get("spec") or {}
            elif entry.error and not has_condition(status.get("conditions"), SPEC_ERROR, entry.error):
                report = entry.error
        if self.leading and (report is not None or (entry.error is None and has_condition(
                status.get("conditions"), SPEC_ERROR))):
            self._report_spec_error(cron, entry.error)
        return entry

    def _respec(self, entry: _Entry, raw: dict, status: dict, now: datetime, fresh: bool) -> str | None:
        old = entry.spec
        try:
            new, entry.error = parse_cron_spec(raw, self.default_timezone), None
        except ScheduleError as exc:
            new, entry.error = None, str(exc)
            log.warning("CronWorkflow %s/%s: %s", *entry.key, exc)
        entry.spec = new
        if new is not None:
            if fresh:
                changed = bool(status.get("lastUsedSchedule")) and status["lastUsedSchedule"] != new.schedule.text
            else:
                changed = old is None or old.schedule.text != new.schedule.text
            if changed:
                # Argo: a new schedule does not catch up on times it would have had before.
                entry.handled = _later(entry.handled, now)
            if old is not None and old.suspend and not new.suspend:
                # Resumed: times while suspended are missed ones (startingDeadlineSeconds decides).
                # The resume happened at most one poll before we saw it; count from then.
                entry.live_from = _dt(now.timestamp() - self.poll_interval - 1)
        self._sync_job(entry, None if new is None or new.suspend else new)
        return entry.error

    def _sync_job(self, entry: _Entry, spec: CronSpec | None) -> None:
        if self._aps is None:
            return
        job_id = f"cron:{entry.key[0]}/{entry.key[1]}"
        state = spec.schedule.text if spec is not None else None
        if state == entry.job_state and (state is None or self._aps.get_job(job_id) is not None):
            return
        if spec is None:
            try:
                self._aps.remove_job(job_id)
            except JobLookupError:
                pass
        elif self._aps.get_job(job_id) is not None:
            self._aps.reschedule_job(job_id, trigger=ScheduleTrigger(spec.schedule))
        else:
            self._aps.add_job(self._on_time, trigger=ScheduleTrigger(spec.schedule), id=job_id, args=(entry.key,),
                              name=f"CronWorkflow {entry.key[0]}/{entry.key[1]}")
        entry.job_state = state

    def _report_spec_error(self, cron: dict, error: str | None) -> None:
        stamp = format_time(_dt(self.clock()))

        def change(current: dict) -> dict | None:
            conditions = (current.get("status") or {}).get("conditions")
            if error is None:
                return {"conditions": without_condition(conditions, SPEC_ERROR)} if has_condition(
                    conditions, SPEC_ERROR) else None
            if has_condition(conditions, SPEC_ERROR, error):
                return None
            return {"conditions": with_condition(conditions, SPEC_ERROR, error, stamp)}

        meta = cron["metadata"]
        try:
            update_status(self.store, meta.get("namespace") or "default", meta["name"], change)
        except StoreError:
            log.exception("could not record the spec error of CronWorkflow %s", meta["name"])

    # -- firing ----------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[FireResult]:
        """Fire every CronWorkflow that is due at `now` (default: the clock)."""
        if not self.leading:
            return []
        now = self.clock() if now is None else now
        with self._lock:
            keys = list(self._entries)
        results = []
        for key in keys:
            result = self._fire_due(key, now)
            if result is not None:
                results.append(result)
        return results

    def _on_time(self, key: Key) -> None:
        try:
            self._fire_due(key, self.clock())
        except Exception:
            log.exception("CronWorkflow %s/%s: fire failed", *key)

    def _live_for(self, entry: _Entry) -> datetime | None:
        live = self._live_since
        return None if live is None else _later(live, entry.live_from)

    def _due(self, entry: _Entry, now: float) -> datetime | None:
        live = self._live_for(entry)
        if entry.spec is None or live is None:
            return None
        return due_fire(entry.spec, now=_dt(now), handled_until=entry.floor(), live_since=live)

    def _fire_due(self, key: Key, now: float) -> FireResult | None:
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            # Decide on what we know first: most calls find nothing due and read nothing.
            if entry is None or self._due(entry, now) is None:
                return None
            try:
                cron = self.store.get("CronWorkflow", *key)
            except NotFound:
                return None
            entry = self._observe(cron, _dt(now))
            scheduled = self._due(entry, now)
            if scheduled is None or entry.spec is None:
                return None
            if self.lease is not None and not self.lease.is_held():
                return None
            result = fire(self.store, cron, scheduled, now, spec=entry.spec, lookup=self._lookup)
            entry.handled = _later(entry.handled, scheduled)
            if result.outcome in (CREATED, EXISTS):
                entry.last_scheduled = _later(entry.last_scheduled, scheduled)
        log.info("CronWorkflow %s/%s: %s %s for %s (lag %.3fs)%s", key[0], key[1], result.outcome, result.workflow,
                 format_time(scheduled), result.lag, f": {result.message}" if result.message else "")
        if self.on_fire is not None:
            self.on_fire(result)
        return result

    # -- reconciling -----------------------------------------------------------------------------

    def sweep(self) -> dict[str, list[str]]:
        """Reconcile status.active and enforce history limits (leader only); see sweeping.py."""
        if not self.leading:
            return {}
        self._last_sweep = self.clock()
        return sweep(self.store, self.home, namespace=self.namespace, default_tz=self.default_timezone)

    # -- inspection ------------------------------------------------------------------------------

    def next_run_times(self) -> dict[Key, datetime | None]:
        """When APScheduler will next wake each CronWorkflow's job (background mode)."""
        out: dict[Key, datetime | None] = {}
        with self._lock:
            if self._aps is None:
                return out
            for key in self._entries:
                job = self._aps.get_job(f"cron:{key[0]}/{key[1]}")
                out[key] = job.next_run_time if job is not None else None
        return out

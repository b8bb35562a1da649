"""From a CronWorkflow object to its fire times: the parsed spec, the due-time rule, the APScheduler trigger.

The due-time rule (one place, used by the fake-clock `tick` and by the real-time APScheduler jobs):
a scheduled time t is due at `now` if t <= now, t is after everything already handled (the last
scheduled time, a schedule change, the object's creation) and either
- the scheduler was running as leader at t ("live": fire however late the thread is), or
- t was missed (the scheduler was down or not leader) and now < t + startingDeadlineSeconds.
Of several due times only the latest fires (missed runs coalesce into one, as in Argo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from apscheduler.triggers.base import BaseTrigger

from reconciler.spec.cron import Schedule, ScheduleError, local_zone, parse_schedule, zone

UTC = timezone.utc
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
POLICIES = ("Allow", "Forbid", "Replace")
# A catch-up search never walks more fire times than this (a bound, not a semantic limit).
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class CronSpec:
    """The scheduling fields of a CronWorkflow spec, checked and defaulted."""

    schedule: Schedule
    concurrency_policy: str = "Allow"
    starting_deadline: int | None = None
    suspend: bool = False
    successful_history: int = DEFAULT_SUCCESSFUL_HISTORY
    failed_history: int = DEFAULT_FAILED_HISTORY


def schedule_strings(spec: dict) -> list[str]:
    """v3.6+'s `schedules` list, or v3's single `schedule` string."""
    many = spec.get("schedules")
    if many:
        return [str(s) for s in many]
    one = spec.get("schedule")
    return [str(one)] if one else []


def parse_cron_spec(spec: dict, default_tz: tzinfo | None = None) -> CronSpec:
    """CronWorkflow.spec -> CronSpec; ScheduleError (with a readable message) if unusable."""
    tz = zone(spec.get("timezone"), default_tz if default_tz is not None else local_zone())
    schedule = parse_schedule(schedule_strings(spec), tz)
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy not in POLICIES:
        raise ScheduleError(f"concurrencyPolicy {policy!r}: expected one of {', '.join(POLICIES)}")
    return CronSpec(
        schedule=schedule,
        concurrency_policy=policy,
        starting_deadline=_non_negative(spec, "startingDeadlineSeconds", None),
        suspend=bool(spec.get("suspend")),
        successful_history=_non_negative(spec, "successfulJobsHistoryLimit", DEFAULT_SUCCESSFUL_HISTORY),
        failed_history=_non_negative(spec, "failedJobsHistoryLimit", DEFAULT_FAILED_HISTORY),
    )


def _non_negative(spec: dict, field: str, default: int | None) -> int | None:
    value = spec.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScheduleError(f"{field} {value!r}: expected a non-negative integer")
    return value


def next_fire_time(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`."""
    return schedule.next_after(after)


def fire_times(schedule: Schedule, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
    """Every fire time t with after < t <= until (at most `limit`, the earliest)."""
    out: list[datetime] = []
    t = schedule.next_after(after)
    while t is not None and t.timestamp() <= until.timestamp() and len(out) < limit:
        out.append(t)
        t = schedule.next_after(t)
    return out


def due_fire(
    spec: CronSpec,
    *,
    now: datetime,
    handled_until: datetime | None,
    live_since: datetime | None,
) -> datetime | None:
    """The one scheduled time to fire at `now` under the rule in the module docstring, or None.

    `handled_until`: the latest time already dealt with (fired, skipped, or before the schedule
    took effect); `live_since`: since when this scheduler has been leading (None: not leading)."""
    if spec.suspend or live_since is None:
        return None
    now_ts = now.timestamp()
    live_ts = live_since.timestamp()
    deadline = spec.starting_deadline
    # Earliest instant a due time may have; anything earlier fails both the live and deadline tests.
    earliest = live_ts if deadline is None else min(live_ts, now_ts - deadline)
    start = max(earliest - 1, handled_until.timestamp() if handled_until else float("-inf"))
    latest = None
    t = spec.schedule.next_after(datetime.fromtimestamp(start, UTC))
    for _ in range(_MAX_STEPS):
        if t is None or t.timestamp() > now_ts:
            break
        if handled_until is None or t.timestamp() > handled_until.timestamp():
            latest = t
        t = spec.schedule.next_after(t)
    if latest is None:
        return None
    if latest.timestamp() >= live_ts:
        return latest
    if deadline is not None and now_ts < latest.timestamp() + deadline:
        return latest
    return None


def due_fires(
    cron: dict,
    last_scheduled: datetime | None,
    now: datetime,
    *,
    default_tz: tzinfo | None = None,
    live_since: datetime | None = None,
) -> list[datetime]:
    """Convenience for one CronWorkflow object: [the time to fire now] or [].

    Without `live_since` every time after `last_scheduled` counts as missed (a scheduler that has
    just started), so only startingDeadlineSeconds can make one due."""
    spec = parse_cron_spec(cron.get("spec") or {}, default_tz)
    floor = last_scheduled
    created = parse_time((cron.get("metadata") or {}).get("creationTimestamp"))
    if floor is None:
        floor = created
    due = due_fire(spec, now=now, handled_until=floor, live_since=live_since or now + timedelta(seconds=1))
    return [due] if due else []


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 (with Z or an offset) -> aware datetime; None if absent or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC, second precision, as Kubernetes writes metav1.Time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleTrigger(BaseTrigger):
    """APScheduler 3 trigger over a Schedule, so the real-time path shares the DST handling.

    It only wakes the job up: the job itself asks `due_fire` what to do, so a late, doubled or
    coalesced wake-up can never fire a time twice."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # Never before `now`: after a stall the job wakes once (it fires the latest time only).
        start = now - timedelta(microseconds=1)
        # Timestamps, not datetimes: same-tzinfo datetimes compare by wall time, wrong in a fall-back hour.
        if previous_fire_time is not None and previous_fire_time.timestamp() > start.timestamp():
            start = previous_fire_time
        return self.schedule.next_after(start)

    def __str__(self) -> str:
        return f"schedule[{self.schedule.text}]"

    def __repr__(self) -> str:
        return f"<ScheduleTrigger ({self.schedule.text!r})>"


__all__ = [
    "CronSpec",
    "ScheduleError",
    "ScheduleTrigger",
    "due_fire",
    "due_fires",
    "fire_times",
    "format_time",
    "next_fire_time",
    "parse_cron_spec",
    "parse_time",
    "schedule_strings",
]

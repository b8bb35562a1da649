"""Cron expressions read as Argo reads them (robfig/cron's standard parser), timed with APScheduler.

APScheduler's CronTrigger does the field arithmetic, but three things are fixed up here:
- day-of-week numbers: crontab's 0 (and 7) is Sunday, APScheduler 3's 0 is Monday;
- day-of-month and day-of-week both restricted means *either* matches (cron's rule), not both;
- time zones: CronTrigger 3.11 repeats one instant or runs backwards in a fall-back hour. So the
  triggers here run on the naive wall clock (as if UTC, which has no DST) and `Schedule` maps wall
  times to instants: a wall time skipped by spring-forward never happens, one repeated by
  fall-back happens twice. That is robfig/cron's (hence Argo's) behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

UTC = timezone.utc
_TICK = timedelta(microseconds=1)
# Larger than any DST shift (Antarctica/Troll moves 2 h): how far apart a wall time and the instant
# nearest to it can drift when the slow path below scans around a transition.
_DST_MARGIN = timedelta(hours=3)

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; the message names the offending text."""


@dataclass(frozen=True)
class CronExpression:
    """One 5-field expression; its triggers are OR-ed and run on the naive wall clock."""

    text: str
    triggers: tuple[CronTrigger, ...]

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first matching naive wall time strictly after `wall`."""
        start = wall.replace(tzinfo=UTC) + _TICK
        found = [t.get_next_fire_time(None, start) for t in self.triggers]
        found = [f for f in found if f is not None]
        return min(found).replace(tzinfo=None) if found else None


def parse_expression(text: str) -> CronExpression:
    """A crontab line (5 fields, or an @descriptor) -> CronExpression; ScheduleError if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("empty schedule")
    line = text.strip()
    lowered = line.lower()
    if lowered.startswith("@every"):
        raise ScheduleError(f"schedule {text!r}: @every intervals are not supported; use a cron expression")
    if lowered.startswith(("cron_tz=", "tz=")):
        raise ScheduleError(f"schedule {text!r}: set the time zone in spec.timezone, not in the schedule")
    if lowered.startswith("@"):
        if lowered not in DESCRIPTORS:
            raise ScheduleError(f"schedule {text!r}: unknown descriptor (known: {', '.join(DESCRIPTORS)})")
        lowered = DESCRIPTORS[lowered]
    fields = lowered.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"schedule {text!r}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    minute, hour, dom, month, dow = fields
    dom = dom.replace("?", "*")
    try:
        dow_field, dow_star = _weekdays(dow)
        dom_star = _is_star(dom)
        if dom_star or dow_star:
            specs = [(dom, dow_field)]
        else:
            # Both restricted: cron fires when either matches, so two triggers, OR-ed.
            specs = [(dom, "*"), ("*", dow_field)]
        triggers = tuple(
            CronTrigger(minute=minute, hour=hour, day=d, month=month, day_of_week=w, timezone=UTC)
            for d, w in specs
        )
    except ValueError as exc:
        raise ScheduleError(f"schedule {text!r}: {exc}") from None
    return CronExpression(text, triggers)


def _is_star(field: str) -> bool:
    """robfig/cron's star bit: some list item is `*`/`?` without a step above 1."""
    for item in field.split(","):
        rng, _, step = item.partition("/")
        if rng in ("*", "?") and (not step or step == "1"):
            return True
    return False


def _weekdays(field: str) -> tuple[str, bool]:
    """Crontab day-of-week (0-7, names, ranges, steps) -> APScheduler day names, and the star bit."""
    field = field.replace("?", "*")
    days: set[int] = set()
    for item in field.split(","):
        rng, slash, step_text = item.partition("/")
        if slash and not step_text.isdigit() or step_text == "0":
            raise ScheduleError(f"day-of-week {field!r}: bad step {step_text!r}")
        step = int(step_text) if step_text else 1
        if rng == "*":
            low, high = 0, 6
        else:
            low_text, dash, high_text = rng.partition("-")
            low = _weekday(low_text, field)
            # "N/step" means N through the last day, as in robfig/cron.
            high = _weekday(high_text, field) if dash else (6 if slash else low)
            if low > high:
                raise ScheduleError(f"day-of-week {field!r}: range {rng!r} runs backwards")
        days.update(d % 7 for d in range(low, high + 1, step))
    star = _is_star(field)
    if len(days) == 7:
        return "*", star
    return ",".join(_DOW_NAMES[d] for d in sorted(days)), star


def _weekday(token: str, field: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    raise ScheduleError(f"day-of-week {field!r}: {token!r} is not 0-7 or sun..sat")


def zone(name: str | None, default: tzinfo) -> tzinfo:
    """The IANA zone `name` (None or "" -> `default`); ScheduleError if unknown."""
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (expected an IANA name such as Europe/Paris)") from None


def local_zone() -> tzinfo:
    """The machine's zone: Argo's default for a CronWorkflow without spec.timezone."""
    try:
        import tzlocal

        return tzlocal.get_localzone()
    except Exception:  # no tzlocal, or a zone it cannot name: fall back to UTC rather than fail
        return UTC


@dataclass(frozen=True)
class Schedule:
    """All of a CronWorkflow's expressions in its time zone: a fire time is any of theirs."""

    expressions: tuple[CronExpression, ...]
    tz: tzinfo
    # next_after is pure and a fire asks the same question twice (a cheap check on cached state,
    # then again on the fresh object), so the last few answers are kept. Values are immutable.
    _memo: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def text(self) -> str:
        """Argo's last-used-schedule form, e.g. "CRON_TZ=Europe/Paris 0 2 * * *,30 4 * * *"."""
        joined = ",".join(e.text for e in self.expressions)
        return f"CRON_TZ={self.tz} {joined}"

    def next_after(self, instant: datetime) -> datetime | None:
        """The first fire time strictly after `instant` (aware), in the schedule's zone."""
        key = instant.timestamp()
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = self._next_after(instant)
        if len(self._memo) >= 16:
            self._memo.clear()
        self._memo[key] = found
        return found

    def _next_after(self, instant: datetime) -> datetime | None:
        after = instant.astimezone(self.tz)
        wall0 = after.replace(tzinfo=None, fold=0)
        # Fast path: the next matching wall time after ours, if no clock change lies between.
        candidate = self._next_wall(wall0)
        if candidate is None:
            return None
        inst = self._resolve(candidate, 0)
        # Instants are compared as timestamps: Python compares two datetimes of one tzinfo by their
        # wall time, ignoring fold, which is exactly wrong in a repeated hour.
        if inst is not None and inst.timestamp() > after.timestamp() and inst.utcoffset() == after.utcoffset():
            return inst
        return self._scan(after, wall0)

    def _scan(self, after: datetime, wall0: datetime) -> datetime | None:
        """Around a clock change: try every matching wall time near ours, both folds, keep the least."""
        best: datetime | None = None
        best_wall: datetime | None = None
        floor = after.timestamp()
        wall = wall0 - _DST_MARGIN
        while True:
            wall = self._next_wall(wall)
            if wall is None or (best_wall is not None and wall > best_wall + _DST_MARGIN):
                return best
            for fold in (0, 1):
                inst = self._resolve(wall, fold)
                if inst is None or inst.timestamp() <= floor:
                    continue
                if best is None or inst.timestamp() < best.timestamp():
                    best, best_wall = inst, wall

    def _next_wall(self, wall: datetime) -> datetime | None:
        found = [w for w in (e.next_wall(wall) for e in self.expressions) if w is not None]
        return min(found) if found else None

    def _resolve(self, wall: datetime, fold: int) -> datetime | None:
        """The instant at which the zone's clock reads `wall` (the `fold`th time); None in a gap."""
        inst = wall.replace(tzinfo=self.tz, fold=fold).astimezone(UTC).astimezone(self.tz)
        return inst if inst.replace(tzinfo=None, fold=0) == wall else None


def parse_schedule(schedules: list[str], tz: tzinfo) -> Schedule:
    if not schedules:
        raise ScheduleError("no schedule: set spec.schedules (or spec.schedule)")
    return Schedule(tuple(parse_expression(s) for s in schedules), tz)

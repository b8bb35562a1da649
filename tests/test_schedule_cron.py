"""reconciler.schedule.cron / triggers: cron expressions as Argo (robfig/cron) reads them, time zones and
DST, and the due-time rule (live fires, missed fires and startingDeadlineSeconds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.schedule.triggers import (
    ScheduleTrigger,
    due_fire,
    due_fires,
    fire_times,
    next_fire_time,
    parse_cron_spec,
)
from reconciler.spec.cron import ScheduleError, parse_expression, parse_schedule

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def seq(expr: str, start: datetime, n: int, tz=UTC) -> list[str]:
    schedule = parse_schedule([expr], tz)
    out, cur = [], start
    for _ in range(n):
        cur = schedule.next_after(cur)
        out.append(cur.isoformat())
    return out


# -- expressions ---------------------------------------------------------------------------------

def test_every_minute_is_strictly_after():
    assert seq("* * * * *", utc(2024, 1, 1, 10, 0), 2) == ["2024-01-01T10:01:00+00:00", "2024-01-01T10:02:00+00:00"]
    assert seq("* * * * *", utc(2024, 1, 1, 10, 0, 30), 1) == ["2024-01-01T10:01:00+00:00"]


@pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN", "Sun"])
def test_day_of_week_zero_and_seven_are_sunday(dow):
    # 2024-01-07 is a Sunday. APScheduler 3 alone would read 0 as Monday.
    assert seq(f"0 0 * * {dow}", utc(2024, 1, 1), 1) == ["2024-01-07T00:00:00+00:00"]


def test_day_of_week_ranges_steps_and_lists():
    # 1-5 is Monday to Friday; */2 is Sun, Tue, Thu, Sat; 5-7 is Fri, Sat, Sun.
    got = [datetime.fromisoformat(s).strftime("%a") for s in seq("0 0 * * 1-5", utc(2024, 1, 5, 1), 5)]
    assert got == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    got = [datetime.fromisoformat(s).strftime("%a") for s in seq("0 0 * * */2", utc(2024, 1, 6, 1), 4)]
    assert got == ["Sun", "Tue", "Thu", "Sat"]
    got = [datetime.fromisoformat(s).strftime("%a") for s in seq("0 0 * * 5-7", utc(2024, 1, 1), 3)]
    assert got == ["Fri", "Sat", "Sun"]
    got = [datetime.fromisoformat(s).strftime("%a") for s in seq("0 0 * * mon,wed-thu", utc(2024, 1, 1), 3)]
    assert got == ["Wed", "Thu", "Mon"]


def test_day_of_month_and_day_of_week_both_restricted_means_either():
    # cron's rule (and robfig's): 1st or 15th of the month, or any Sunday.
    days = [s[:10] for s in seq("0 0 1,15 * sun", utc(2024, 1, 1), 5)]
    assert days == ["2024-01-07", "2024-01-14", "2024-01-15", "2024-01-21", "2024-01-28"]
    # A star (or ?) in one of them: both must match, i.e. only the other one counts.
    assert [s[:10] for s in seq("0 0 * * sun", utc(2024, 1, 1), 1)] == ["2024-01-07"]
    assert [s[:10] for s in seq("0 0 15 * ?", utc(2024, 1, 1), 1)] == ["2024-01-15"]


@pytest.mark.parametrize(("descriptor", "expected"), [
    ("@hourly", "2024-01-01T11:00:00+00:00"),
    ("@daily", "2024-01-02T00:00:00+00:00"),
    ("@midnight", "2024-01-02T00:00:00+00:00"),
    ("@weekly", "2024-01-07T00:00:00+00:00"),
    ("@monthly", "2024-02-01T00:00:00+00:00"),
    ("@yearly", "2025-01-01T00:00:00+00:00"),
    ("@annually", "2025-01-01T00:00:00+00:00"),
])
def test_descriptors(descriptor, expected):
    assert seq(descriptor, utc(2024, 1, 1, 10, 30), 1) == [expected]


@pytest.mark.parametrize(("text", "words"), [
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "expected 5 fields"),
    ("61 * * * *", "schedule"),
    ("* * * * funday", "funday"),
    ("* * * * 5-1", "backwards"),
    ("@every 5m", "@every"),
    ("@fortnightly", "unknown descriptor"),
    ("CRON_TZ=UTC * * * * *", "spec.timezone"),
    ("", "empty"),
])
def test_invalid_expressions_raise_schedule_error(text, words):
    with pytest.raises(ScheduleError, match=words):
        parse_expression(text)


def test_several_schedules_fire_at_the_union():
    schedule = parse_schedule(["0 9 * * *", "30 17 * * *"], UTC)
    got = [t.isoformat() for t in fire_times(schedule, utc(2024, 1, 1), utc(2024, 1, 2, 12))]
    assert got == ["2024-01-01T09:00:00+00:00", "2024-01-01T17:30:00+00:00", "2024-01-02T09:00:00+00:00"]


def test_spec_fields_and_defaults():
    spec = parse_cron_spec({"schedule": "0 * * * *", "workflowSpec": {}}, UTC)
    assert (spec.concurrency_policy, spec.starting_deadline, spec.suspend) == ("Allow", None, False)
    assert (spec.successful_history, spec.failed_history) == (3, 1)
    spec = parse_cron_spec({"schedules": ["0 * * * *"], "timezone": "Asia/Tokyo", "concurrencyPolicy": "Forbid",
                            "startingDeadlineSeconds": 0, "suspend": True, "successfulJobsHistoryLimit": 0,
                            "failedJobsHistoryLimit": 5}, UTC)
    assert spec.schedule.tz == ZoneInfo("Asia/Tokyo")
    assert (spec.concurrency_policy, spec.starting_deadline, spec.suspend) == ("Forbid", 0, True)
    assert (spec.successful_history, spec.failed_history) == (0, 5)
    assert spec.schedule.text == "CRON_TZ=Asia/Tokyo 0 * * * *"
    with pytest.raises(ScheduleError, match="time zone"):
        parse_cron_spec({"schedule": "* * * * *", "timezone": "Mars/Olympus"}, UTC)
    with pytest.raises(ScheduleError, match="no schedule"):
        parse_cron_spec({"workflowSpec": {}}, UTC)


# -- time zones and DST --------------------------------------------------------------------------

def test_timezone_shifts_the_fire_with_the_season():
    schedule = parse_cron_spec({"schedule": "0 9 * * *", "timezone": "Europe/Paris"}).schedule
    winter = next_fire_time(schedule, utc(2024, 1, 15))
    summer = next_fire_time(schedule, utc(2024, 7, 15))
    assert winter.astimezone(UTC) == utc(2024, 1, 15, 8)
    assert summer.astimezone(UTC) == utc(2024, 7, 15, 7)


def test_spring_forward_skips_the_missing_hour_like_robfig():
    # 2024-03-10 02:00 EST -> 03:00 EDT in New York: 02:30 does not exist that day.
    assert seq("30 2 * * *", datetime(2024, 3, 9, 12, tzinfo=NY), 2, NY) == [
        "2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00"]
    assert seq("0 * * * *", datetime(2024, 3, 10, 0, 30, tzinfo=NY), 3, NY) == [
        "2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"]


def test_fall_back_repeats_the_hour_like_robfig():
    # 2024-11-03 02:00 EDT -> 01:00 EST: the clock reads 01:xx twice, so a 01:30 job fires twice.
    assert seq("30 1 * * *", datetime(2024, 11, 2, 12, tzinfo=NY), 3, NY) == [
        "2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"]
    assert seq("*/30 * * * *", datetime(2024, 11, 3, 0, 50, tzinfo=NY), 5, NY) == [
        "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"]


def test_trigger_moves_forward_through_fall_back():
    """Why cron.py maps wall times itself: APScheduler 3.11's CronTrigger, asked for the hour after
    01:00 EST on 2024-11-03 in New York, answers 01:00 EST again (an endless loop in a scheduler)."""
    trigger = ScheduleTrigger(parse_schedule(["0 * * * *"], NY))
    times, prev = [], None
    now = datetime(2024, 11, 3, 0, 30, tzinfo=NY)
    for _ in range(4):
        prev = trigger.get_next_fire_time(prev, now)
        times.append(prev.timestamp())
    assert times == sorted(set(times)) and times[1] - times[0] == 3600 and times[2] - times[1] == 3600


def test_half_hour_dst_zone():
    # Lord Howe Island moves its clocks by 30 minutes (2024-10-06 02:00 -> 02:30).
    lh = ZoneInfo("Australia/Lord_Howe")
    got = seq("15 2 * * *", datetime(2024, 10, 5, 12, tzinfo=lh), 2, lh)
    assert got == ["2024-10-07T02:15:00+11:00", "2024-10-08T02:15:00+11:00"]


ZONES = ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
EXPRS = ["*/15 * * * *", "0 * * * *", "30 1 * * *", "45 2 * * *", "0,20 0-3 * * *"]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    expr=st.sampled_from(EXPRS),
    # Around the 2024 transitions of these zones, where mistakes happen.
    start=st.one_of(
        st.datetimes(datetime(2024, 3, 9), datetime(2024, 3, 11, 12)),
        st.datetimes(datetime(2024, 10, 5), datetime(2024, 11, 4, 12)),
        st.datetimes(datetime(2024, 3, 30), datetime(2024, 4, 8)),
    ),
)
def test_next_fire_is_the_first_minute_whose_wall_clock_matches(zone, expr, start):
    """Brute force: walk every UTC minute after `start`; the first one at which the zone's wall clock
    matches the expression is the answer (skipped wall times never happen, repeated ones do)."""
    tz = ZoneInfo(zone)
    schedule = parse_schedule([expr], tz)
    after = start.replace(tzinfo=UTC)
    got = schedule.next_after(after)
    wall_trigger = parse_expression(expr)
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 60):
        wall = minute.astimezone(tz).replace(tzinfo=None)
        if wall_trigger.next_wall(wall - timedelta(seconds=1)) == wall:
            break
        minute += timedelta(minutes=1)
    else:
        pytest.fail("brute force found no fire within 60 hours")
    assert got.timestamp() == minute.timestamp(), (zone, expr, after, got, minute)


# -- the due-time rule ---------------------------------------------------------------------------

def spec_of(**fields):
    return parse_cron_spec({"schedule": "* * * * *", **fields}, UTC)


def test_live_fire_is_due_however_late():
    spec = spec_of()
    # Leading since 09:00; the 10:00 fire is 40 s late (a starved thread): still due.
    assert due_fire(spec, now=utc(2024, 1, 1, 10, 0, 40), handled_until=utc(2024, 1, 1, 9, 59),
                    live_since=utc(2024, 1, 1, 9)) == utc(2024, 1, 1, 10)
    # ...and not again once handled.
    assert due_fire(spec, now=utc(2024, 1, 1, 10, 0, 40), handled_until=utc(2024, 1, 1, 10),
                    live_since=utc(2024, 1, 1, 9)) is None


def test_several_due_times_coalesce_into_the_latest():
    assert due_fire(spec_of(), now=utc(2024, 1, 1, 10, 5, 10), handled_until=utc(2024, 1, 1, 10),
                    live_since=utc(2024, 1, 1, 9)) == utc(2024, 1, 1, 10, 5)


def test_missed_fire_follows_starting_deadline():
    started = utc(2024, 1, 1, 10, 5, 30)  # the scheduler came back up at 10:05:30
    last = utc(2024, 1, 1, 10, 0)
    kwargs = dict(now=started, handled_until=last, live_since=started)
    assert due_fire(spec_of(), **kwargs) is None  # no deadline: no catch-up
    assert due_fire(spec_of(startingDeadlineSeconds=0), **kwargs) is None
    assert due_fire(spec_of(startingDeadlineSeconds=20), **kwargs) is None  # 10:05 is 30 s old
    assert due_fire(spec_of(startingDeadlineSeconds=60), **kwargs) == utc(2024, 1, 1, 10, 5)  # only the latest


def test_suspended_or_not_leading_is_never_due():
    now = utc(2024, 1, 1, 10, 5, 1)
    assert due_fire(spec_of(suspend=True), now=now, handled_until=None, live_since=utc(2024, 1, 1)) is None
    assert due_fire(spec_of(), now=now, handled_until=None, live_since=None) is None


def test_due_fires_on_an_object():
    cron = {"metadata": {"name": "c", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"schedule": "0 * * * *", "startingDeadlineSeconds": 600}}
    assert due_fires(cron, utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 9), default_tz=UTC) == [utc(2024, 1, 1, 10)]
    assert due_fires(cron, utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 11), default_tz=UTC) == []
    assert due_fires(cron, utc(2024, 1, 1, 10), utc(2024, 1, 1, 10, 5), default_tz=UTC) == []

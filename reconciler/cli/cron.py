"""`reconciler cron list|get|suspend|resume`: CronWorkflows as `argo cron` shows them.

Registered by main.py with `register(cli)`. Self-contained on purpose: main.py runs as `__main__`,
so importing from it here would load it a second time. reconciler.schedule (and APScheduler with
it, ~70 ms) is imported inside the commands, so other commands do not pay for it at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone

import click
import yaml
from rich.console import Console
from rich.table import Table

from reconciler import operations
from reconciler.cli import render
from reconciler.cli.common import fail_operation, namespace_option
from reconciler.cli.context import Context

KIND = "CronWorkflow"

console = Console()
if not console.is_terminal:
    console = Console(width=400)  # piped output: never squeeze names into 80 columns



def register(cli: click.Group) -> None:
    cli.add_command(cron)


@click.group()
def cron() -> None:
    """CronWorkflows: list, inspect, suspend and resume schedules."""


def next_run(obj: dict, now: float | None = None) -> datetime | None:
    """When the CronWorkflow fires next (None if suspended or its spec is unusable)."""
    from reconciler.schedule.triggers import ScheduleError, parse_cron_spec
    from reconciler.spec.cron import local_zone

    spec = obj.get("spec") or {}
    if spec.get("suspend"):
        return None
    try:
        parsed = parse_cron_spec(spec, local_zone())
    except ScheduleError:
        return None
    now = time.time() if now is None else now
    return parsed.schedule.next_after(datetime.fromtimestamp(now, timezone.utc))


def _last_run(obj: dict) -> datetime | None:
    from reconciler.schedule.triggers import parse_time

    return parse_time((obj.get("status") or {}).get("lastScheduledTime"))


def _until(when: datetime | None, now: float) -> str:
    return "N/A" if when is None else render.human_duration(max(0.0, when.timestamp() - now))


def _since(when: datetime | None, now: float) -> str:
    return "N/A" if when is None else render.human_duration(max(0.0, now - when.timestamp()))


@cron.command("list")
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-o", "--output", type=click.Choice(["wide", "json", "name", "yaml"]), default=None)
@click.pass_obj
def cron_list(obj: Context, namespace: str, all_namespaces: bool, output: str | None) -> None:
    """List CronWorkflows with their schedules and next/last run."""
    print_cron_list(obj.store.list(KIND, None if all_namespaces else namespace), output)


def print_cron_list(items: list[dict], output: str | None) -> None:
    """CronWorkflows as `cron list` shows them (shared with its remote form)."""
    from reconciler.schedule.triggers import schedule_strings

    if output == "json":
        click.echo(json.dumps(items, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(items, sort_keys=False))
    elif output == "name":
        for item in items:
            click.echo(item["metadata"]["name"])
    else:
        now = time.time()
        console.print(render.objects_table(items, [
            ("SCHEDULE", lambda o: ",".join(schedule_strings(o["spec"]))),
            ("SUSPENDED", lambda o: str(bool(o["spec"].get("suspend"))).lower()),
            ("NEXT RUN", lambda o: _until(next_run(o, now), now)),
            ("LAST RUN", lambda o: _since(_last_run(o), now)),
        ]))


@cron.command("get")
@click.argument("name")
@namespace_option
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None)
@click.pass_obj
def cron_get(obj: Context, name: str, namespace: str, output: str | None) -> None:
    """Show one CronWorkflow: schedule, policy, last and next run, active workflows, conditions."""
    try:
        item = operations.get_cron_workflow(obj.store, namespace, name)
    except operations.OperationError as exc:
        fail_operation(exc)
    print_cron_workflow(item, output)


def print_cron_workflow(item: dict, output: str | None) -> None:
    """One CronWorkflow as `cron get` shows it (shared with its remote form)."""
    if output == "json":
        click.echo(json.dumps(item, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(item, sort_keys=False))
        return
    console.print(_details(item, time.time()))


def _details(item: dict, now: float) -> Table:
    from reconciler.schedule.triggers import ScheduleError, parse_cron_spec, schedule_strings
    from reconciler.spec.cron import local_zone

    meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
    rows = [
        ("Name:", meta["name"]),
        ("Namespace:", meta.get("namespace", "")),
        ("Created:", f"{meta.get('creationTimestamp', '')} ({render.age(meta.get('creationTimestamp'), now)} ago)"),
        ("Schedule:", ",".join(schedule_strings(spec))),
        ("Timezone:", spec.get("timezone") or f"{local_zone()} (machine local time)"),
        ("Suspended:", str(bool(spec.get("suspend"))).lower()),
        ("ConcurrencyPolicy:", spec.get("concurrencyPolicy") or "Allow"),
    ]
    if spec.get("startingDeadlineSeconds") is not None:
        rows.append(("StartingDeadlineSeconds:", str(spec["startingDeadlineSeconds"])))
    rows.append(("History limits:", f"{spec.get('successfulJobsHistoryLimit', 3)} succeeded, "
                                    f"{spec.get('failedJobsHistoryLimit', 1)} failed"))
    last = _last_run(item)
    rows.append(("LastScheduledTime:", "N/A" if last is None else
                 f"{status['lastScheduledTime']} ({_since(last, now)} ago)"))
    nxt = next_run(item, now)
    rows.append(("NextScheduledTime:", "N/A" if nxt is None else
                 f"{nxt.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} (in {_until(nxt, now)})"))
    active = [ref.get("name", "") for ref in status.get("active") or []]
    rows.append(("Active Workflows:", ", ".join(active) if active else "none"))
    for condition in status.get("conditions") or []:
        rows.append(("Conditions:", f"{condition.get('type')}: {condition.get('message', '')}"))
    try:
        parse_cron_spec(spec, local_zone())
    except ScheduleError as exc:
        if not any(c.get("type") == "SpecError" for c in status.get("conditions") or []):
            rows.append(("Error:", str(exc)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    return grid


@cron.command("suspend")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.pass_obj
def cron_suspend(obj: Context, names: tuple[str, ...], namespace: str) -> None:
    """Stop scheduling (sets spec.suspend: true; a later sync from git may set it back)."""
    set_suspend_each(names, True, lambda name, value: _set_suspend(obj, namespace, name, value))


@cron.command("resume")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.pass_obj
def cron_resume(obj: Context, names: tuple[str, ...], namespace: str) -> None:
    """Schedule again (sets spec.suspend: false)."""
    set_suspend_each(names, False, lambda name, value: _set_suspend(obj, namespace, name, value))


def set_suspend_each(names: tuple[str, ...], value: bool, set_one: Callable[[str, bool], None]) -> None:
    """`cron suspend|resume NAME...`: one line per CronWorkflow, the first failure ends it (shared with
    the remote form, whose `set_one` is an API call)."""
    for name in names:
        set_one(name, value)
        click.echo(f"CronWorkflow '{name}' {'suspended' if value else 'resumed'}")


def _set_suspend(obj: Context, namespace: str, name: str, value: bool) -> None:
    try:
        operations.set_cron_suspend(obj.store, namespace, name, value)
    except operations.OperationError as exc:
        fail_operation(exc)

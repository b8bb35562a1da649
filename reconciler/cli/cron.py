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

from reconciler import manifests, operations
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


def suspended(obj: dict) -> str:
    """`true`, `false`, or `true (override)` when `cron suspend` holds a git-managed cron suspended."""
    from reconciler.ownership import SUSPEND_OVERRIDE

    value = str(bool((obj.get("spec") or {}).get("suspend"))).lower()
    if ((obj.get("metadata") or {}).get("annotations") or {}).get(SUSPEND_OVERRIDE) == "true":
        value += " (override)"
    return value


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
            ("SUSPENDED", suspended),
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
        item = manifests.get_cron_workflow(obj.store, namespace, name)
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
        ("Suspended:", suspended(item)),
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
    return render.details_grid(rows + render.management_rows(item))


@cron.command("suspend")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.pass_obj
def cron_suspend(obj: Context, names: tuple[str, ...], namespace: str) -> None:
    """Stop scheduling (spec.suspend: true; on a cron git manages, held across syncs until resumed)."""
    set_suspend_each(names, True, lambda name, value: _set_suspend(obj, namespace, name, value))


@cron.command("resume")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.pass_obj
def cron_resume(obj: Context, names: tuple[str, ...], namespace: str) -> None:
    """Schedule again (spec.suspend: false; on a cron git manages, git's value from the next sync)."""
    set_suspend_each(names, False, lambda name, value: _set_suspend(obj, namespace, name, value))


def set_suspend_each(names: tuple[str, ...], value: bool, set_one: Callable[[str, bool], str | None]) -> None:
    """`cron suspend|resume NAME...`: one line per CronWorkflow (and a note on stderr for one git manages),
    the first failure ends it (shared with the remote form, whose `set_one` is an API call)."""
    for name in names:
        note = set_one(name, value)
        click.echo(f"CronWorkflow '{name}' {'suspended' if value else 'resumed'}")
        if note:
            click.echo(f"note: CronWorkflow '{name}' is {note}", err=True)


def _set_suspend(obj: Context, namespace: str, name: str, value: bool) -> str | None:
    try:
        return manifests.set_cron_suspend(obj.store, namespace, name, value)
    except operations.OperationError as exc:
        fail_operation(exc)


@cron.command("delete")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.option("--force", is_flag=True, help="Also a CronWorkflow git manages (the next sync recreates it).")
@click.pass_obj
def cron_delete(obj: Context, names: tuple[str, ...], namespace: str, force: bool) -> None:
    """Delete CronWorkflows (the workflows they created stay)."""
    delete_each(KIND, names, lambda name: delete_stored(obj, namespace, name, force))


def delete_each(kind: str, names: tuple[str, ...], delete_one: Callable[[str], str | None]) -> None:
    """`cron delete` / `template delete NAME...`: Argo's line per object, a note on stderr after a forced
    delete of one git manages; the first failure ends it (shared with the remote forms)."""
    for name in names:
        note = delete_one(name)
        click.echo(f"{kind} '{name}' deleted")
        if note:
            click.echo(note, err=True)


def delete_stored(obj: Context, namespace: str, name: str, force: bool, kind: str = KIND) -> str | None:
    """Delete one CronWorkflow or template from the local store; exit as fail_operation says on refusal."""
    try:
        return manifests.delete_object(obj.store, kind, namespace, name, force=force)
    except operations.OperationError as exc:
        fail_operation(exc)


@cron.command("create")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@namespace_option
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None)
@click.pass_obj
def cron_create(obj: Context, files: tuple[str, ...], namespace: str, output: str | None) -> None:
    """Create CronWorkflows from files (an existing one is an error: `reconciler apply` replaces)."""
    from reconciler.cli.common import read_manifests

    try:
        created, warnings = manifests.create_manifests(obj.store, read_manifests(files), namespace, {KIND},
                                                        "cron create")
    except operations.OperationError as exc:
        fail_operation(exc)
    print_created(created, [str(w) for w in warnings], output)


def print_created(created: list[dict], warnings: list[str], output: str | None) -> None:
    """What `cron create` prints: warnings on stderr, then each CronWorkflow as `cron get` shows it (as
    `argo cron create` does, -o json prints one object after another)."""
    for warning in warnings:
        click.echo(warning, err=True)
    for item in created:
        if output == "name":
            click.echo(item["metadata"]["name"])
        else:
            print_cron_workflow(item, output)

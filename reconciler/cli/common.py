"""What every CLI module shares: the consoles, error exits and common options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from reconciler import names
from reconciler.cli import render
from reconciler.config import DEFAULT_NAMESPACE
from reconciler.limits import TooLarge, check_file_size
from reconciler.spec import SpecError, read_text_file

console = Console()
if not console.is_terminal:
    # Piped output is read by scripts and people alike: never squeeze names into 80 columns.
    console = Console(width=400)


class _Err:
    """Errors are plain lines (file:line: field: message), never wrapped."""

    @staticmethod
    def print(message: str, **_: object) -> None:
        click.echo(message, err=True)


err = _Err()


def fail(message: str, code: int = 2) -> None:
    err.print(message, markup=False, highlight=False)
    sys.exit(code)


def print_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def _checked_namespace(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """-n is checked as Kubernetes checks a namespace, before it names a store row or a folder."""
    if value is not None:
        try:
            names.check_namespace(value)
        except ValueError as exc:
            fail(str(exc))
    return value


namespace_option = click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True,
                                callback=_checked_namespace)
output_option = click.option("-o", "--output", type=click.Choice(["wide", "json", "name", "yaml"]), default=None)


def fail_operation(exc: Exception) -> None:
    """An operations.OperationError: its problems one per line (exit 2), or its message (exit 2 for
    bad input, 1 for a state that does not allow it)."""
    problems = getattr(exc, "problems", [])
    for p in problems:
        err.print(str(p), markup=False, highlight=False)
    if not problems:
        err.print(str(exc), markup=False, highlight=False)
    sys.exit(2 if getattr(exc, "status", 400) == 400 else 1)


def parse_parameters(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`-p name=value`, repeatable."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"-p {item}: expected name=value")
        out[key] = value
    return out


def print_objects(items: list[dict], output: str | None, table=render.objects_table) -> None:
    """A listing of stored objects (workflows, templates): -o json, -o name, or `table(items)`."""
    if output == "json":
        print_json(items)
    elif output == "name":
        for item in items:
            click.echo(item["metadata"]["name"])
    else:
        console.print(table(items))


def read_manifests(paths: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(path, text) of each YAML file, for `apply`; exit 2 with file:1 problems when one cannot be read."""
    manifests, problems = [], []
    for path in paths:
        try:
            manifests.append((path, read_text_file(path)))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        fail("\n".join(str(p) for p in problems))
    return manifests


def print_applied(lines: list[str], warnings: list) -> None:
    """What `apply` did: its warnings on stderr, then kubectl's verdict line per object."""
    for warning in warnings:
        err.print(str(warning))
    for line in lines:
        click.echo(line)


status_option = click.option("--status", metavar="PHASES",
                             help="Only workflows in these phases, comma-separated (Running,Failed), as argo's.")
selector_option = click.option("-l", "--selector", metavar="SELECTOR",
                               help="Only workflows with these labels: key=value,key!=value,key (comma-separated).")
from_option = click.option("--from", "from_", metavar="KIND/NAME",
                           help="Submit from workflowtemplate/NAME, clusterworkflowtemplate/NAME or cronwf/NAME.")

KEY_ORDER = ("apiVersion", "kind", "metadata", "spec", "status")


def ordered(obj: dict) -> dict:
    """An object with its top-level keys in Kubernetes' order (apiVersion, kind, metadata, spec, status)."""
    first = {k: obj[k] for k in KEY_ORDER if k in obj}
    return {**first, **{k: v for k, v in obj.items() if k not in first}}


def print_workflow(wf: dict, output: str | None) -> None:
    """One workflow as `reconciler get` shows it (-o json, -o yaml, or summary and node tree; -o wide:
    more columns in the tree)."""
    if output == "json":
        print_json(ordered(wf))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(ordered(wf), sort_keys=False))
    else:
        console.print(render.workflow_view(wf, wide=output == "wide"))


def list_filters(status: str | None, selector: str | None) -> tuple:
    """`list --status` and `-l` as listing.select takes them; exit 2 naming a value that cannot be read."""
    from reconciler.listing import SelectorError, parse_phases, parse_selector

    try:
        return parse_phases(status), parse_selector(selector)
    except SelectorError as exc:
        fail(str(exc))


def print_workflows(items: list[dict], output: str | None) -> None:
    """`reconciler list`: -o wide reads whole workflows (pods and parameters); the rest their brief form."""
    from reconciler.listing import brief

    if output == "wide":
        console.print(render.workflows_table(items, wide=True))
    else:
        print_objects([brief(w) for w in items], output, render.workflows_table)


def no_latest(namespace: str) -> str:
    return f"no workflows in namespace {namespace}"


def check_submit_source(file: str | None, from_: str | None) -> None:
    if bool(file) == bool(from_):
        fail("submit takes a FILE or --from KIND/NAME (one of them)")


def read_workflow_file(file: str) -> str:
    """The text of the file `submit` was given (local and remote alike)."""
    try:
        check_file_size(file)
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, TooLarge) as exc:
        fail(f"{file}: {getattr(exc, 'strerror', None) or exc}")


def print_submitted(created: list[dict], namespace: str, output: str | None, *, running: bool) -> None:
    """What `submit` says of the workflows it stored (with -o name: just their names)."""
    for wf in created:
        name = wf["metadata"]["name"]
        if output == "name":
            click.echo(name)
        elif not running:
            click.echo(f"Name: {name}\nNamespace: {namespace}\nStatus: Pending")


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


def print_workflow(wf: dict, output: str | None) -> None:
    """One workflow as `reconciler get` shows it (-o json, -o yaml, or summary and node tree)."""
    if output == "json":
        print_json(wf)
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(wf, sort_keys=False))
    else:
        console.print(render.workflow_view(wf))


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


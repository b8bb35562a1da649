"""GitOps commands: diff, sync, status, history, sample-repo (promote, rollback, check: promotion.py).

Registered on the main group by `register(cli)`. This module must not import reconciler.cli.main:
run as `python -m reconciler.cli.main`, that module is __main__, and importing it again would build
a second command group.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reconciler.cli.context import Context
from reconciler.cli.render import age
from reconciler.source import redact
from reconciler.source.repository import normalize_url
from reconciler.spec import Problem, SpecError
from reconciler.sync import status as status_book
from reconciler.sync.model import FAILED, OUT_OF_SYNC, SYNCED, EnvironmentResult, change_line
from reconciler.sync.reconcile import Reconciler, short

console = Console()
if not console.is_terminal:
    console = Console(width=400)  # piped output is read by scripts: never squeeze it

PHASE_STYLE = {SYNCED: "green", OUT_OF_SYNC: "yellow", FAILED: "red"}

repo_option = click.option("--repo", envvar="RECONCILER_REPO", metavar="URL|PATH",
                           help="The workflow repository (also RECONCILER_REPO).")
env_option = click.option("--env", "environment", metavar="ENV", help="Only this environment.")
output_option = click.option("-o", "--output", type=click.Choice(["json", "wide"]), default=None)


def _fail(message: str, code: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _print_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2))


def _reconciler(ctx: Context, repo: str | None) -> Reconciler:
    if not repo:
        _fail("no repository: pass --repo URL|PATH or set RECONCILER_REPO")
    return Reconciler(ctx.store, repo, ctx.home)


def _run(ctx: Context, repo: str | None, environment: str | None, *, dry_run: bool,
         accept_rewrites: bool = False) -> list[EnvironmentResult]:
    rec = _reconciler(ctx, repo)
    try:
        return rec.run_pass(environment, dry_run=dry_run, accept_rewrites=accept_rewrites)
    except SpecError as exc:
        _fail(f"cannot read the repository's environments:\n{exc}")
    except KeyError as exc:
        _fail(str(exc.args[0]))
    finally:
        rec.source.close()
    return []


def _phase(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLE.get(phase, ""))


def _result_header(res: dict) -> None:
    """An environment's result (EnvironmentResult.to_dict) in one line, its problems below on stderr."""
    console.print(Text.assemble((res["name"], "bold"), f" (branch {res['branch']} -> namespace {res['namespace']}) ",
                                _phase(res["phase"]), f": {res['message']}"), highlight=False)
    for p in res.get("problems", []):
        problem = Problem(p["file"], p["line"], p["field"], p["message"], p.get("severity", "error"))
        click.echo(f"  {problem}", err=True)


def register(cli: click.Group) -> None:
    """Add the GitOps commands to the `reconciler` group."""
    for command in (diff, sync, status, history, sample_repo):
        cli.add_command(command)


@click.command()
@repo_option
@env_option
@output_option
@click.pass_obj
def diff(obj: Context, repo: str | None, environment: str | None, output: str | None) -> None:
    """What a sync would do, without doing it. Exit 0: in sync, 1: changes pending, 2: an environment failed."""
    print_diff([r.to_dict() for r in _run(obj, repo, environment, dry_run=True)], output)


def print_diff(results: list[dict], output: str | None) -> None:
    """`diff`'s output and exit code from the results' dicts (shared with the remote `diff`)."""
    if output == "json":
        _print_json(results)
    else:
        for res in results:
            _result_header(res)
            print_changes(res["plan"]["changes"])
    if any(r["phase"] == FAILED for r in results):
        sys.exit(2)
    sys.exit(1 if any(r["plan"]["changes"] for r in results) else 0)


def print_changes(changes: list[dict], *, diffs: bool = True) -> None:
    """Planned changes (Change.to_dict), one line each, with their diffs below."""
    for change in changes:
        console.print(Text("  " + change_line(change), style={"create": "green", "update": "yellow",
                                                                "delete": "red"}[change["action"]]),
                      highlight=False)
        for line in change.get("diff", "").splitlines() if diffs else []:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            console.print(Text("      " + line, style=style), highlight=False)


@click.command()
@repo_option
@env_option
@click.option("--accept-force-push", is_flag=True, help="Follow branches whose history was rewritten.")
@output_option
@click.pass_obj
def sync(obj: Context, repo: str | None, environment: str | None, accept_force_push: bool,
         output: str | None) -> None:
    """Run one sync pass now; exit 1 if any environment failed."""
    results = _run(obj, repo, environment, dry_run=False, accept_rewrites=accept_force_push)
    print_sync([r.to_dict() for r in results], output)


def print_sync(results: list[dict], output: str | None) -> None:
    """`sync`'s output and exit code from the results' dicts (shared with the remote `sync`)."""
    if output == "json":
        _print_json(results)
    else:
        for res in results:
            _result_header(res)
            for change in res["plan"]["changes"] if res["applied"] else []:
                console.print("  " + change_line(change), highlight=False, markup=False)
    sys.exit(1 if any(r["phase"] == FAILED for r in results) else 0)


def _environments(ctx: Context, repo: str | None) -> list[dict]:
    """Environment status objects, only those of `repo` when given."""
    found = status_book.list_environments(ctx.store)
    if repo:
        wanted = redact(normalize_url(repo))
        found = [e for e in found if (e.get("spec") or {}).get("repo") == wanted]
    return found


@click.command()
@repo_option
@env_option
@output_option
@click.pass_obj
def status(obj: Context, repo: str | None, environment: str | None, output: str | None) -> None:
    """Each environment: branch, namespace, commit applied, phase and why (like `argocd app list`)."""
    envs = [status_book.summary(e) for e in _environments(obj, repo)]
    if environment:
        envs = [e for e in envs if e["name"] == environment]
        if not envs:
            _fail(f"environment {environment!r} has not been synced yet", 1)
    print_status(envs, output)


def print_status(envs: list[dict], output: str | None) -> None:
    """Environment summaries as `reconciler status` shows them (shared with the remote `status`)."""
    if output == "json":
        _print_json(envs)
        return
    if not envs:
        click.echo("no environments synced yet: run `reconciler sync --repo URL|PATH`")
        return
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for column in ("NAME", "BRANCH", "NAMESPACE", "COMMIT", "PHASE", "DRIFT", "SYNCED", "MESSAGE"):
        table.add_column(column, overflow="fold" if column == "MESSAGE" else None)
    for env in envs:
        table.add_row(env["name"], env["branch"] or "", env["namespace"] or "", short(env["commit"]),
                      _phase(env["phase"]), str(env["driftCount"]), age(env["lastSyncTime"]) + " ago",
                      env["message"])
    console.print(table)
    if output == "wide":
        for env in envs:
            for p in env["problems"]:
                click.echo(f"{env['name']}: {p['file']}:{p['line']}: {p['field']}: {p['message']}")


@click.command()
@repo_option
@env_option
@output_option
@click.pass_obj
def history(obj: Context, repo: str | None, environment: str | None, output: str | None) -> None:
    """The last syncs of an environment, newest first, with their plans (-o wide: with diffs)."""
    if not environment:
        _fail("history needs --env ENV")
    env = next((e for e in _environments(obj, repo) if e["metadata"]["name"] == environment), None)
    if env is None:
        _fail(f"environment {environment!r} has not been synced yet", 1)
    entries = list(reversed((env.get("status") or {}).get("history") or []))
    if output == "json":
        _print_json(entries)
        return
    print_history(entries, wide=output == "wide")


def print_history(entries: list[dict], *, wide: bool) -> None:
    """Sync history entries, newest first (shared with the remote `history`)."""
    for entry in entries:
        console.print(Text.assemble((entry["time"], "bold"), f"  {short(entry.get('commit'))}  ",
                                    _phase(entry["phase"]), f"  {entry['message']}"), highlight=False)
        for change in entry["plan"]["changes"]:
            drift = " [drift]" if change["drift"] else ""
            console.print(f"    {change['action']} {change['kind']} {change['namespace']}/{change['name']}: "
                          f"{change['reason']}{drift}", highlight=False, markup=False)
            if wide:
                for line in change.get("diff", "").splitlines():
                    console.print("        " + line, highlight=False, markup=False)


@click.command("sample-repo")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--bare", is_flag=True, help="A bare repository, to use as a 'remote'.")
@click.option("--source", type=click.Path(file_okay=False, exists=True), default=None,
              help="The sample-repo folder (default: the one shipped with reconciler).")
@click.option("--exist-ok", is_flag=True, help="If DEST is already a git repository, keep it and succeed.")
def sample_repo(dest: str, bare: bool, source: str | None, exist_ok: bool) -> None:
    """Create a git repository with dev, qa and main branches from the sample workflows."""
    from reconciler.sync.sample import BRANCHES, make_sample_repo

    if exist_ok and ((Path(dest) / ".git").exists() or (Path(dest) / "HEAD").is_file()):
        # Recreating it would rewrite history under a daemon that already synced it.
        click.echo(f"{dest} exists; kept as it is")
        return
    try:
        path = make_sample_repo(Path(dest), Path(source) if source else None, bare=bare)
    except (FileNotFoundError, FileExistsError) as exc:
        _fail(str(exc))
    click.echo(f"created {path} with branches {', '.join(BRANCHES)}; try: reconciler sync --repo {path}")

"""GitOps commands: diff, sync, status, history, sample-repo, env suspend/resume (promote, rollback, check:
promotion.py).

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
    for command in (diff, sync, status, history, sample_repo, env_group):
        cli.add_command(command)


@click.group("env")
def env_group() -> None:
    """Environments: suspend and resume their sync (like `flux suspend` / `flux resume`)."""


@env_group.command("suspend")
@click.argument("environment")
@click.option("--reason", default="", help="Why, shown in `status -o wide` (at most 500 characters).")
@click.pass_obj
def env_suspend(obj: Context, environment: str, reason: str) -> None:
    """Stop syncing ENVIRONMENT (polls, webhooks, `sync`) until `env resume`; its objects stay as they are."""
    print_suspended(_set_suspended(obj, environment, True, reason))


@env_group.command("resume")
@click.argument("environment")
@click.pass_obj
def env_resume(obj: Context, environment: str) -> None:
    """Sync ENVIRONMENT again (the daemon catches up on its next pass)."""
    print_suspended(_set_suspended(obj, environment, False, ""))


def _set_suspended(ctx: Context, environment: str, suspended: bool, reason: str) -> dict:
    from reconciler.store.errors import NotFound

    try:
        return status_book.summary(status_book.set_suspended(ctx.store, environment, suspended, reason))
    except NotFound:
        _fail(f"environment {environment!r} has not been synced yet (see `reconciler status`)", 1)
    except ValueError as exc:
        _fail(str(exc))
    return {}


def print_suspended(env: dict) -> None:
    """The outcome of `env suspend`/`env resume` (shared with their remote forms)."""
    if env["suspended"]:
        click.echo(f"environment {env['name']} suspended: no sync until `reconciler env resume {env['name']}`")
    else:
        click.echo(f"environment {env['name']} resumed")


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


def cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters; the full text is in -o wide and -o json."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _problem_line(p: dict) -> str:
    return f"{p['file']}:{p['line']}: {p['field']}: {p['message']}"


def _last_change(change: dict | None) -> str:
    if not change:
        return ""
    subject = f" {change['subject']}" if change.get("subject") else ""
    return f"{age(change['time'])} ago {short(change['commit'])}{subject} ({change['summary']})"


def print_status(envs: list[dict], output: str | None) -> None:
    """Environment summaries as `reconciler status` shows them (shared with the remote `status`).
    Exits 1 when any environment is Failed."""
    if output == "json":
        _print_json(envs)
    elif not envs:
        click.echo("no environments synced yet: run `reconciler sync --repo URL|PATH`")
    else:
        _status_table(envs, wide=output == "wide")
    if any(e["phase"] == FAILED for e in envs):
        sys.exit(1)


def _status_table(envs: list[dict], *, wide: bool) -> None:
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for column in ("NAME", "BRANCH", "NAMESPACE", "COMMIT", "PHASE", "DRIFT", "WARNINGS", "SYNCED", "LAST CHANGE",
                   "MESSAGE"):
        table.add_column(column, overflow="fold" if column in ("MESSAGE", "LAST CHANGE") else None)
    for env in envs:
        commit = short(env["commit"])
        if env.get("gitAhead"):
            commit += f" (git ahead: {short(env['head'])})"
        phase = _phase(env["phase"])
        if env.get("suspended"):
            phase.append(" (Suspended)", style="yellow")
        last = _last_change(env.get("lastChange"))
        table.add_row(env["name"], env["branch"] or "", env["namespace"] or "", commit, phase,
                      str(env["driftCount"]), str(len(env.get("warnings") or [])),
                      age(env["lastSyncTime"]) + " ago" if env["lastSyncTime"] else "never",
                      last if wide else cut(last, 60), env["message"] if wide else cut(env["message"], 80))
    console.print(table)
    if wide:
        for env in envs:
            if env.get("suspended"):
                reason = f": {env['suspendReason']}" if env.get("suspendReason") else ""
                click.echo(f"{env['name']}: suspended since {env.get('suspendedAt')}{reason}")
            for p in env["problems"]:
                click.echo(f"{env['name']}: {_problem_line(p)}")
            for p in env.get("warnings") or []:
                click.echo(f"{env['name']}: warning: {_problem_line(p)}")


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
    """Sync history entries, newest first (shared with the remote `history`): passes that changed
    something, each with how many passes changed nothing after it."""
    for entry in entries:
        console.print(Text.assemble((entry["time"], "bold"), f"  {short(entry.get('commit'))}  ",
                                    _phase(entry["phase"]), f"  {entry['message']}"), highlight=False)
        about = entry.get("head") if entry.get("phase") == FAILED else entry.get("commit")
        if entry.get("subject") or entry.get("author"):
            console.print(f"    commit {short(about)}: {entry.get('subject', '')} ({entry.get('author', '')})",
                          highlight=False, markup=False)
        if entry.get("unchangedPasses"):
            console.print(f"    {entry['unchangedPasses']} passes without changes since "
                          f"(last {entry.get('lastUnchangedTime')})", highlight=False, markup=False)
        for p in entry.get("warnings") or []:
            console.print(f"    warning: {_problem_line(p)}", highlight=False, markup=False)
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

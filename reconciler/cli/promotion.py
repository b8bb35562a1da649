"""Moving environments in git, checked first: promote, rollback, and check (for pull requests).

Each builds the target environment from the commit it would put on the environment's branch, with
that environment's overrides and policies (the sync's own build), and refuses with every problem
(file, line, rule) before anything is pushed. --dry-run prints the plan instead of pushing.
"""

from __future__ import annotations

import json
import os
import re
import sys

import click

from reconciler.cli.common import fail
from reconciler.cli.context import Context
from reconciler.cli.gitops import print_changes, repo_option
from reconciler.source import SourceError
from reconciler.spec import SpecError
from reconciler.spec.repo_config import CONFIG_FILES, EnvironmentConfig, RepoConfig, parse_config
from reconciler.sync.model import problem_dict
from reconciler.sync.preflight import Preflight, PreflightError, find_environment, preflight
from reconciler.sync.reconcile import Reconciler, short

REFUSED = 1  # the exit code of a refusal: git was left as it was
POLICY_RULE = re.compile(r"policy (\S+) \((?:deny|warn)\)")  # how evaluate() words a policy problem


def register(cli: click.Group) -> None:
    for command in (promote, rollback, check):
        cli.add_command(command)


def _open(ctx: Context, repo: str | None) -> tuple[Reconciler, RepoConfig]:
    """The repository fetched, and its environments from the config branch."""
    if not repo:
        fail("no repository: pass --repo URL|PATH or set RECONCILER_REPO")
    rec = Reconciler(ctx.store, repo, ctx.home)
    fetched = rec.fetch()
    if not fetched.ok:
        rec.source.close()
        fail(f"cannot read the repository: {fetched.error}", REFUSED)
    config, problems = rec.load_config()
    if config is None:
        rec.source.close()
        fail("cannot read the repository's environments:\n" + "\n".join(str(p) for p in problems), REFUSED)
    return rec, config


def _environment(config: RepoConfig | None, name: str, doing: str, code: int) -> EnvironmentConfig:
    try:
        return find_environment(config, name)
    except PreflightError as exc:
        fail(f"cannot {doing}: {exc}", code)
    raise AssertionError("unreachable: fail() exits")


def _report(pre: Preflight, *, diffs: bool) -> None:
    """The preflight's warnings and problems (stderr, file:line: field: message) and its plan."""
    for p in pre.warnings + pre.problems:
        click.echo(str(p), err=True)
    if pre.ok:
        click.echo(f"plan for {pre.environment.name} (namespace {pre.environment.namespace}): {pre.plan.summary()}")
        print_changes([c.to_dict() for c in pre.plan.changes], diffs=diffs)


def _refuse_if_failed(pre: Preflight, what: str) -> None:
    if not pre.ok:
        rules = sorted({m.group(1) for m in (POLICY_RULE.match(p.message) for p in pre.problems) if m})
        because = f" (rules: {', '.join(rules)})" if rules else ""
        fail(f"cannot {what}: commit {short(pre.commit)} fails environment {pre.environment.name}'s checks: "
              f"{len(pre.problems)} problem(s) above{because}; nothing was pushed", REFUSED)


dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Check and print the plan (a diff per object); push nothing.")


@click.command()
@click.argument("source")
@click.argument("target")
@repo_option
@dry_run_option
@click.pass_obj
def promote(obj: Context, source: str, target: str, repo: str | None, dry_run: bool) -> None:
    """Fast-forward TARGET's branch to SOURCE's commit and push, if TARGET's checks pass on it.

    TARGET is an environment of reconciler.yaml (or an environment's branch); SOURCE is an
    environment or any branch.
    """
    rec, config = _open(obj, repo)
    try:
        to_env = _environment(config, target, f"promote to {target}", REFUSED)
        try:
            from_branch = find_environment(config, source).branch
        except PreflightError:
            from_branch = source  # any branch may be promoted from: a release branch, a hotfix
        from_sha, to_sha = rec.source.head(from_branch), rec.source.head(to_env.branch)
        if from_sha is None:
            fail(f"cannot promote: {source} is neither an environment nor a branch of {rec.source.display_url}",
                  REFUSED)
        if to_sha == from_sha:
            click.echo(f"{to_env.name} ({to_env.branch}) is already at {short(from_sha)}; nothing to promote")
            return
        if to_sha is not None and not rec.source.is_ancestor(to_sha, from_sha):
            fail(f"cannot promote {source} to {target}: not a fast-forward. {to_env.branch} ({short(to_sha)}) has "
                  f"commits that {from_branch} ({short(from_sha)}) does not contain; merge {to_env.branch} into "
                  f"{from_branch} first (or promote through a reviewed merge)", REFUSED)
        pre = preflight(rec.builder, to_env, from_sha, to_sha)
        _report(pre, diffs=dry_run)
        _refuse_if_failed(pre, f"promote {source} to {to_env.name}")
        move = f"{to_env.branch} {short(to_sha)} -> {short(from_sha)}"
        if dry_run:
            click.echo(f"dry run: would promote {source} -> {to_env.name}: {move}; nothing pushed")
            return
        try:
            rec.source.push(from_sha, to_env.branch)
        except SourceError as exc:
            fail(f"cannot promote: {exc}", REFUSED)
        rec.fetch()
        click.echo(f"promoted {source} -> {to_env.name}: {move}")
    finally:
        rec.source.close()


@click.command()
@click.argument("environment")
@click.argument("commit")
@repo_option
@dry_run_option
@click.pass_obj
def rollback(obj: Context, environment: str, commit: str, repo: str | None, dry_run: bool) -> None:
    """Put ENVIRONMENT back on COMMIT: a new commit on its branch with COMMIT's files, pushed.

    History stays append-only (no force-push): the new commit's parent is the branch head, its
    tree is COMMIT's. COMMIT must be in the branch's history and pass the environment's checks.
    """
    rec, config = _open(obj, repo)
    try:
        env = _environment(config, environment, f"roll back {environment}", REFUSED)
        head = rec.source.head(env.branch)
        if head is None:
            fail(f"cannot roll back {env.name}: branch {env.branch} not found in {rec.source.display_url}", REFUSED)
        sha = rec.source.resolve(commit)
        if sha is None:
            fail(f"cannot roll back {env.name}: no commit {commit} in {rec.source.display_url}", REFUSED)
        if sha != head and not rec.source.is_ancestor(sha, head):
            fail(f"cannot roll back {env.name} to {short(sha)}: it is not in the history of branch {env.branch} "
                  f"(only an earlier state of the environment can be restored; use promote to move forward)",
                  REFUSED)
        if rec.source.tree_of(sha) == rec.source.tree_of(head):
            click.echo(f"{env.name} ({env.branch} at {short(head)}) already has the files of {short(sha)}; "
                       "nothing to roll back")
            return
        pre = preflight(rec.builder, env, sha, head)
        _report(pre, diffs=dry_run)
        _refuse_if_failed(pre, f"roll back {env.name}")
        if dry_run:
            click.echo(f"dry run: would add a commit on {env.branch} (after {short(head)}) restoring the files of "
                       f"{short(sha)}; nothing pushed")
            return
        subject = rec.source.commit_info(sha)["message"]
        message = (f"Roll back {env.name} to {short(sha)}: {subject}\n\n"
                   f"Restores the files of {sha}\non branch {env.branch}, which was at {head}.\n"
                   f"(reconciler rollback {env.name} {commit})\n")
        try:
            new = rec.source.commit_tree(sha, head, message)
            rec.source.push(new, env.branch)
        except SourceError as exc:
            fail(f"cannot roll back: {exc}", REFUSED)
        rec.fetch()
        click.echo(f"rolled back {env.name}: {env.branch} {short(head)} -> {short(new)} (the files of {short(sha)}); "
                   "the next sync applies it")
    finally:
        rec.source.close()


@click.command()
@click.option("--env", "environment", required=True, metavar="ENV", help="The environment to build.")
@click.option("--ref", default=None, metavar="REF",
              help="Branch, tag, sha or ref to build (default: the environment's branch); HEAD in a CI checkout.")
@click.option("--repo", envvar="RECONCILER_REPO", metavar="URL|PATH", default=".", show_default=True,
              help="The workflow repository (also RECONCILER_REPO).")
@click.option("-o", "--output", type=click.Choice(["json"]), default=None)
@click.pass_obj
def check(obj: Context, environment: str, ref: str | None, repo: str, output: str | None) -> None:
    """Build ENV from REF as the sync would (overrides, limits, policies); exit 1 on any error.

    For pull requests: `reconciler check --env prod --ref HEAD` in the CI checkout. Problems are
    printed as file:line: field: message (policy problems name the rule); exit 2 when the check
    cannot run (no such environment, ref or repository).
    """
    rec = Reconciler(obj.store, os.path.abspath(repo) if os.path.isdir(repo) else repo, obj.home)
    try:
        fetched = rec.fetch()
        if not fetched.ok:
            fail(f"cannot check: {fetched.error}")
        wanted = ref or environment
        config, _ = rec.load_config()
        if ref is None:
            wanted = _environment(config, environment, "check", 2).branch
        sha = rec.source.resolve(wanted)
        if sha is None:
            fail(f"cannot check: no branch, tag or commit {wanted} in {rec.source.display_url}")
        config = _with_own_config(rec, sha, config, environment)
        env = _environment(config, environment, "check", 2)
        pre = preflight(rec.builder, env, sha, rec.source.head(env.branch))
        if output == "json":
            click.echo(json.dumps({"environment": env.name, "namespace": pre.environment.namespace, "ref": wanted,
                                   "commit": sha, "ok": pre.ok, "problems": [problem_dict(p) for p in pre.problems],
                                   "warnings": [problem_dict(p) for p in pre.warnings],
                                   "plan": pre.plan.to_dict()}, indent=2))
        else:
            _report(pre, diffs=False)
            verdict = "passes" if pre.ok else f"FAILS: {len(pre.problems)} error(s)"
            click.echo(f"check {env.name} at {wanted} ({short(sha)}): {verdict}, {len(pre.warnings)} warning(s)")
        sys.exit(0 if pre.ok else 1)
    finally:
        rec.source.close()


def _with_own_config(rec: Reconciler, sha: str, config: RepoConfig | None, environment: str) -> RepoConfig | None:
    """Where the config branch does not define the environment (a CI checkout may hold only the
    pull request's commit, or the pull request adds the environment), the ref's own reconciler.yaml."""
    if config is not None and environment in config.environments:
        return config
    for name in CONFIG_FILES:
        raw = rec.source.read(sha, name)
        if raw is not None:
            try:
                return parse_config(raw.decode("utf-8-sig"), name)
            except (SpecError, UnicodeDecodeError) as exc:
                detail = str(exc) if isinstance(exc, SpecError) else f"{name}:1: (file): not UTF-8 text"
                fail(f"cannot check: {name} at {short(sha)} is invalid:\n{detail}", 1)
    return config

"""One sync pass: fetch source, build, diff, apply, report; for each environment on its own.

An environment whose branch head fails (a bad file, a policy denial, a conflict with an object we
do not own) stays at its last good commit: that commit is rebuilt and used for self-heal and prune,
and the status names the file, line and rule. Other environments are not affected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.engine.submission import store_lookup
from reconciler.limits import TooLarge
from reconciler.source import FetchResult, GitSource
from reconciler.spec import Problem, SpecError
from reconciler.spec.repo_config import CONFIG_FILE, EnvironmentConfig, RepoConfig, parse_config
from reconciler.store.base import ObjectStore
from reconciler.store.errors import StoreError

from . import status as status_book
from .apply import apply_plan
from .build import Builder, BuildResult
from .diff import plan as make_plan
from .model import FAILED, OUT_OF_SYNC, SYNCED, EnvironmentResult, Plan, problem_dict

log = logging.getLogger("reconciler.sync")


def short(sha: str | None) -> str:
    return sha[:7] if sha else "none"


def _log_outcome(result: EnvironmentResult, prior: status_book.PriorState) -> None:
    """Say what a pass did, once: a pass that changed nothing is DEBUG, a rejected commit is an ERROR
    the first time and DEBUG on every poll after, and policy warnings are a WARNING when they change."""
    extra = {"environment": result.environment, "commit": short(result.commit)}
    old = prior.status
    same = (old.get("phase"), old.get("reason"), old.get("head")) == (result.phase, result.reason, result.head)
    if result.failed:
        level = logging.DEBUG if same else logging.ERROR
    else:
        level = logging.INFO if not result.plan.empty or not same else logging.DEBUG
    log.log(level, "%s: %s: %s", result.environment, result.phase, result.message, extra=extra)
    warnings = [problem_dict(p) for p in result.warnings[:50]]
    if warnings and warnings != old.get("warnings"):
        for p in result.warnings:
            log.warning("%s: %s", result.environment, p, extra=extra)


def describe(problems: list[Problem], limit: int = 3) -> str:
    text = "; ".join(str(p) for p in problems[:limit])
    return text + (f" (and {len(problems) - limit} more)" if len(problems) > limit else "")


@dataclass
class _Attempt:
    """A commit built and diffed: usable when it has no problems."""

    commit: str
    build: BuildResult
    plan: Plan = field(default_factory=Plan)

    @property
    def problems(self) -> list[Problem]:
        return self.build.problems + self.plan.conflicts

    @property
    def reason(self) -> str:
        if self.build.policy_failed:
            return "PolicyDenied"
        return "Conflict" if self.plan.conflicts and not self.build.problems else "ValidationFailed"


class Reconciler:
    """Syncs the environments of one repository into one store. Not thread-safe: one pass at a time."""

    def __init__(self, store: ObjectStore, repo: str, home: Path, *, config_branch: str | None = None,
                 quiet_seconds: float = 0.0) -> None:
        self.store = store
        # The daemon's polls skip writing passes that change nothing (status.HEARTBEAT_SECONDS); a one-off
        # `reconciler sync` always records its pass.
        self.quiet_seconds = quiet_seconds
        self.unchanged_passes: dict[str, int] = {}
        self.source = GitSource(repo, home)
        self.builder = Builder(self.source, store_lookup(store))
        self.config_branch = config_branch
        self.last_fetch: FetchResult | None = None

    # ---- step 1: source ----------------------------------------------------------------------
    def fetch(self, *, accept_rewrites: bool = False) -> FetchResult:
        self.last_fetch = self.source.fetch(accept_rewrites=accept_rewrites)
        return self.last_fetch

    def _config_branch(self) -> str | None:
        if self.config_branch is None and self.last_fetch is not None and self.last_fetch.ok:
            self.config_branch = self.source.default_branch()
        if self.config_branch:
            return self.config_branch
        branches = self.source.branches()
        return next((b for b in ("main", "master") if b in branches), None)

    def load_config(self) -> tuple[RepoConfig | None, list[Problem]]:
        """The environments, from reconciler.yaml on the config branch (the remote's default branch).

        When that file is broken, environments already known from the store keep syncing.
        """
        branch = self._config_branch()
        head = self.source.head(branch) if branch else None
        problem: list[Problem] = []
        if head is not None:
            try:
                raw = self.source.read(head, CONFIG_FILE)
                if raw is not None:
                    return parse_config(raw.decode("utf-8-sig"), CONFIG_FILE), []
            except SpecError as exc:
                problem = exc.problems
            except UnicodeDecodeError:
                problem = [Problem(CONFIG_FILE, 1, "(file)", "not UTF-8 text")]
            except TooLarge as exc:
                problem = [Problem(CONFIG_FILE, 1, "(file)", str(exc))]
            problem = problem or [Problem(CONFIG_FILE, 1, "(file)", f"no {CONFIG_FILE} at the root of branch {branch}")]
        else:
            problem = [Problem(CONFIG_FILE, 1, "(file)", f"no config branch found in {self.source.display_url} "
                                                         "(main, master, or the remote's HEAD)")]
        known = {}
        for obj in status_book.list_environments(self.store):
            spec = obj.get("spec") or {}
            if spec.get("repo") == self.source.display_url and spec.get("branch") and spec.get("namespace"):
                name = obj["metadata"]["name"]
                known[name] = EnvironmentConfig(name=name, branch=spec["branch"], namespace=spec["namespace"],
                                                path=spec.get("path") or "", production=bool(spec.get("production")))
        return (RepoConfig(known) if known else None), problem

    # ---- the pass ----------------------------------------------------------------------------
    def run_pass(self, environment: str | None = None, *, dry_run: bool = False, fetch: bool = True,
                 accept_rewrites: bool = False) -> list[EnvironmentResult]:
        fetched = self.fetch(accept_rewrites=accept_rewrites) if fetch else self.last_fetch
        fetch_error = fetched.error if fetched is not None and not fetched.ok else ""
        config, config_problems = self.load_config()
        if config is None:
            # Nothing to sync yet: say why, with the fetch failure that is usually the cause.
            source = [Problem(self.source.display_url, 1, "(source)", fetch_error)] if fetch_error else []
            raise SpecError(source + config_problems)
        if config_problems:
            log.error("reconciler.yaml on the config branch is invalid; using the environments known "
                      "from the last good config: %s", describe(config_problems))
        envs = config.select(environment)
        results = []
        order = {name: i for i, name in enumerate(config.environments)}
        for env in envs:
            started = time.perf_counter()
            result = self.reconcile(env, dry_run=dry_run, fetch_error=fetch_error, order=order[env.name])
            result.seconds = time.perf_counter() - started
            results.append(result)
        return results

    def reconcile(self, config: EnvironmentConfig, *, dry_run: bool = False,
                  fetch_error: str = "", order: int | None = None) -> EnvironmentResult:
        prior = status_book.prior_state(self.store, config.name)
        head = self.source.head(config.branch)
        if prior.suspended and not dry_run:
            return self._suspended(config, prior, head)
        head_attempt = self._attempt(config, head, prior) if head else None
        used, failure = head_attempt, None
        if head_attempt is None or head_attempt.problems:
            failure = head_attempt
            used = None
            # Stay at the last good commit: rebuild it, so self-heal and prune still work.
            if prior.applied_commit and prior.applied_commit != head and self.source.has_commit(prior.applied_commit):
                fallback = self._attempt(config, prior.applied_commit, prior)
                used = fallback if not fallback.problems else None
        plan = used.plan if used else Plan()
        env_config = (used or failure).build.config if (used or failure) else config
        result = EnvironmentResult(environment=config.name, branch=config.branch, namespace=env_config.namespace,
                                   phase=SYNCED, reason="Synced", message="", head=head, plan=plan,
                                   commit=prior.applied_commit,
                                   warnings=(failure or used).build.warnings if (failure or used) else [])
        apply_errors: list[str] = []
        created: list[str] = []
        if used and not dry_run:
            applied = apply_plan(self.store, plan, environment=config.name, commit=used.commit)
            apply_errors, created = applied.errors, applied.created_workflows
            result.applied = True
            if applied.ok:
                result.commit = used.commit
        self._judge(result, head, used, failure, apply_errors, fetch_error, dry_run)
        if dry_run:
            status_book.mark_out_of_sync(self.store, result)
            return result
        _log_outcome(result, prior)
        inventory = {o.key for o in used.build.objects} if used and not apply_errors else None
        info = self.source.commit_info(result.commit) if result.commit else None
        head_info = info
        if head and head != result.commit:  # a rejected head: history names its subject and author
            head_info = self.source.commit_info(head)
        status_book.record(self.store, env_config, self.source.display_url, result, inventory=inventory,
                           created_workflows=created, fetch_error=fetch_error, commit_info=info,
                           head_info=head_info, order=order, quiet_seconds=self.quiet_seconds,
                           pending=self.unchanged_passes)
        return result

    def _suspended(self, config: EnvironmentConfig, prior: status_book.PriorState,
                   head: str | None) -> EnvironmentResult:
        """Nothing built, applied or pruned; only the head is noted, so status can say git moved on."""
        since = prior.spec.get("suspendedAt") or "?"
        why = f" ({prior.spec['suspendReason']})" if prior.spec.get("suspendReason") else ""
        result = EnvironmentResult(
            environment=config.name, branch=config.branch, namespace=prior.spec.get("namespace") or config.namespace,
            phase=prior.status.get("phase") or SYNCED, reason="Suspended", commit=prior.applied_commit, head=head,
            message=f"sync suspended since {since}{why}; `reconciler env resume {config.name}` resumes it")
        status_book.note_head(self.store, config.name, head)
        log.debug("%s: suspended, skipped", config.name, extra={"environment": config.name})
        return result

    # ---- steps 2 and 3: build and diff ----------------------------------------------------------------
    def _attempt(self, config: EnvironmentConfig, commit: str, prior: status_book.PriorState) -> _Attempt:
        build = self.builder.build(config, commit)
        attempt = _Attempt(commit=commit, build=build)
        if build.ok:
            # Before the diff: on a cluster the engine decides which resources the live objects are in.
            try:
                self.store.set_engine(build.config.namespace, build.config.engine)
            except StoreError as exc:
                build.problems.append(Problem(CONFIG_FILE, build.config.line,
                                              f"environments.{build.config.name}.engine", str(exc)))
                return attempt
            attempt.plan = make_plan(self.store, config.name, build.objects,
                                     applied=prior.inventory, submitted=prior.submitted)
        return attempt

    # ---- step 5: report -------------------------------------------------------------------------
    @staticmethod
    def _judge(result: EnvironmentResult, head: str | None, used: _Attempt | None, failure: _Attempt | None,
               apply_errors: list[str], fetch_error: str, dry_run: bool) -> None:
        plan = result.plan
        if dry_run:
            done = f"would apply {short(used.commit)}: {plan.summary()}" if used else "nothing can be applied"
        else:
            done = plan.summary(done=True) if used else "nothing applied"
        corrected = f"; {plan.drift} drifted object(s) {'to correct' if dry_run else 'corrected'}" \
            if plan.drift else ""
        at = f"staying at last good commit {short(result.commit)}" if result.commit else "no commit applied yet"
        if head is None:
            result.phase, result.reason = FAILED, "BranchNotFound"
            result.message = f"branch {result.branch} not found in the repository; {at}"
        elif failure is not None:
            result.phase, result.reason = FAILED, failure.reason
            result.problems = failure.problems
            result.message = f"commit {short(head)} rejected: {describe(failure.problems)}; {at}"
        elif apply_errors:
            result.phase, result.reason = FAILED, "ApplyFailed"
            result.message = f"applying {short(head)} failed: {'; '.join(apply_errors[:3])}; will retry next pass"
            return
        elif fetch_error:
            result.phase, result.reason = FAILED, "FetchFailed"
            result.message = f"{fetch_error}; {at}; {done}{corrected}"
            return
        elif dry_run and not plan.empty:
            result.phase, result.reason = OUT_OF_SYNC, "ChangesPending"
            result.message = f"{done}{corrected}"
            return
        else:
            result.message = f"{'at' if dry_run else 'applied'} {short(head)}: {done}{corrected}" if not dry_run \
                else f"at {short(head)}: no changes"
            return
        if used and (not plan.empty):
            result.message += f" ({'would' if dry_run else 'did'} re-apply it: {done}{corrected})"
        if fetch_error:
            result.message += f"; also: {fetch_error}"

"""Preflight: build an environment from a commit before git moves, and say what would change.

`promote`, `rollback` and `check` all ask one question: if this commit were on that environment's
branch, would the sync accept it (files, overrides, the environment's policies), and what would it
change? The build is the sync's own (Builder), so a preflight passes exactly when the sync would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.spec import Problem
from reconciler.spec.repo_config import CONFIG_FILE, EnvironmentConfig, RepoConfig

from .build import Builder, BuildResult
from .diff import unified
from .model import Change, DesiredObject, Plan


class PreflightError(Exception):
    """A promotion, rollback or check that cannot even be attempted; the message says why."""


def find_environment(config: RepoConfig | None, name: str) -> EnvironmentConfig:
    """The environment called `name`, or the one whose branch is `name` (promote qa main)."""
    envs = config.environments if config else {}
    if name in envs:
        return envs[name]
    by_branch = [env for env in envs.values() if env.branch == name]
    if len(by_branch) == 1:
        return by_branch[0]
    known = ", ".join(f"{env.name} (branch {env.branch})" for env in envs.values()) or "none"
    raise PreflightError(f"{name} is not an environment of {CONFIG_FILE} nor the branch of one (known: {known})")


@dataclass
class Preflight:
    """One environment built from one commit, and how that differs from what its branch has now."""

    environment: EnvironmentConfig
    commit: str
    build: BuildResult
    plan: Plan = field(default_factory=Plan)

    @property
    def ok(self) -> bool:
        return self.build.ok

    @property
    def problems(self) -> list[Problem]:
        return self.build.problems

    @property
    def warnings(self) -> list[Problem]:
        return self.build.warnings


def preflight(builder: Builder, environment: EnvironmentConfig, commit: str, current: str | None) -> Preflight:
    """Build `environment` from `commit`; the plan compares it with the build of `current` (the
    branch head now; None when the branch does not exist yet)."""
    candidate = builder.build(environment, commit)
    result = Preflight(environment=candidate.config, commit=commit, build=candidate)
    if candidate.ok:
        before = builder.build(environment, current) if current else None
        result.plan = compare(before.objects if before is not None and before.ok else [], candidate.objects,
                              before_label=f"{environment.branch}@{current[:7] if current else 'none'}",
                              after_label=commit[:7])
    return result


def compare(before: list[DesiredObject], after: list[DesiredObject], *, before_label: str,
            after_label: str) -> Plan:
    """What moving an environment from one build to another changes, object by object.

    Built objects carry the commit in an annotation; the content hash ignores it, so only real
    changes show. A Workflow is a run: new content is a new run, and a run is never deleted.
    """
    plan = Plan()
    old = {o.key: o for o in before}
    for want in after:
        kind, ns, name = key = want.key
        had = old.get(key)
        if had is not None and had.content_hash == want.content_hash:
            continue
        if had is None:
            reason = "new workflow content: runs once" if kind == "Workflow" else "new in git"
        else:
            reason = "changed in git"
        plan.changes.append(Change("create" if had is None else "update", kind, ns, name, reason, want.path, False,
                                   unified(had.obj if had else None, want.obj, f"{kind}/{name}",
                                           before=before_label, after=after_label), want, None))
    wanted = {o.key for o in after}
    for key, had in old.items():
        kind, ns, name = key
        if key not in wanted and kind != "Workflow":
            plan.changes.append(Change("delete", kind, ns, name, "file removed from git (prune)", had.path, False,
                                       unified(had.obj, None, f"{kind}/{name}", before=before_label,
                                               after=after_label), None, had.obj))
    plan.sort()
    return plan

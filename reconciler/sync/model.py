"""Plain data of a sync: labels we own, planned changes, and the result of one environment's pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.limits import human
from reconciler.ownership import (  # noqa: F401 - the sync's labels, re-exported for its modules
    CONTENT_HASH,
    ENVIRONMENT_LABEL,
    MANAGED_BY,
    MANAGER,
    OWN_PREFIX,
    SOURCE_COMMIT,
    SOURCE_PATH,
    SUSPEND_OVERRIDE,
    is_managed,
    managed_selector,
)
from reconciler.spec.problems import Problem

SYSTEM_NAMESPACE = "reconciler-system"
ENVIRONMENT_KIND = "Environment"
ENVIRONMENT_API = "reconciler.io/v1"

# Apply order: what others refer to first (ConfigMaps for semaphores, templates for templateRef).
SYNC_KINDS = ("ConfigMap", "WorkflowTemplate", "CronWorkflow", "Workflow")

SYNCED, OUT_OF_SYNC, FAILED = "Synced", "OutOfSync", "Failed"


@dataclass
class DesiredObject:
    """An object as git wants it, ready to store: labels, annotations and content hash set."""

    obj: dict
    path: str  # the file in the repository
    line: int
    content_hash: str

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.obj["metadata"]
        return self.obj["kind"], meta["namespace"], meta["name"]


@dataclass
class Change:
    action: str  # create | update | delete
    kind: str
    namespace: str
    name: str
    reason: str  # why, in words: "new in git", "edited out of band", "file removed from git" ...
    path: str = ""
    drift: bool = False
    diff: str = ""
    desired: DesiredObject | None = field(default=None, repr=False)
    live: dict | None = field(default=None, repr=False)

    def to_dict(self, with_diff: bool = True) -> dict[str, Any]:
        out = {"action": self.action, "kind": self.kind, "namespace": self.namespace, "name": self.name,
               "reason": self.reason, "path": self.path, "drift": self.drift}
        if with_diff:
            out["diff"] = self.diff
        return out

    def line(self) -> str:
        return change_line(self.to_dict(with_diff=False))


def change_line(change: dict[str, Any]) -> str:
    """A change (as Change.to_dict gives it) in one line: `+ WorkflowTemplate ns/name: why [drift] (path)`."""
    sign = {"create": "+", "update": "~", "delete": "-"}[change["action"]]
    drift = " [drift]" if change["drift"] else ""
    source = f" ({change['path']})" if change.get("path") else ""
    return f"{sign} {change['kind']} {change['namespace']}/{change['name']}: {change['reason']}{drift}{source}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Problem] = field(default_factory=list)  # objects we would have to take over

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def drift(self) -> int:
        return sum(1 for c in self.changes if c.drift)

    def sort(self) -> None:
        """Apply order: creates and updates first, what others refer to before them, deletes last."""
        order = {k: i for i, k in enumerate(SYNC_KINDS)}
        self.changes.sort(key=lambda c: (c.action == "delete", order.get(c.kind, 9), c.namespace, c.name))

    def summary(self, done: bool = False) -> str:
        if not self.changes:
            return "no changes"
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in ("create", "update", "delete")}
        if done:
            return f"{counts['create']} created, {counts['update']} updated, {counts['delete']} deleted"
        return f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete"

    def to_dict(self, with_diff: bool = True, max_diff_lines: int | None = None,
                max_diff_bytes: int | None = None) -> dict[str, Any]:
        changes = []
        for change in self.changes:
            item = change.to_dict(with_diff)
            if with_diff and (max_diff_lines is not None or max_diff_bytes is not None):
                item["diff"] = capped_diff(item["diff"], max_diff_lines, max_diff_bytes)
            changes.append(item)
        return {"summary": self.summary(), "drift": self.drift, "changes": changes}


def capped_diff(diff: str, max_lines: int | None, max_bytes: int | None) -> str:
    """A diff fit to keep in a status: at most `max_lines` lines, or a one-line summary when over
    `max_bytes` (a diff of a large object must not make the status large)."""
    if max_bytes is not None and len(diff) > max_bytes // 4 and len(diff.encode()) > max_bytes:
        changed = sum(1 for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        return f"{changed} lines changed, diff omitted: over {human(max_bytes)}"
    lines = diff.splitlines()
    if max_lines is not None and len(lines) > max_lines:
        return "\n".join(lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"])
    return diff


@dataclass
class EnvironmentResult:
    """What one pass did (or would do) for one environment."""

    environment: str
    branch: str
    namespace: str
    phase: str  # Synced | OutOfSync | Failed
    reason: str  # machine-friendly, Flux-like: Synced, ValidationFailed, PolicyDenied, FetchFailed ...
    message: str  # for a person: what happened and what to do
    commit: str | None = None  # the commit applied in the namespace after this pass
    head: str | None = None  # the branch head seen in git
    plan: Plan = field(default_factory=Plan)
    problems: list[Problem] = field(default_factory=list)  # errors that failed the environment
    warnings: list[Problem] = field(default_factory=list)
    applied: bool = False  # whether the plan was carried out (False for diff)
    seconds: float = 0.0  # how long the environment's pass took

    @property
    def failed(self) -> bool:
        return self.phase == FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.environment, "branch": self.branch, "namespace": self.namespace,
            "commit": self.commit, "head": self.head, "phase": self.phase, "reason": self.reason,
            "message": self.message, "applied": self.applied, "plan": self.plan.to_dict(),
            "problems": [problem_dict(p) for p in self.problems],
            "warnings": [problem_dict(p) for p in self.warnings],
        }


def problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.filename, "line": p.line, "field": p.field, "message": p.message, "severity": p.severity}

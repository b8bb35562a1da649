"""Sync status and history, kept as `Environment` objects in the store (namespace reconciler-system).

Keeping them in the store lets the CLI, the daemon and its future HTTP API read the same truth.
Conditions follow Flux: a type, True/False, a reason a program can match and a message a person can
act on. History keeps the last HISTORY_LIMIT passes that did something or changed the outcome.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.limits import current as current_limits
from reconciler.limits import human
from reconciler.spec.repo_config import EnvironmentConfig
from reconciler.store.base import ObjectStore, now_timestamp
from reconciler.store.errors import AlreadyExists, Conflict, NotFound

from .model import (
    ENVIRONMENT_API,
    ENVIRONMENT_KIND,
    FAILED,
    MANAGED_BY,
    MANAGER,
    SYNCED,
    SYSTEM_NAMESPACE,
    EnvironmentResult,
    problem_dict,
)

log = logging.getLogger("reconciler.sync")

HISTORY_LIMIT = 20
SUBMITTED_LIMIT = 1000  # Workflow names remembered so a deleted run is not started again
MAX_DIFF_LINES = 200  # per change, in history (and at most limits.diff_bytes); `reconciler diff` shows it all
# A pass that changes nothing writes nothing, except lastSyncTime once this many seconds old, so
# an idle daemon does not rewrite every Environment on every poll.
HEARTBEAT_SECONDS = 300.0


@dataclass
class PriorState:
    """What the last passes left behind, needed to plan the next one."""

    applied_commit: str | None = None
    inventory: set[tuple[str, str, str]] = field(default_factory=set)
    submitted: set[str] = field(default_factory=set)
    status: dict = field(default_factory=dict)


def _key_text(key: tuple[str, str, str]) -> str:
    return "/".join(key)


def _key_of(text: str) -> tuple[str, str, str]:
    kind, ns, name = text.split("/", 2)
    return kind, ns, name


def read(store: ObjectStore, environment: str) -> dict | None:
    try:
        return store.get(ENVIRONMENT_KIND, SYSTEM_NAMESPACE, environment)
    except NotFound:
        return None


def list_environments(store: ObjectStore) -> list[dict]:
    return store.list(ENVIRONMENT_KIND, SYSTEM_NAMESPACE)


def prior_state(store: ObjectStore, environment: str) -> PriorState:
    obj = read(store, environment)
    if obj is None:
        return PriorState()
    status = obj.get("status") or {}
    return PriorState(
        applied_commit=status.get("appliedCommit"),
        inventory={_key_of(k) for k in status.get("inventory") or []},
        submitted=set(status.get("submittedWorkflows") or []),
        status=status,
    )


def _condition(kind: str, ok: bool, reason: str, message: str, previous: list[dict], now: str) -> dict:
    old = next((c for c in previous if c.get("type") == kind), None)
    status = "True" if ok else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def _history_entry(result: EnvironmentResult, now: str) -> dict[str, Any]:
    return {
        "time": now, "commit": result.commit, "head": result.head, "phase": result.phase,
        "reason": result.reason, "message": result.message, "drift": result.plan.drift,
        "plan": result.plan.to_dict(max_diff_lines=MAX_DIFF_LINES, max_diff_bytes=current_limits().diff_bytes),
    }


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _fit(status: dict, environment: str) -> None:
    """Keep the status under limits.environment_status_bytes: the oldest history entries give way
    first, then the diffs of the newest. Inventory and names of submitted runs are never cut (prune
    and run-once depend on them); they are bounded by the repository's own size."""
    limit = current_limits().environment_status_bytes
    history = status.get("history") or []
    while _size(status) > limit and len(history) > 1:
        history.pop(0)
    if history and _size(status) > limit:
        for change in (history[-1].get("plan") or {}).get("changes") or []:
            change["diff"] = "diff omitted: the Environment status is over its size limit"
    if _size(status) > limit:
        log.warning("Environment %s: status is %s, over the %s limit (limits.environmentStatusBytes), "
                    "even without history", environment, human(_size(status)), human(limit))


def _unchanged(old: dict, new: dict, now: str) -> bool:
    """Nothing but lastSyncTime differs, and that was written less than HEARTBEAT_SECONDS ago."""
    last = old.get("lastSyncTime")
    if not last or {**old, "lastSyncTime": None} != {**new, "lastSyncTime": None}:
        return False
    try:
        age = (datetime.fromisoformat(now.replace("Z", "+00:00"))
               - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return False
    return 0 <= age < HEARTBEAT_SECONDS


def record(store: ObjectStore, config: EnvironmentConfig, repo: str, result: EnvironmentResult, *,
           inventory: set[tuple[str, str, str]] | None, created_workflows: list[str], fetch_error: str = "",
           commit_info: dict | None = None) -> dict:
    """Write the outcome of a pass. `inventory` None keeps the previous one (nothing was applied)."""
    for _ in range(5):
        current = read(store, config.name)
        try:
            return _write(store, current, config, repo, result, inventory, created_workflows, fetch_error,
                          commit_info)
        except (Conflict, AlreadyExists):
            continue  # a concurrent `reconciler sync` wrote first: recompute on its version
    raise Conflict(f"Environment {config.name}: status kept changing under us")


def _write(store: ObjectStore, current: dict | None, config: EnvironmentConfig, repo: str,
           result: EnvironmentResult, inventory: set | None, created_workflows: list[str], fetch_error: str,
           commit_info: dict | None) -> dict:
    now = now_timestamp()
    old = copy.deepcopy((current or {}).get("status") or {})
    status = dict(old)
    if result.commit and result.commit != old.get("appliedCommit"):
        status["appliedAt"] = now
        status["appliedCommitInfo"] = commit_info or {}
    status.update(
        phase=result.phase, reason=result.reason, message=result.message,
        appliedCommit=result.commit, head=result.head, lastSyncTime=now,
        problems=[problem_dict(p) for p in result.problems[:50]],
        warnings=[problem_dict(p) for p in result.warnings[:50]],
    )
    source_message = fetch_error or f"fetched {repo}"
    conditions = old.get("conditions") or []
    status["conditions"] = [
        _condition("Ready", result.phase == SYNCED, result.reason, result.message, conditions, now),
        _condition("SourceAvailable", not fetch_error, "FetchFailed" if fetch_error else "Fetched",
                   source_message, conditions, now),
    ]
    if inventory is not None:
        status["inventory"] = sorted(_key_text(k) for k in inventory)
    if created_workflows:
        submitted = list(old.get("submittedWorkflows") or []) + created_workflows
        status["submittedWorkflows"] = list(dict.fromkeys(submitted))[-SUBMITTED_LIMIT:]
    if result.applied:
        status["driftCount"] = int(old.get("driftCount") or 0) + result.plan.drift
    status.setdefault("driftCount", 0)
    history = list(old.get("history") or [])
    last = history[-1] if history else {}
    changed_outcome = (last.get("phase"), last.get("reason"), last.get("head"), last.get("message")) != \
        (result.phase, result.reason, result.head, result.message)
    if (result.applied and not result.plan.empty) or changed_outcome:
        history.append(_history_entry(result, now))
    status["history"] = history[-HISTORY_LIMIT:]
    _fit(status, config.name)
    spec = {"branch": config.branch, "namespace": config.namespace, "path": config.path,
            "production": config.production, "repo": repo}
    if current is not None and current.get("spec") == spec and _unchanged(old, status, now):
        return current
    if current is None:
        return store.create({
            "apiVersion": ENVIRONMENT_API, "kind": ENVIRONMENT_KIND,
            "metadata": {"name": config.name, "namespace": SYSTEM_NAMESPACE, "labels": {MANAGED_BY: MANAGER}},
            "spec": spec, "status": status,
        })
    obj = copy.deepcopy(current)
    obj["spec"], obj["status"] = spec, status
    return store.update(obj)


def mark_out_of_sync(store: ObjectStore, result: EnvironmentResult) -> None:
    """A diff that found work flips a Synced environment to OutOfSync; it never writes history."""
    current = read(store, result.environment)
    if current is None or result.plan.empty or result.phase == FAILED:
        return
    status = current.get("status") or {}
    if status.get("phase") != SYNCED:
        return
    try:
        store.patch(ENVIRONMENT_KIND, SYSTEM_NAMESPACE, result.environment,
                    {"status": {"phase": result.phase, "reason": result.reason, "message": result.message}},
                    current["metadata"]["resourceVersion"], return_object=False)
    except (Conflict, NotFound):
        pass  # a sync got there first; its outcome is the better one


def summary(obj: dict) -> dict[str, Any]:
    """The per-environment line of `reconciler status -o json`."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "name": obj["metadata"]["name"], "branch": spec.get("branch"), "namespace": spec.get("namespace"),
        "commit": status.get("appliedCommit"), "head": status.get("head"),
        "phase": status.get("phase", "Unknown"), "reason": status.get("reason", ""),
        "message": status.get("message", ""), "appliedAt": status.get("appliedAt"),
        "lastSyncTime": status.get("lastSyncTime"), "driftCount": status.get("driftCount", 0),
        "problems": status.get("problems", []), "conditions": status.get("conditions", []),
    }

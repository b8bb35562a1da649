"""Sync status and history, kept as `Environment` objects in the store (namespace reconciler-system).

Keeping them in the store lets the CLI, the daemon and its future HTTP API read the same truth.
Conditions follow Flux: a type, True/False, a reason a program can match and a message a person can
act on. History keeps the last HISTORY_LIMIT passes that changed something (objects applied, or the
outcome: phase, reason, head or applied commit); the passes in between are only counted, on the
newest entry, so a quiet environment's history is not a wall of "no changes".

An environment can be suspended (`spec.suspend`, like Flux's): the sync loop and webhooks leave it
alone until it is resumed. The flag lives in the Environment object, so it survives restarts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

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

HISTORY_LIMIT = 20
SUBMITTED_LIMIT = 1000  # Workflow names remembered so a deleted run is not started again
MAX_DIFF_LINES = 200  # per change, in history; `reconciler diff` shows the full diff
MAX_REASON = 500  # a suspend reason is a note for people, not a document
HISTORY_WARNINGS = 20  # per history entry; status.warnings keeps up to 50 for the current commit
# What `suspend` writes into spec; a pass rewrites the rest of spec from reconciler.yaml and keeps these.
SUSPEND_FIELDS = ("suspend", "suspendedAt", "suspendReason")


@dataclass
class PriorState:
    """What the last passes left behind, needed to plan the next one."""

    applied_commit: str | None = None
    inventory: set[tuple[str, str, str]] = field(default_factory=set)
    submitted: set[str] = field(default_factory=set)
    status: dict = field(default_factory=dict)
    suspended: bool = False
    spec: dict = field(default_factory=dict)


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
    """Environment objects in reconciler.yaml's order (spec.order), then by name."""
    found = store.list(ENVIRONMENT_KIND, SYSTEM_NAMESPACE)
    return sorted(found, key=lambda e: (_order(e), e["metadata"]["name"]))


def _order(obj: dict) -> int:
    order = (obj.get("spec") or {}).get("order")
    return order if isinstance(order, int) and not isinstance(order, bool) else 1 << 30


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
        suspended=is_suspended(obj),
        spec=obj.get("spec") or {},
    )


def is_suspended(obj: dict) -> bool:
    return (obj.get("spec") or {}).get("suspend") is True


def set_suspended(store: ObjectStore, environment: str, suspended: bool, reason: str = "") -> dict:
    """Suspend or resume an environment's sync; NotFound if it was never synced. Returns the object."""
    if len(reason) > MAX_REASON:
        raise ValueError(f"reason is {len(reason)} characters; at most {MAX_REASON}")
    current = store.get(ENVIRONMENT_KIND, SYSTEM_NAMESPACE, environment)
    if suspended:
        spec = {"suspend": True, "suspendedAt": now_timestamp(), "suspendReason": reason or None}
        if is_suspended(current):  # suspending twice keeps the first time, so status says since when
            spec["suspendedAt"] = current["spec"].get("suspendedAt") or spec["suspendedAt"]
    else:
        spec = dict.fromkeys(SUSPEND_FIELDS)  # null removes the field (JSON merge patch)
    return store.patch(ENVIRONMENT_KIND, SYSTEM_NAMESPACE, environment, {"spec": spec})


def note_head(store: ObjectStore, environment: str, head: str | None) -> None:
    """A suspended environment's pass only records the branch head, so status can say git moved on."""
    current = read(store, environment)
    if current is None or (current.get("status") or {}).get("head") == head:
        return
    try:
        store.patch(ENVIRONMENT_KIND, SYSTEM_NAMESPACE, environment, {"status": {"head": head}},
                    current["metadata"]["resourceVersion"], return_object=False)
    except (Conflict, NotFound):
        pass  # someone else wrote it meanwhile; the next pass notes it again


def _condition(kind: str, ok: bool, reason: str, message: str, previous: list[dict], now: str) -> dict:
    old = next((c for c in previous if c.get("type") == kind), None)
    status = "True" if ok else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def _history_entry(result: EnvironmentResult, now: str, info: dict | None) -> dict[str, Any]:
    """One pass worth remembering; `info` describes the commit the entry is about (git's subject and author)."""
    info = info or {}
    return {
        "time": now, "commit": result.commit, "head": result.head, "phase": result.phase,
        "reason": result.reason, "message": result.message, "drift": result.plan.drift,
        "subject": info.get("message", ""), "author": info.get("author", ""),
        "warnings": [problem_dict(p) for p in result.warnings[:HISTORY_WARNINGS]],
        "plan": result.plan.to_dict(max_diff_lines=MAX_DIFF_LINES),
        "unchangedPasses": 0,
    }


def _outcome(entry: dict) -> tuple:
    # Not the message: it says "1 created" after an apply and "no changes" on the next pass, and that
    # difference is no news.
    return entry.get("phase"), entry.get("reason"), entry.get("head"), entry.get("commit")


def record(store: ObjectStore, config: EnvironmentConfig, repo: str, result: EnvironmentResult, *,
           inventory: set[tuple[str, str, str]] | None, created_workflows: list[str], fetch_error: str = "",
           commit_info: dict | None = None, head_info: dict | None = None, order: int | None = None) -> dict:
    """Write the outcome of a pass. `inventory` None keeps the previous one (nothing was applied).

    `commit_info`/`head_info`: subject and author of the applied commit and of the branch head; `order`:
    the environment's place in reconciler.yaml (None keeps the one recorded)."""
    for _ in range(5):
        current = read(store, config.name)
        try:
            return _write(store, current, config, repo, result, inventory, created_workflows, fetch_error,
                          commit_info, head_info, order)
        except (Conflict, AlreadyExists):
            continue  # a concurrent `reconciler sync` wrote first: recompute on its version
    raise Conflict(f"Environment {config.name}: status kept changing under us")


def _history(old: dict, result: EnvironmentResult, now: str, commit_info: dict | None,
             head_info: dict | None) -> list[dict]:
    history = [dict(e) for e in old.get("history") or []]
    last = history[-1] if history else {}
    changed = result.applied and not result.plan.empty
    if changed or not history or _outcome(last) != (result.phase, result.reason, result.head, result.commit):
        about = commit_info if changed or result.head == result.commit else head_info
        history.append(_history_entry(result, now, about))
    else:
        last["unchangedPasses"] = int(last.get("unchangedPasses") or 0) + 1
        last["lastUnchangedTime"] = now
    return history[-HISTORY_LIMIT:]


def _write(store: ObjectStore, current: dict | None, config: EnvironmentConfig, repo: str,
           result: EnvironmentResult, inventory: set | None, created_workflows: list[str], fetch_error: str,
           commit_info: dict | None, head_info: dict | None, order: int | None) -> dict:
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
    if result.applied and not result.plan.empty and result.commit:
        info = commit_info or {}
        status["lastChange"] = {"time": now, "commit": result.commit, "subject": info.get("message", ""),
                                "author": info.get("author", ""), "summary": result.plan.summary(done=True)}
    status["history"] = _history(old, result, now, commit_info, head_info)
    old_spec = (current or {}).get("spec") or {}
    spec = {"branch": config.branch, "namespace": config.namespace, "path": config.path,
            "production": config.production, "repo": repo}
    if order is None:
        order = old_spec.get("order")
    if order is not None:
        spec["order"] = order
    spec.update({k: old_spec[k] for k in SUSPEND_FIELDS if old_spec.get(k) is not None})
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
    commit, head = status.get("appliedCommit"), status.get("head")
    return {
        "name": obj["metadata"]["name"], "branch": spec.get("branch"), "namespace": spec.get("namespace"),
        "commit": commit, "head": head,
        # git has commits this environment does not run yet (rejected, pending, or suspended)
        "gitAhead": bool(head and head != commit),
        "phase": status.get("phase", "Unknown"), "reason": status.get("reason", ""),
        "message": status.get("message", ""), "appliedAt": status.get("appliedAt"),
        "lastSyncTime": status.get("lastSyncTime"), "driftCount": status.get("driftCount", 0),
        "suspended": is_suspended(obj), "suspendedAt": spec.get("suspendedAt"),
        "suspendReason": spec.get("suspendReason") or "",
        "lastChange": status.get("lastChange"),
        "problems": status.get("problems", []), "warnings": status.get("warnings", []),
        "conditions": status.get("conditions", []),
    }

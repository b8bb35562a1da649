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
MAX_REASON = 500  # a suspend reason is a note for people, not a document
HISTORY_WARNINGS = 20  # per history entry; status.warnings keeps up to 50 for the current commit
# What `suspend` writes into spec; a pass rewrites the rest of spec from reconciler.yaml and keeps these.
SUSPEND_FIELDS = ("suspend", "suspendedAt", "suspendReason")
# In the daemon, a pass that changes nothing writes nothing, unless lastSyncTime is this many seconds old:
# an idle daemon does not rewrite every Environment on every poll. Its unchanged passes are counted in
# memory meanwhile and added to the history at the next write (so the count lags by at most this long).
HEARTBEAT_SECONDS = 300.0
# Fields of the newest history entry that only count passes: they change on every pass, and alone are no news.
_COUNTERS = ("unchangedPasses", "lastUnchangedTime")


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
        "plan": result.plan.to_dict(max_diff_lines=MAX_DIFF_LINES, max_diff_bytes=current_limits().diff_bytes),
        "unchangedPasses": 0,
    }


def _outcome(entry: dict) -> tuple:
    # Not the message: it says "1 created" after an apply and "no changes" on the next pass, and that
    # difference is no news.
    return entry.get("phase"), entry.get("reason"), entry.get("head"), entry.get("commit")


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


def _without_counters(status: dict) -> dict:
    history = list(status.get("history") or [])
    if history:
        history[-1] = {k: v for k, v in history[-1].items() if k not in _COUNTERS}
    return {**status, "lastSyncTime": None, "history": history}


def _unchanged(old: dict, new: dict, now: str, quiet_seconds: float) -> bool:
    """Nothing but lastSyncTime and the pass counters differs, and lastSyncTime was written less than
    `quiet_seconds` ago."""
    last = old.get("lastSyncTime")
    if not last or _without_counters(old) != _without_counters(new):
        return False
    try:
        age = (datetime.fromisoformat(now.replace("Z", "+00:00"))
               - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return False
    return 0 <= age < quiet_seconds


def record(store: ObjectStore, config: EnvironmentConfig, repo: str, result: EnvironmentResult, *,
           inventory: set[tuple[str, str, str]] | None, created_workflows: list[str], fetch_error: str = "",
           commit_info: dict | None = None, head_info: dict | None = None, order: int | None = None,
           quiet_seconds: float = 0.0, pending: dict[str, int] | None = None) -> dict:
    """Write the outcome of a pass. `inventory` None keeps the previous one (nothing was applied).

    `commit_info`/`head_info`: subject and author of the applied commit and of the branch head; `order`:
    the environment's place in reconciler.yaml (None keeps the one recorded). `quiet_seconds` > 0 (the
    daemon): a pass that changes nothing but the counters is not written while lastSyncTime is younger
    than that; it is counted in `pending` (environment -> passes) and added at the next write."""
    pending = {} if pending is None else pending
    for _ in range(5):
        current = read(store, config.name)
        try:
            return _write(store, current, config, repo, result, inventory, created_workflows, fetch_error,
                          commit_info, head_info, order, quiet_seconds, pending)
        except (Conflict, AlreadyExists):
            continue  # a concurrent `reconciler sync` wrote first: recompute on its version
    raise Conflict(f"Environment {config.name}: status kept changing under us")


def _history(old: dict, result: EnvironmentResult, now: str, commit_info: dict | None,
             head_info: dict | None, unchanged: int = 1) -> list[dict]:
    history = [dict(e) for e in old.get("history") or []]
    last = history[-1] if history else {}
    changed = result.applied and not result.plan.empty
    if changed or not history or _outcome(last) != (result.phase, result.reason, result.head, result.commit):
        about = commit_info if changed or result.head == result.commit else head_info
        history.append(_history_entry(result, now, about))
    else:
        last["unchangedPasses"] = int(last.get("unchangedPasses") or 0) + unchanged
        last["lastUnchangedTime"] = now
    return history[-HISTORY_LIMIT:]


def _write(store: ObjectStore, current: dict | None, config: EnvironmentConfig, repo: str,
           result: EnvironmentResult, inventory: set | None, created_workflows: list[str], fetch_error: str,
           commit_info: dict | None, head_info: dict | None, order: int | None, quiet_seconds: float,
           pending: dict[str, int]) -> dict:
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
    status["history"] = _history(old, result, now, commit_info, head_info, 1 + pending.get(config.name, 0))
    old_spec = (current or {}).get("spec") or {}
    spec = {"branch": config.branch, "namespace": config.namespace, "path": config.path,
            "production": config.production, "repo": repo}
    if order is None:
        order = old_spec.get("order")
    if order is not None:
        spec["order"] = order
    spec.update({k: old_spec[k] for k in SUSPEND_FIELDS if old_spec.get(k) is not None})
    _fit(status, config.name)
    if current is not None and current.get("spec") == spec and quiet_seconds > 0 \
            and _unchanged(old, status, now, quiet_seconds):
        pending[config.name] = pending.get(config.name, 0) + 1  # counted at the next write
        return current
    if current is None:
        written = store.create({
            "apiVersion": ENVIRONMENT_API, "kind": ENVIRONMENT_KIND,
            "metadata": {"name": config.name, "namespace": SYSTEM_NAMESPACE, "labels": {MANAGED_BY: MANAGER}},
            "spec": spec, "status": status,
        })
    else:
        obj = copy.deepcopy(current)
        obj["spec"], obj["status"] = spec, status
        written = store.update(obj)
    pending.pop(config.name, None)  # now in the history
    return written


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

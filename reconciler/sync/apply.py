"""Apply: carry out a plan on the store, templates before the workflows that use them.

The store offers no multi-object transaction, so "all-or-nothing" is decided before this step (a
commit that fails to build applies nothing). If a store write fails half way, the pass reports it,
the environment keeps its previous applied commit, and the next pass finishes the job, since
every change is recomputed from git and the live objects.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from reconciler.engine.submission import SubmissionError, build_workflow, store_lookup
from reconciler.store.base import ObjectStore
from reconciler.store.errors import Conflict, NotFound, StoreError

from .content import FOREIGN_PREFIXES, with_override
from .model import MANAGER, OWN_PREFIX, SUSPEND_OVERRIDE, Change, Plan, is_managed

log = logging.getLogger("reconciler.sync")


@dataclass
class ApplyResult:
    done: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    created_workflows: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _new_workflow(store: ObjectStore, obj: dict) -> dict:
    # build_workflow resolves a workflowTemplateRef against the templates just applied. The runner
    # starts any Workflow without status.phase, so the object is created without one.
    wf = build_workflow(obj, namespace=obj["metadata"]["namespace"], lookup=store_lookup(store))
    status = wf.get("status") or {}
    status.pop("phase", None)
    if status:
        wf["status"] = status
    else:
        wf.pop("status", None)
    return wf


def _replacement(desired: dict, live: dict) -> dict:
    """The desired object in place of the live one, keeping what others own: status, identity,
    annotations controllers wrote, and a person's suspend override of a CronWorkflow."""
    obj = copy.deepcopy(with_override(desired, live))
    meta, live_meta = obj["metadata"], live["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        if key in live_meta:
            meta[key] = live_meta[key]
    kept = {k: v for k, v in (live_meta.get("annotations") or {}).items()
            if (k.startswith(FOREIGN_PREFIXES) and not k.startswith(OWN_PREFIX)) or k == SUSPEND_OVERRIDE}
    meta["annotations"] = {**kept, **(meta.get("annotations") or {})}
    if "status" in live:
        obj["status"] = live["status"]
    return obj


def _apply_one(store: ObjectStore, change: Change, result: ApplyResult) -> None:
    # On a cluster the API server merges (server-side apply as field manager "reconciler", as Flux
    # does): other writers' fields survive, and what we stop sending is removed.
    apply = getattr(store, "server_side_apply", None)
    if change.action == "create":
        assert change.desired is not None
        obj = change.desired.obj
        if change.kind == "Workflow":  # a run: created once, with the templates it refers to resolved
            obj = _new_workflow(store, obj)
            result.created_workflows.append(change.name)
        elif apply is not None:
            apply(obj, MANAGER)
            return
        store.create(copy.deepcopy(obj))
    elif change.action == "update":
        assert change.desired is not None and change.live is not None
        if apply is not None:
            # A person's suspend override stays (the override annotation is the cron command's own field).
            apply(with_override(change.desired.obj, change.live), MANAGER)
            return
        live = change.live
        for attempt in range(2):
            try:
                store.update(_replacement(change.desired.obj, live))
                break
            except Conflict:
                # Someone (the scheduler writing status) won the race; retry on the fresh object,
                # unless it stopped being ours meanwhile.
                live = store.get(change.kind, change.namespace, change.name)
                if attempt or not is_managed(live):
                    raise
    else:
        assert change.live is not None
        try:
            current = store.get(change.kind, change.namespace, change.name)
        except NotFound:
            return
        if is_managed(current):  # checked again right before deleting: never delete what is not ours
            store.delete(change.kind, change.namespace, change.name)


def apply_plan(store: ObjectStore, plan: Plan, *, environment: str, commit: str) -> ApplyResult:
    result = ApplyResult()
    for change in plan.changes:
        try:
            _apply_one(store, change, result)
        except (StoreError, SubmissionError) as exc:
            message = f"{change.action} {change.kind} {change.namespace}/{change.name}: {exc}"
            result.errors.append(message)
            log.error("apply failed: %s", message, extra={"environment": environment, "commit": commit})
            continue
        result.done.append(change)
        log.info("%s: %s", environment, change.line(), extra={"environment": environment, "commit": commit})
    return result

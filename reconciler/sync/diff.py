"""Diff: desired objects against the live objects we manage in an environment -> a Plan.

Live objects are found by our labels only; an object without them is never planned for update or
delete, and one in the way of a desired object is a conflict that fails the environment.
Change vs drift is told by the content hash: the annotation records what we applied, the live
content is hashed again, so "git changed" and "someone edited it" are different reasons.
"""

from __future__ import annotations

import difflib

from reconciler.ownership import adoption_hint
from reconciler.spec import Problem
from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

from .content import as_yaml, content_hash, overridden_hash, projected, recorded_hash, unoverridden_hashes
from .model import (
    ENVIRONMENT_LABEL,
    MANAGED_BY,
    SOURCE_PATH,
    SYNC_KINDS,
    Change,
    DesiredObject,
    Plan,
    is_managed,
    managed_selector,
)


def live_objects(store: ObjectStore, environment: str) -> dict[tuple[str, str, str], dict]:
    """Every object the reconciler manages for `environment`, in any namespace."""
    found = {}
    for kind in SYNC_KINDS:
        for obj in store.list(kind, None, labels=managed_selector(environment)):
            meta = obj["metadata"]
            found[(kind, meta.get("namespace", ""), meta["name"])] = obj
    return found


def unified(live: dict | None, desired: dict | None, name: str, live_name: str | None = None, *,
            before: str = "live", after: str = "git") -> str:
    """A unified diff of what git owns of two versions of an object, headed `before/name` and `after/name`
    (`live_name` when the old version had another name: an edited Workflow file's previous run)."""
    old, new = as_yaml(live).splitlines(), as_yaml(desired).splitlines()
    return "\n".join(difflib.unified_diff(old, new, f"{before}/{live_name or name}", f"{after}/{name}", lineterm="",
                                           n=2))


def _update(desired: DesiredObject, live: dict, merging: bool) -> Change | None:
    kind, ns, name = desired.key
    # Where the store merges on apply, other writers' extra fields are theirs to keep, not drift.
    actual = content_hash(projected(live, desired.obj) if merging else live)
    recorded = recorded_hash(live)
    if actual in (desired.content_hash, overridden_hash(desired.obj, live)):
        return None
    edited = recorded is not None and (recorded != actual if merging else recorded not in unoverridden_hashes(live))
    if recorded == desired.content_hash:
        reason, drift = "edited out of band", True
    elif edited:
        reason, drift = "changed in git (and edited out of band)", True
    else:
        reason, drift = "changed in git", False
    return Change("update", kind, ns, name, reason, desired.path, drift,
                  unified(live, desired.obj, f"{kind}/{name}"), desired, live)


def previous_run(live: dict[tuple[str, str, str], dict], want: DesiredObject) -> dict | None:
    """The newest run made from the same Workflow document (same file, same name stem): an edited
    file is shown as a diff against what it ran last, not as a whole new object."""
    stem = want.key[2].rsplit("-", 1)[0]
    runs = [obj for (kind, ns, name), obj in live.items()
            if kind == "Workflow" and ns == want.key[1] and name.rsplit("-", 1)[0] == stem
            and (obj["metadata"].get("annotations") or {}).get(SOURCE_PATH) == want.path]
    if not runs:
        return None
    return max(runs, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))


def plan(
    store: ObjectStore,
    environment: str,
    desired: list[DesiredObject],
    *,
    applied: set[tuple[str, str, str]] | frozenset = frozenset(),
    submitted: set[str] | frozenset = frozenset(),
) -> Plan:
    """What to create, update and delete so the environment matches `desired`.

    `applied`: keys of objects the last sync put in place, so a missing one is drift (deleted out of
    band) rather than new. `submitted`: Workflow names already created once, which are not created
    again even if someone deleted the run.
    """
    live = live_objects(store, environment)
    merging = getattr(store, "server_side_apply", None) is not None
    result = Plan()
    wanted = {d.key: d for d in desired}
    for key, want in wanted.items():
        kind, ns, name = key
        current = live.get(key)
        if current is not None:
            if kind == "Workflow":
                continue  # a run is never changed by git: new content means a new run
            change = _update(want, current, merging)
            if change:
                result.changes.append(change)
            continue
        if kind == "Workflow" and name in submitted:
            continue
        conflict = _conflict(store, want, environment)
        if conflict:
            result.conflicts.append(conflict)
            continue
        before = None
        if key in applied:
            reason, drift = "deleted out of band", True
        elif kind == "Workflow":
            before = previous_run(live, want)
            reason, drift = "new workflow content: runs once", False
            if before is not None:
                reason += f" (previous run {before['metadata']['name']})"
        else:
            reason, drift = "new in git", False
        before_name = f"{kind}/{before['metadata']['name']}" if before is not None else None
        result.changes.append(Change("create", kind, ns, name, reason, want.path, drift,
                                     unified(before, want.obj, f"{kind}/{name}", before_name), want, None))
    for key, current in live.items():
        kind, ns, name = key
        if key in wanted or kind == "Workflow":
            continue  # runs are history: pruning a file never deletes what already ran
        path = ((current["metadata"].get("annotations") or {}).get(SOURCE_PATH)) or ""
        result.changes.append(Change("delete", kind, ns, name, "file removed from git (prune)", path, False,
                                     unified(current, None, f"{kind}/{name}"), None, current))
    result.sort()
    return result


def _conflict(store: ObjectStore, want: DesiredObject, environment: str) -> Problem | None:
    kind, ns, name = want.key
    try:
        existing = store.get(kind, ns, name)
    except NotFound:
        return None
    if is_managed(existing):
        owner = (existing["metadata"].get("labels") or {}).get(ENVIRONMENT_LABEL)
        why = f"it is managed by environment {owner}"
        return Problem(want.path, want.line, "metadata.name",
                       f"{kind} {ns}/{name} already exists and {why}; rename one of them")
    return Problem(want.path, want.line, "metadata.name",
                   f"{kind} {ns}/{name} already exists and is not managed by the reconciler (no {MANAGED_BY} "
                   f"label), so it is never touched; {adoption_hint(kind, ns, name, environment)}")

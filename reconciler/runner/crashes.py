"""A workflow that keeps killing the daemon: counting the deaths, and failing a workflow in the store.

Argo has no status field for this, so the count lives in two annotations of the workflow:
`reconciler.io/driving` names the runner that has steps of it running (or is replaying it), written
in the same write that records a step as Running (the write the crash-safety rule makes before the
step starts anyway), and cleared in the write that finds no step running any more, or when a runner
lets the workflow go cleanly (SIGTERM). A runner that takes the workflow over and still finds another
runner's name there knows that runner died while driving it, and counts one death for each node that
was running then (or for the whole workflow, `*`, when none was) in `reconciler.io/daemon-deaths`.
At the limit (3 by default) the workflow is failed instead of being run again.
"""

from __future__ import annotations

import json
import logging

from reconciler.engine import nodes as N
from reconciler.runner import leases
from reconciler.store.base import ObjectStore
from reconciler.store.errors import Conflict, NotFound

log = logging.getLogger(__name__)

DRIVING = "reconciler.io/driving"
DEATHS = "reconciler.io/daemon-deaths"
WHOLE = "*"  # a death while no step was running: replaying, or engine work between steps
DEFAULT_MAX_DEATHS = 3
MESSAGE_LIMIT = 1024  # a failure message goes into the status: keep an exception's text bounded


def death_counts(obj: dict, identity: str) -> dict[str, int]:
    """The deaths recorded on `obj`, plus one if another runner was driving it when it stopped.

    Entries of nodes that have finished since are dropped: they ran to the end after all."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        recorded = json.loads(ann.get(DEATHS) or "{}")
    except ValueError:
        recorded = {}
    nodes = (obj.get("status") or {}).get("nodes") or {}
    counts = {}
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            alive = key == WHOLE or (isinstance(nodes.get(key), dict) and not N.is_fulfilled(nodes[key]))
            if alive and isinstance(value, int) and value > 0:
                counts[key] = value
    holder = ann.get(DRIVING)
    if holder and holder != identity:
        running = [nid for nid, node in nodes.items()
                   if isinstance(node, dict) and node.get("type") == N.POD and node.get("phase") == N.RUNNING]
        for key in running or [WHOLE]:
            counts[key] = counts.get(key, 0) + 1
    return counts


def deaths_annotation(counts: dict[str, int]) -> str | None:
    return json.dumps(counts, sort_keys=True, separators=(",", ":")) if counts else None


def over_limit(obj: dict, counts: dict[str, int], limit: int) -> tuple[str, dict[str, str]] | None:
    """(workflow message, node id -> message) when a count reached `limit`; None otherwise."""
    if limit <= 0:
        return None
    reached = sorted(key for key, count in counts.items() if count >= limit)
    if not reached:
        return None
    nodes = (obj.get("status") or {}).get("nodes") or {}
    node_message = f"the daemon stopped {limit} times while running this node"
    named = [key for key in reached if key != WHOLE]
    if not named:
        return f"the daemon stopped {limit} times while driving this workflow; not run again", {}
    names = ", ".join(str((nodes.get(key) or {}).get("displayName") or key) for key in named)
    return f"{names}: {node_message}; not run again", dict.fromkeys(named, node_message)


def released() -> dict:
    """The annotations that let a workflow go cleanly: no lease, nobody driving it."""
    return {**leases.released_annotations(), DRIVING: None}


def fail_in_store(store: ObjectStore, key: tuple[str, str], message: str, now: float, *,
                  node_messages: dict[str, str] | None = None, identity: str | None = None) -> bool:
    """Mark the stored workflow Error with `message`, and each unfinished node Error (with its own
    message from `node_messages`, else `message`); release it. Written without the engine, which
    may be what failed. Not done if another live runner (not `identity`) holds it. True if written."""
    message = message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT] + "..."
    stamp = N.now_rfc3339(now)
    for _ in range(5):
        try:
            obj = store.get("Workflow", *key)
        except NotFound:
            return False
        holder = leases.lease_of(obj)[0]
        if identity is not None and holder and holder != identity and not leases.claimable(obj, identity, now):
            return False
        status = obj.get("status") or {}
        nodes = {}
        for node_id, node in (status.get("nodes") or {}).items():
            if isinstance(node, dict) and not N.is_fulfilled(node):
                nodes[node_id] = {"phase": N.ERROR, "message": (node_messages or {}).get(node_id, message),
                                  "finishedAt": stamp, "finishedAtUnix": now}
        patch = {"status": {"phase": N.ERROR, "message": message, "finishedAt": stamp, "finishedAtUnix": now,
                            "nodes": nodes},
                 "metadata": {"annotations": {**released(), DEATHS: None}}}
        if not status.get("startedAt"):
            patch["status"].update(startedAt=stamp, startedAtUnix=now)
        try:
            store.patch("Workflow", *key, patch, resource_version=obj["metadata"]["resourceVersion"],
                        return_object=False)
            return True
        except Conflict:
            continue
        except NotFound:
            return False
    log.error("workflow %s/%s: could not record the failure (kept changing): %s", *key, message)
    return False

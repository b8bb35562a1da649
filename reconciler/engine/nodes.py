"""Node status records shaped like Argo's `status.nodes` entries, and the rules about phases."""

from __future__ import annotations

import time
from datetime import datetime, timezone

# Node types, as Argo names them.
POD = "Pod"
STEPS = "Steps"
STEP_GROUP = "StepGroup"
DAG = "DAG"
TASK_GROUP = "TaskGroup"
RETRY = "Retry"
SKIPPED = "Skipped"
SUSPEND = "Suspend"

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
ERROR = "Error"
SKIPPED_PHASE = "Skipped"
OMITTED = "Omitted"

FULFILLED = frozenset({SUCCEEDED, FAILED, ERROR, SKIPPED_PHASE, OMITTED})
COMPLETED = frozenset({SUCCEEDED, FAILED, ERROR, SKIPPED_PHASE})
FAILED_OR_ERROR = frozenset({FAILED, ERROR})


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else `<wf>-<fnv32a(name)>`."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{fnv32a(node_name)}"


def now_rfc3339(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def new_node(
    wf_name: str,
    name: str,
    display_name: str,
    node_type: str,
    *,
    template_name: str | None,
    template_scope: str,
    boundary_id: str | None,
    phase: str,
    now: float,
    message: str = "",
) -> dict:
    node = {
        "id": node_id(wf_name, name),
        "name": name,
        "displayName": display_name,
        "type": node_type,
        "templateScope": template_scope,
        "phase": phase,
        "startedAt": now_rfc3339(now),
        "startedAtUnix": now,
    }
    if template_name:
        node["templateName"] = template_name
    if boundary_id:
        node["boundaryID"] = boundary_id
    if message:
        node["message"] = message
    if phase in FULFILLED:
        node["finishedAt"] = node["startedAt"]
        node["finishedAtUnix"] = now
    return node


def outbound_nodes(nodes: dict[str, dict], node_id: str) -> list[str]:
    """Argo's getOutboundNodes: the nodes a DAG task's dependents hang off (as their `children`).

    A Pod, Skipped or Suspend node is its own outbound node; a TaskGroup's are its items' (itself
    when it has none); a Retry node's is its last attempt; a Steps or DAG node's are the ones it
    recorded in `outboundNodes` when it completed, followed down to Pods."""
    node = nodes[node_id]
    kind = node["type"]
    if kind in (POD, SKIPPED, SUSPEND):
        return [node_id]
    kids = node.get("children") or []
    if kind == TASK_GROUP:
        if not kids:
            return [node_id]
        return [out for kid in kids for out in outbound_nodes(nodes, kid)]
    if kind == RETRY and kids:
        return [kids[-1]]
    out: list[str] = []
    for target in node.get("outboundNodes") or []:
        if nodes[target]["type"] == POD:
            out.append(target)
        else:
            out.extend(outbound_nodes(nodes, target))
    return out


def is_fulfilled(node: dict) -> bool:
    return node["phase"] in FULFILLED


def continues_on(continue_on: dict | None, phase: str) -> bool:
    if not continue_on:
        return False
    return bool((continue_on.get("error") and phase == ERROR) or (continue_on.get("failed") and phase == FAILED))


def duration_seconds(node: dict, now: float) -> float:
    start = node.get("startedAtUnix") or now
    end = node.get("finishedAtUnix") or now
    return max(0.0, end - start)


def failure_message(node: dict) -> str:
    """How a parent says which child failed and why, so the cause reaches the workflow's message."""
    cause = node.get("message") or node["phase"]
    return f"child '{node['displayName']}' failed: {cause}"

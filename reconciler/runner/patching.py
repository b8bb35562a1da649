"""The write the runner makes after each turn: a JSON merge patch of what changed, so persisting a
step of a 10,000-node workflow costs the size of the change, not of the workflow."""

from __future__ import annotations

from reconciler.engine.operator import Operator


def status_patch(op: Operator) -> dict:
    """The merge patch that persists what changed in `op`: the status fields (a field the engine
    dropped is sent as null) and only the nodes marked dirty."""
    status = {k: v for k, v in op.status.items() if k != "nodes"}
    for gone in getattr(op, "_flushed_keys", set()) - set(status) - {"nodes"}:
        status[gone] = None  # merge patch: a key the engine removed must be removed
    op._flushed_keys = set(status)
    nodes = {}
    for node_id in op.dirty:
        node = dict(op.nodes[node_id])
        node.setdefault("message", None)
        nodes[node_id] = node
    status["nodes"] = nodes
    return {"status": status}

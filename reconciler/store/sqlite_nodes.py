"""The `nodes` side table of the SQLite backend, and the JSON codec both modules share.

The engine patches a few nodes of workflows that have 10,000+ of them, after every batch of changes;
each such patch must cost the size of the patch, not of the workflow. So the entries of a dict-valued
`status.nodes` are stored one row each, and the object's body keeps an empty `{}` placeholder where
they go (so a dict placeholder in a stored body always means "the entries are in the side table").
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .errors import StoreError
from .merging import merge_patch

MISSING = object()  # "the patch does not mention status.nodes", as distinct from null

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(value: Any) -> str:
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"object is not plain JSON: {exc}") from exc


def copy_json(value: Any) -> Any:
    # A JSON round trip is both the cheapest deep copy and the check that the value can be stored.
    return json.loads(dumps(value))


def side_nodes(obj: dict) -> dict | None:
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("nodes"), dict):
        return status["nodes"]
    return None


def split(obj: dict) -> tuple[str, dict | None]:
    """The body to store in `objects` and the nodes that go to the side table (None: no side rows)."""
    nodes = side_nodes(obj)
    if nodes is None:
        return dumps(obj), None
    return dumps({**obj, "status": {**obj["status"], "nodes": {}}}), nodes


def assemble(conn: sqlite3.Connection, oid: int, obj: dict) -> dict:
    """Fill the placeholder of a stored body `obj` (in place) from the side table."""
    if side_nodes(obj) is not None:
        rows = conn.execute("SELECT node_id, body FROM nodes WHERE object_id = ? ORDER BY seq", (oid,))
        # One json.loads over the joined rows is several times faster than one call per node.
        text = ",".join(_encode(node_id) + ":" + body for node_id, body in rows)
        obj["status"]["nodes"] = json.loads("{" + text + "}")
    return obj


def insert_nodes(conn: sqlite3.Connection, oid: int, nodes: dict) -> int:
    conn.executemany(
        "INSERT INTO nodes (object_id, node_id, seq, body) VALUES (?, ?, ?, ?)",
        ((oid, nid, seq, dumps(node)) for seq, (nid, node) in enumerate(nodes.items())),
    )
    return len(nodes)


def replace_nodes(conn: sqlite3.Connection, oid: int, node_seq: int, nodes: dict | None) -> int:
    """Make the side rows equal `nodes` for a whole-object update, writing only the rows that differ.

    `node_seq` is the object's next free position (positions keep dict insertion order); the new one is
    returned.
    """
    if nodes is None:
        conn.execute("DELETE FROM nodes WHERE object_id = ?", (oid,))
        return node_seq
    stored = dict(conn.execute("SELECT node_id, body FROM nodes WHERE object_id = ?", (oid,)))
    inserts, updates = [], []
    for nid, node in nodes.items():
        text = dumps(node)
        if nid not in stored:
            inserts.append((oid, nid, node_seq, text))
            node_seq += 1
        elif stored[nid] != text:
            updates.append((text, oid, nid))
    removed = [(oid, nid) for nid in stored.keys() - nodes.keys()]
    conn.executemany("DELETE FROM nodes WHERE object_id = ? AND node_id = ?", removed)
    conn.executemany("UPDATE nodes SET body = ? WHERE object_id = ? AND node_id = ?", updates)
    conn.executemany("INSERT INTO nodes (object_id, node_id, seq, body) VALUES (?, ?, ?, ?)", inserts)
    return node_seq


def patch_nodes(
    conn: sqlite3.Connection, oid: int, node_seq: int, stored: dict, new: dict, node_patch: Any
) -> int:
    """Apply the status.nodes part of a merge patch (MISSING if it had none) to the side rows.

    `stored` is the body before the patch, `new` the body with the rest of the patch merged in; its
    placeholder is set here. Costs one or two statements per patched node, whatever the node count.
    """
    had_rows = side_nodes(stored) is not None
    if node_patch is MISSING:
        if had_rows and side_nodes(new) is None:  # status replaced or removed wholesale
            conn.execute("DELETE FROM nodes WHERE object_id = ?", (oid,))
        return node_seq
    if not isinstance(node_patch, dict):  # null deletes the nodes; a list or scalar replaces them
        conn.execute("DELETE FROM nodes WHERE object_id = ?", (oid,))
        if node_patch is None:
            new["status"].pop("nodes", None)
        else:
            new["status"]["nodes"] = node_patch
        return node_seq
    new["status"]["nodes"] = {}
    for nid, change in node_patch.items():
        # Always look: the body's placeholder says nothing reliable about rows written before.
        row = conn.execute("SELECT body FROM nodes WHERE object_id = ? AND node_id = ?", (oid, nid)).fetchone()
        if change is None:
            if row is not None:
                conn.execute("DELETE FROM nodes WHERE object_id = ? AND node_id = ?", (oid, nid))
            continue
        old = json.loads(row[0]) if row is not None and isinstance(change, dict) else None
        text = dumps(merge_patch(old, change, share_patch=True))
        if row is None:
            conn.execute("INSERT INTO nodes VALUES (?, ?, ?, ?)", (oid, nid, node_seq, text))
            node_seq += 1
        else:
            conn.execute("UPDATE nodes SET body = ? WHERE object_id = ? AND node_id = ?", (text, oid, nid))
    return node_seq

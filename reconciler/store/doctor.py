"""Checking a SQLite store file, copying what can be read out of a damaged one, backups.

Everything here works on the file with plain `sqlite3` connections, never through `SqliteStore`,
which refuses a damaged file and would write its schema into whatever it opens. Recovering and
restoring never delete anything: the file they replace is kept beside the new one under a
timestamped name (`store.db.damaged-20260101T000000Z`, `store.db.replaced-...`), with its WAL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DamagedStore, StoreError
from .sqlite import SCHEMA_VERSION, SqliteStore
from .sqlite_errors import classify, header_problem

MAX_PROBLEMS = 50          # a report names at most this many problems, then counts the rest
MAX_SKIPS = 100_000        # recover: unreadable object ids stepped over before giving up on the table
_TABLES = ("meta", "objects", "nodes", "events")
_SIDE_FILES = ("-wal", "-shm")


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    more: int = 0              # problems found beyond MAX_PROBLEMS
    objects: int = 0           # rows read and valid
    nodes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more += 1


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(os.fspath(path), timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def check(path: Path) -> Report:
    """Everything that can be checked without writing: the header, SQLite's integrity check, the
    schema and its version, and every row (JSON that parses, objects whose key columns match)."""
    report = Report(Path(path))
    if not report.path.is_file():
        report.add(f"{path}: no such file")
        return report
    problem = header_problem(os.fspath(path))
    if problem:
        report.add(f"{path}: {problem}")
        return report
    try:
        conn = _connect(report.path)
    except sqlite3.Error as exc:
        report.add(f"{path}: cannot open: {exc}")
        return report
    try:
        _check(conn, report)
    except sqlite3.Error as exc:
        report.add(f"{path}: {exc}")
    finally:
        conn.close()
    return report


def _check(conn: sqlite3.Connection, report: Report) -> None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check(100)")]
    if rows != ["ok"]:
        for row in rows:
            report.add(f"integrity: {row}")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in _TABLES if t not in tables]
    if missing:
        report.add(f"schema: table(s) missing: {', '.join(missing)} (not a reconciler store?)")
        return
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:  # absent: written before versions were kept
        report.add(f"schema: version {meta['schema']}, this reconciler reads version {SCHEMA_VERSION}")
    for key in ("rv", "compacted"):
        if not isinstance(meta.get(key), int):
            report.add(f"meta: {key} is missing or not a number")
    ids = set()
    for oid, kind, ns, name, rv, body in conn.execute("SELECT id, kind, namespace, name, rv, body FROM objects"):
        problem = object_problem(kind, ns, name, rv, body)
        if problem:
            report.add(f"object {kind} {ns}/{name} (row {oid}): {problem}")
        else:
            ids.add(oid)
            report.objects += 1
    for oid, node_id, body in conn.execute("SELECT object_id, node_id, body FROM nodes"):
        problem = node_problem(node_id, body)
        if problem is None and oid not in ids:
            problem = "belongs to no readable object"
        if problem:
            report.add(f"node {node_id} of object row {oid}: {problem}")
        else:
            report.nodes += 1
    for rv, body in conn.execute("SELECT rv, body FROM events WHERE body IS NOT NULL"):
        try:
            json.loads(body)
        except (ValueError, TypeError) as exc:
            report.add(f"event {rv}: not JSON: {exc}")


def object_problem(kind: str, namespace: str, name: str, rv: int, body: str) -> str | None:
    """Why an `objects` row is not a valid stored object, or None."""
    try:
        obj = json.loads(body)
    except (ValueError, TypeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        return "not an object with metadata"
    meta = obj["metadata"]
    if obj.get("kind") != kind or meta.get("name") != name or meta.get("namespace", "") != namespace:
        return f"its body says {obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
    if not obj.get("apiVersion"):
        return "no apiVersion"
    if str(meta.get("resourceVersion")) != str(rv):
        return f"resourceVersion {meta.get('resourceVersion')!r} but the row is at {rv}"
    for part in ("spec", "status"):
        if part in obj and obj[part] is not None and not isinstance(obj[part], dict):
            return f"{part} is not a mapping"
    return None


def node_problem(node_id: str, body: str) -> str | None:
    try:
        node = json.loads(body)
    except (ValueError, TypeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(node, dict):
        return "not a mapping"
    if node.get("id", node_id) != node_id:
        return f"its body says id {node.get('id')!r}"
    return None


# ---- recovering -------------------------------------------------------------------------------------

@dataclass
class Recovery:
    store: Path
    kept: Path                 # the damaged file, moved aside
    objects: int = 0
    nodes: int = 0
    skipped: list[str] = field(default_factory=list)


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _move_aside(path: Path, label: str) -> Path:
    """Rename the store and its WAL files to `<name>.<label>-<time>` (the WAL stays paired with it)."""
    target = path.with_name(f"{path.name}.{label}-{_stamp()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{label}-{_stamp()}-{n}")
    for suffix in _SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.replace(side, f"{target}{suffix}")
    if path.exists():
        os.replace(path, target)
    return target


def _readable_objects(conn: sqlite3.Connection, recovery: Recovery) -> list[tuple]:
    """Every `objects` row that can be read and is valid, stepping over the ones that cannot."""
    out, last, skips = [], -1, 0
    sql = "SELECT id, kind, namespace, name, rv, node_seq, body FROM objects WHERE id > ? ORDER BY id LIMIT 1"
    while skips < MAX_SKIPS:
        try:
            row = conn.execute(sql, (last,)).fetchone()
        except sqlite3.Error as exc:
            skips += 1
            last += 1
            if skips == 1 or skips % 1000 == 0:
                recovery.skipped.append(f"objects after row {last - 1}: {exc}")
            continue
        if row is None:
            break
        last = row[0]
        problem = object_problem(row[1], row[2], row[3], row[4], row[6])
        if problem:
            recovery.skipped.append(f"object {row[1]} {row[2]}/{row[3]}: {problem}")
            continue
        out.append(row)
    return out


def recover(path: Path) -> Recovery:
    """Copy every readable, valid object (and its nodes) of the store at `path` into a new store put
    in its place; the damaged file is kept beside it. Change history (watch events) is not copied:
    the new store starts its history after the highest version recovered."""
    path = Path(path)
    fresh = path.with_name(f"{path.name}.recovering-{_stamp()}")
    SqliteStore(fresh).close()  # the current schema, empty
    rows, nodes, max_rv = [], {}, 0
    recovery = Recovery(store=path, kept=path)
    if path.is_file() and not (header_problem(os.fspath(path)) or "").startswith("not an SQLite"):
        try:
            conn = _connect(path)
            try:
                rows = _readable_objects(conn, recovery)
                for row in rows:
                    nodes[row[0]] = _readable_nodes(conn, row, recovery)
                try:
                    max_rv = int(conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()[0])
                except (sqlite3.Error, TypeError, ValueError):
                    max_rv = 0
            finally:
                conn.close()
        except sqlite3.Error as exc:
            recovery.skipped.append(f"{path}: {exc}")
    max_rv = max([max_rv, *(row[4] for row in rows)])
    out = _connect(fresh)
    try:
        out.execute("BEGIN IMMEDIATE")
        out.executemany("INSERT INTO objects (id, kind, namespace, name, rv, node_seq, body) VALUES (?,?,?,?,?,?,?)",
                        rows)
        for oid, side in nodes.items():
            out.executemany("INSERT INTO nodes (object_id, node_id, seq, body) VALUES (?,?,?,?)",
                            [(oid, *n) for n in side])
        # Watchers of the old store resume from a version this store has no events for: they relist.
        out.execute("UPDATE meta SET value = ? WHERE key IN ('rv', 'compacted')", (max_rv,))
        out.execute("COMMIT")
    finally:
        out.close()
    recovery.objects = len(rows)
    recovery.nodes = sum(len(side) for side in nodes.values())
    recovery.kept = _move_aside(path, "damaged")
    _move_into_place(fresh, path)
    return recovery


def _readable_nodes(conn: sqlite3.Connection, row: tuple, recovery: Recovery) -> list[tuple]:
    try:
        side = conn.execute("SELECT node_id, seq, body FROM nodes WHERE object_id = ?", (row[0],)).fetchall()
    except sqlite3.Error as exc:
        recovery.skipped.append(f"nodes of {row[1]} {row[2]}/{row[3]}: {exc}")
        return []
    good = []
    for node_id, seq, body in side:
        problem = node_problem(node_id, body)
        if problem:
            recovery.skipped.append(f"node {node_id} of {row[1]} {row[2]}/{row[3]}: {problem}")
        else:
            good.append((node_id, seq, body))
    return good


def _move_into_place(source: Path, path: Path) -> None:
    for suffix in _SIDE_FILES:
        side = Path(f"{source}{suffix}")
        if side.exists():
            side.unlink()  # closed cleanly: everything is in the main file
    os.replace(source, path)


# ---- backups ----------------------------------------------------------------------------------------

def backup(path: Path, dest: Path) -> None:
    """A consistent copy of the store at `path` in `dest`, taken with SQLite's online backup API
    (safe while a daemon writes to it)."""
    dest = Path(dest)
    if dest.exists():
        raise StoreError(f"{dest}: already exists; choose a new name")
    problem = header_problem(os.fspath(path))
    if problem:
        raise DamagedStore(os.fspath(path), problem)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # a backup holds everything
    try:
        src = _connect(Path(path))
        try:
            dst = sqlite3.connect(os.fspath(partial))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise classify(exc, os.fspath(path)) from exc
    os.replace(partial, dest)


def restore(path: Path, source: Path) -> Path | None:
    """Put the backup `source` in place of the store at `path`, which is kept beside it (returned;
    None if there was none). Refused (StoreError) when the backup itself does not check out."""
    report = check(Path(source))
    if not report.ok:
        raise StoreError(f"{source}: not a good backup: {report.problems[0]}")
    path = Path(path)
    staged = path.with_name(f"{path.name}.restoring-{_stamp()}")
    backup(Path(source), staged)
    kept = _move_aside(path, "replaced") if path.exists() else None
    _move_into_place(staged, path)
    return kept

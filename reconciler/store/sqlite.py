"""The embedded backend: one SQLite file in WAL mode, safe for threads and for several processes.

Layout: `objects` holds each object as JSON, except the entries of a dict-valued `status.nodes`, which
live one row each in `nodes` (sqlite_nodes.py says why). `events` records (rv, type, key) per write so
watchers in any process can poll it; only a DELETED event keeps a body, since afterwards the object
cannot be read back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .base import (
    Change,
    ObjectStore,
    check_meta,
    check_new_object,
    generated_name,
    labels_match,
    normalize_namespace,
    now_timestamp,
    object_key,
    parse_since,
    poll_watch,
    raise_if_stale,
)
from .errors import AlreadyExists, Conflict, DamagedStore, NotFound, StoreError
from .merging import merge_patch
from .sqlite_errors import classify, header_problem, opened_here, retrying
from .sqlite_nodes import (
    MISSING,
    assemble,
    copy_json,
    dumps,
    insert_nodes,
    patch_nodes,
    replace_nodes,
    split,
)

POLL_INTERVAL = 0.05
EVENT_RETENTION = 10_000
_COMPACT_EVERY = 64  # compaction is a range delete; amortise it instead of paying it on every write
_WATCH_BATCH = 256
_GENERATE_ATTEMPTS = 20

SCHEMA_VERSION = 1  # meta 'schema': the layout below; `reconciler doctor` checks it
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS objects (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        rv INTEGER NOT NULL, node_seq INTEGER NOT NULL, body TEXT NOT NULL,
        UNIQUE (kind, namespace, name))""",
    # seq keeps the nodes in insertion order, as a dict would; node_seq on the object hands them out.
    """CREATE TABLE IF NOT EXISTS nodes (
        object_id INTEGER NOT NULL, node_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (object_id, node_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS events (
        rv INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL,
        name TEXT NOT NULL, body TEXT)""",
    "INSERT OR IGNORE INTO meta VALUES ('rv', 0), ('compacted', 0)",
    f"INSERT OR IGNORE INTO meta VALUES ('schema', {SCHEMA_VERSION})",
)

class SqliteStore(ObjectStore):
    """ObjectStore on one SQLite file; `path` ":memory:" gives a private in-memory database."""

    def __init__(self, path: str | os.PathLike, *, event_retention: int = EVENT_RETENTION,
                 busy_timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._retention = event_retention
        self._busy_timeout = busy_timeout
        if self._path != ":memory:":
            problem = header_problem(self._path, first_open=True)
            if problem:
                raise DamagedStore(self._path, problem)
        # One connection behind a lock: SQLite serialises writers anyway, and a single connection is
        # the only way ":memory:" works across threads.
        self._lock = threading.RLock()
        self._changed = threading.Condition()
        self._writes = 0
        self._closed = False
        self._pid = os.getpid()
        self._conn = retrying(self._connect)()
        if self._path != ":memory:":
            opened_here(self._path)
        # object id -> (rv, parsed body, JSON text of its spec): a status patch then neither parses
        # nor re-encodes a large spec (a 10,000-task DAG) on every engine round.
        self._bodies: dict[int, tuple[int, dict, str | None]] = {}

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise classify(exc, self._path) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if self._path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit is atomic and survives a process crash; only an OS crash may lose
            # the last commits, never half of one.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            conn.close()
            raise classify(exc, self._path) from exc
        return conn

    @contextmanager
    def _txn(self, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            if self._pid != os.getpid():
                # A connection must not cross fork(); the child quietly gets its own.
                self._pid, self._conn = os.getpid(), self._connect()
            conn = self._conn
            try:
                if conn.in_transaction:  # left open by an operation cut short (its ROLLBACK failed too)
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise classify(exc, self._path) from exc
            except json.JSONDecodeError as exc:  # only the store writes these rows: a bad one is damage
                raise DamagedStore(self._path, f"a stored row is not JSON: {exc}") from exc
        if write:
            with self._changed:
                self._writes += 1
                self._changed.notify_all()

    # -- reads ---------------------------------------------------------------------------------

    @retrying
    def get(self, kind: str, namespace: str, name: str) -> dict:
        with self._txn(write=False) as conn:
            row = self._row(conn, kind, normalize_namespace(kind, namespace), name)
            return assemble(conn, row[0], json.loads(row[3]))

    @retrying
    def list(
        self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict]:
        with self._txn(write=False) as conn:
            rows = self._select(conn, "id, body", kind, namespace)
            objs = ((oid, json.loads(body)) for oid, body in rows)
            # Filter before fetching nodes: the side rows are the expensive part.
            return [assemble(conn, oid, obj) for oid, obj in objs if labels_match(obj, labels)]

    @retrying
    def list_brief(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self._txn(write=False) as conn:
            rows = self._select(conn, "body", kind, namespace)
        out = []
        for (body,) in rows:
            obj = json.loads(body)
            if isinstance(obj.get("status"), dict):
                obj["status"].pop("nodes", None)  # the side-table placeholder
            out.append(obj)
        return out

    @retrying
    def changes(self, since: str | None, kind: str | None = None) -> tuple[list[Change], str]:
        with self._txn(write=False) as conn:
            current, compacted = self._counters(conn)
            start = parse_since(since)
            if start is None:
                return [], str(current)
            self._check_not_compacted(start, compacted)
            sql, args = "SELECT rv, type, kind, namespace, name FROM events WHERE rv > ?", [start]
            if kind is not None:
                sql, args = sql + " AND kind = ?", args + [kind]
            rows = conn.execute(sql + " AND rv <= ? ORDER BY rv", args + [current]).fetchall()
        return [Change(t, k, ns, n, str(rv)) for rv, t, k, ns, n in rows], str(current)

    @retrying
    def current_version(self) -> str:
        with self._txn(write=False) as conn:
            return str(self._counters(conn)[0])

    @staticmethod
    def _select(conn: sqlite3.Connection, columns: str, kind: str, namespace: str | None) -> list[tuple]:
        """`columns` of every object of `kind` (in `namespace`, or all), in list() order."""
        sql, args = f"SELECT {columns} FROM objects WHERE kind = ?", [kind]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(normalize_namespace(kind, namespace))
        return conn.execute(sql + " ORDER BY namespace, name", args).fetchall()

    @staticmethod
    def _row(conn: sqlite3.Connection, kind: str, namespace: str, name: str) -> tuple:
        row = conn.execute(
            "SELECT id, rv, node_seq, body FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
            (kind, namespace, name),
        ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {namespace}/{name} not found" if namespace else f"{kind} {name} not found")
        return row

    # -- writes --------------------------------------------------------------------------------

    @retrying
    def create(self, obj: dict) -> dict:
        check_new_object(obj)
        obj = copy_json(obj)
        kind = obj["kind"]
        meta = obj["metadata"] = {"name": obj["metadata"].get("name"), **obj["metadata"]}  # name first
        namespace = meta["namespace"] = normalize_namespace(kind, meta.get("namespace"))
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_timestamp(), generation=1)
        fixed_name = meta.get("name") or None
        with self._txn(write=True) as conn:
            rv = self._next_rv(conn)
            meta["resourceVersion"] = str(rv)
            for _ in range(1 if fixed_name else _GENERATE_ATTEMPTS):
                meta["name"] = fixed_name or generated_name(meta["generateName"])
                body, nodes = split(obj)
                try:
                    oid = conn.execute(
                        "INSERT INTO objects (kind, namespace, name, rv, node_seq, body)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, namespace, meta["name"], rv, len(nodes or ()), body),
                    ).lastrowid
                    break
                except sqlite3.IntegrityError:
                    continue
            else:
                raise AlreadyExists(f"{kind} {namespace}/{meta['name']} already exists")
            if nodes:
                insert_nodes(conn, oid, nodes)
            self._record(conn, rv, "ADDED", kind, namespace, meta["name"])
        return obj

    @retrying
    def update(self, obj: dict) -> dict:
        kind, namespace, name = object_key(obj)
        check_meta(kind, obj["metadata"], identity=False)
        obj = copy_json(obj)
        with self._txn(write=True) as conn:
            oid, stored_rv, node_seq, body = self._row(conn, kind, namespace, name)
            raise_if_stale(kind, namespace, name, stored_rv, obj["metadata"].get("resourceVersion"))
            rv = self._stamp(conn, obj, json.loads(body))
            body, nodes = split(obj)
            self._save(conn, oid, rv, replace_nodes(conn, oid, node_seq, nodes), body, obj)
        return obj

    @retrying
    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict,
        resource_version: str | None = None,
        *,
        return_object: bool = True,
    ) -> dict:
        if not isinstance(patch, dict):
            raise StoreError("a merge patch must be a mapping")
        patch = copy_json(patch)
        namespace = normalize_namespace(kind, namespace)
        patch_meta = patch.get("metadata")
        if resource_version is None and isinstance(patch_meta, dict):
            # Kubernetes treats metadata.resourceVersion inside a merge patch as a precondition too.
            resource_version = patch_meta.get("resourceVersion")
        status_patch = patch.get("status")
        node_patch = status_patch.pop("nodes", MISSING) if isinstance(status_patch, dict) else MISSING
        with self._txn(write=True) as conn:
            oid, stored_rv, node_seq, body = self._row(conn, kind, namespace, name)
            raise_if_stale(kind, namespace, name, stored_rv, resource_version)
            cached = self._bodies.get(oid)
            if cached is not None and cached[0] == stored_rv:
                stored, spec_text = cached[1], cached[2]  # merge_patch never modifies its target
            else:
                stored, spec_text = json.loads(body), None
            new = merge_patch(stored, patch, share_patch=True)  # `patch` is our own copy
            new["metadata"] = dict(new["metadata"]) if isinstance(new.get("metadata"), dict) else {}
            new.setdefault("apiVersion", stored["apiVersion"])
            if isinstance(patch_meta, dict) and ("labels" in patch_meta or "annotations" in patch_meta):
                check_meta(kind, new["metadata"], identity=False)
            rv = self._stamp(conn, new, stored)
            node_seq = patch_nodes(conn, oid, node_seq, stored, new, node_patch)
            body, spec_text = self._encode_body(new, stored, spec_text)
            self._save(conn, oid, rv, node_seq, body, new)
            self._bodies[oid] = (rv, new, spec_text)
            if not return_object:
                return {"apiVersion": new["apiVersion"], "kind": kind, "metadata": copy_json(new["metadata"])}
            return assemble(conn, oid, json.loads(body))

    @staticmethod
    def _encode_body(new: dict, stored: dict, spec_text: str | None) -> tuple[str, str | None]:
        spec = new.get("spec")
        if not isinstance(spec, dict) or len(new) < 2:
            return dumps(new), None
        if spec_text is None or spec is not stored.get("spec"):
            spec_text = dumps(spec)
        rest = dumps({k: v for k, v in new.items() if k != "spec"})
        return '{"spec":' + spec_text + "," + rest[1:], spec_text

    @retrying
    def delete(self, kind: str, namespace: str, name: str, resource_version: str | None = None) -> None:
        namespace = normalize_namespace(kind, namespace)
        with self._txn(write=True) as conn:
            oid, stored_rv, _, body = self._row(conn, kind, namespace, name)
            raise_if_stale(kind, namespace, name, stored_rv, resource_version)
            last = assemble(conn, oid, json.loads(body))
            rv = self._next_rv(conn)
            last["metadata"]["resourceVersion"] = str(rv)  # as in Kubernetes' DELETED watch event
            conn.execute("DELETE FROM nodes WHERE object_id = ?", (oid,))
            conn.execute("DELETE FROM objects WHERE id = ?", (oid,))
            self._record(conn, rv, "DELETED", kind, namespace, name, dumps(last))

    def _stamp(self, conn: sqlite3.Connection, new: dict, stored: dict) -> int:
        """Carry the stored identity over to `new`, count its generation, give it the next rv."""
        meta, smeta = new["metadata"], stored["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp"):
            meta[field] = smeta[field]
        new["kind"] = stored["kind"]
        meta["generation"] = smeta.get("generation", 1) + (new.get("spec") != stored.get("spec"))
        rv = self._next_rv(conn)
        meta["resourceVersion"] = str(rv)
        return rv

    def _save(self, conn: sqlite3.Connection, oid: int, rv: int, node_seq: int, body: str, obj: dict) -> None:
        conn.execute("UPDATE objects SET rv = ?, node_seq = ?, body = ? WHERE id = ?", (rv, node_seq, body, oid))
        meta = obj["metadata"]
        self._record(conn, rv, "MODIFIED", obj["kind"], meta["namespace"], meta["name"])

    @staticmethod
    def _next_rv(conn: sqlite3.Connection) -> int:
        rv = conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()[0] + 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (rv,))
        return rv

    def _record(
        self, conn: sqlite3.Connection, rv: int, change: str, kind: str, ns: str, name: str, body: str | None = None
    ) -> None:
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", (rv, change, kind, ns, name, body))
        horizon = rv - self._retention
        if horizon > 0 and rv % _COMPACT_EVERY == 0:
            conn.execute("DELETE FROM events WHERE rv <= ?", (horizon,))
            conn.execute("UPDATE meta SET value = ? WHERE key = 'compacted'", (horizon,))

    # -- watch ---------------------------------------------------------------------------------

    def watch(
        self,
        kind: str | None = None,
        namespace: str | None = None,
        since: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict]:
        """See ObjectStore.watch. Events carry the object as it is when the watcher reads them: one
        that falls behind sees each object's latest state once (an ADDED it skipped is reported on the
        surviving event), never an intermediate one; versions seen still only increase."""
        if kind is not None and namespace is not None:
            namespace = normalize_namespace(kind, namespace)
        # Validate and pin the starting point now, not at the first next(): "changes from now".
        with self._txn(write=False) as conn:
            current, compacted = self._counters(conn)
        start = parse_since(since)
        if start is not None:
            self._check_not_compacted(start, compacted)
        state = {"cursor": current if start is None else start, "writes": 0}
        unseen_added: set[tuple[str, str, str]] = set()

        def read() -> tuple[list[dict], bool]:
            state["writes"] = self._writes
            batch, state["cursor"], more = self._read_events(kind, namespace, state["cursor"], unseen_added)
            return batch, more

        def wait(seconds: float) -> None:
            with self._changed:
                # Writes by this process wake us at once; other processes' are found by polling.
                if self._writes == state["writes"] and not self._closed:
                    self._changed.wait(seconds)

        return poll_watch(read, wait, lambda: self._closed, timeout, POLL_INTERVAL)

    @retrying
    def _read_events(
        self, kind: str | None, namespace: str | None, cursor: int, unseen_added: set
    ) -> tuple[list[dict], int, bool]:
        sql, args = "SELECT rv, type, kind, namespace, name, body FROM events WHERE rv > ?", [cursor]
        if kind is not None:
            sql, args = sql + " AND kind = ?", args + [kind]
        if namespace is not None:
            sql, args = sql + " AND namespace = ?", args + [namespace]
        out = []
        # Events and objects come from one read transaction, so "the object has moved past this
        # event" means exactly "a later event for it is already in the table".
        with self._txn(write=False) as conn:
            current, compacted = self._counters(conn)
            self._check_not_compacted(cursor, compacted)
            rows = conn.execute(sql + " ORDER BY rv LIMIT ?", args + [_WATCH_BATCH]).fetchall()
            for rv, change, okind, ons, oname, body in rows:
                key = (okind, ons, oname)
                if change == "DELETED":
                    unseen_added.discard(key)
                    out.append({"type": change, "object": json.loads(body)})
                    continue
                row = conn.execute(
                    "SELECT id, rv, body FROM objects WHERE kind = ? AND namespace = ? AND name = ?", key
                ).fetchone()
                if row is None or row[1] != rv:
                    if change == "ADDED":
                        unseen_added.add(key)
                    continue
                if key in unseen_added:
                    unseen_added.discard(key)
                    change = "ADDED"
                out.append({"type": change, "object": assemble(conn, row[0], json.loads(row[2]))})
        if len(rows) == _WATCH_BATCH:
            return out, rows[-1][0], True
        return out, max(cursor, current), False

    @staticmethod
    def _counters(conn: sqlite3.Connection) -> tuple[int, int]:
        values = dict(conn.execute("SELECT key, value FROM meta"))
        return values["rv"], values["compacted"]

    @staticmethod
    def _check_not_compacted(cursor: int, compacted: int) -> None:
        if cursor < compacted:
            raise Conflict(f"too old resource version: {cursor} (oldest retained is {compacted + 1})")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pid == os.getpid():
                self._conn.close()
        with self._changed:
            self._changed.notify_all()

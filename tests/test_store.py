"""reconciler.store: the SQLite object store, on real database files."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.store import (
    AlreadyExists,
    Conflict,
    NotFound,
    ObjectStore,
    SqliteStore,
    StoreError,
    make_merge_patch,
    merge_patch,
    open_store,
)
from reconciler.store import sqlite as sqlite_backend

from .store_backends import node, wf


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path):
    s = open_store(db)
    yield s
    s.close()


# -- create / get / list ---------------------------------------------------------------------------


def test_generate_name_retries_on_clash(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create(wf("etl-aaaaa"))
    candidates = iter(["etl-aaaaa", "etl-aaaaa", "etl-bbbbb"])
    monkeypatch.setattr(sqlite_backend, "generated_name", lambda prefix: next(candidates))
    assert store.create(wf(None, generateName="etl-"))["metadata"]["name"] == "etl-bbbbb"

    monkeypatch.setattr(sqlite_backend, "generated_name", lambda prefix: "etl-aaaaa")
    with pytest.raises(AlreadyExists):
        store.create(wf(None, generateName="etl-"))


# -- update / patch / delete -----------------------------------------------------------------------


def test_update_keeps_identity_and_counts_generation_on_spec_changes(store: ObjectStore) -> None:
    created = store.create(wf())
    forged = dict(created, metadata={**created["metadata"], "uid": "forged", "creationTimestamp": "1999"})
    forged["status"] = {"phase": "Running"}
    updated = store.update(forged)
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert updated["metadata"]["generation"] == 1, "a status-only change is not a new generation"
    updated["spec"]["entrypoint"] = "other"
    assert store.update(updated)["metadata"]["generation"] == 2


def _side_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT node_id, body FROM nodes"))


def test_nodes_side_table_round_trip(db: Path) -> None:
    store = open_store(db)
    store.create(wf(nodes={f"n{i}": node(i) for i in range(5)}))
    # The nodes really live in the side table, not in the object's body.
    assert sorted(_side_rows(db)) == [f"n{i}" for i in range(5)]
    with sqlite3.connect(db) as conn:
        (body,) = conn.execute("SELECT body FROM objects").fetchone()
    assert "wf.step1" not in body

    store.patch("Workflow", "default", "wf", {"status": {"phase": "Running", "nodes": {
        "n1": {"phase": "Succeeded", "outputs": {"exitCode": "0"}},   # merged into the stored node
        "n2": None,                                                    # deleted
        "n9": node(9),                                                 # added
    }}})
    store.close()

    store = open_store(db)  # read back through a fresh connection: nothing lives only in memory
    nodes = store.get("Workflow", "default", "wf")["status"]["nodes"]
    assert list(nodes) == ["n0", "n1", "n3", "n4", "n9"], "insertion order is kept, new nodes last"
    assert nodes["n1"] == {**node(1), "phase": "Succeeded", "outputs": {"exitCode": "0"}}
    assert nodes["n9"] == node(9)
    assert sorted(_side_rows(db)) == ["n0", "n1", "n3", "n4", "n9"]

    whole = store.get("Workflow", "default", "wf")
    whole["status"]["nodes"] = {"n0": whole["status"]["nodes"]["n0"], "n4": {"phase": "Error"}}
    store.update(whole)
    assert store.get("Workflow", "default", "wf")["status"]["nodes"] == {"n0": node(0), "n4": {"phase": "Error"}}
    assert sorted(_side_rows(db)) == ["n0", "n4"]

    store.patch("Workflow", "default", "wf", {"status": {"nodes": None}})
    assert "nodes" not in store.get("Workflow", "default", "wf")["status"]
    assert _side_rows(db) == {}

    store.patch("Workflow", "default", "wf", {"status": {"nodes": {"a": {"x": 1, "y": None}}}})
    assert store.get("Workflow", "default", "wf")["status"]["nodes"] == {"a": {"x": 1}}
    store.patch("Workflow", "default", "wf", {"status": None})
    assert "status" not in store.get("Workflow", "default", "wf")
    assert _side_rows(db) == {}
    store.close()


def test_update_writes_only_changed_node_rows(store: ObjectStore, db: Path) -> None:
    obj = store.create(wf(nodes={f"n{i}": node(i) for i in range(50)}))
    with sqlite3.connect(db) as conn:  # a real trigger records every row the store writes
        conn.execute("CREATE TABLE node_writes (what TEXT, node_id TEXT)")
        for what, row in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
            conn.execute(f"CREATE TRIGGER log_{what} AFTER {what} ON nodes "
                         f"BEGIN INSERT INTO node_writes VALUES ('{what}', {row}.node_id); END")
    nodes = obj["status"]["nodes"]
    nodes["n3"]["phase"] = "Succeeded"
    del nodes["n7"]
    nodes["n99"] = node(99)
    store.update(obj)
    with sqlite3.connect(db) as conn:
        writes = sorted(conn.execute("SELECT what, node_id FROM node_writes"))
    assert writes == [("DELETE", "n7"), ("INSERT", "n99"), ("UPDATE", "n3")]
    assert store.get("Workflow", "default", "wf")["status"]["nodes"] == nodes


def test_delete(store: ObjectStore, db: Path) -> None:
    rv = store.create(wf(nodes={"n1": node(1)}))["metadata"]["resourceVersion"]
    store.patch("Workflow", "default", "wf", {"status": {"phase": "Succeeded"}})
    with pytest.raises(Conflict):
        store.delete("Workflow", "default", "wf", resource_version=rv)
    store.delete("Workflow", "default", "wf")
    with pytest.raises(NotFound):
        store.get("Workflow", "default", "wf")
    with pytest.raises(NotFound):
        store.delete("Workflow", "default", "wf")
    assert _side_rows(db) == {}
    store.create(wf())  # the name is free again


# -- watch -----------------------------------------------------------------------------------------


def test_watch_sees_another_instance_writing_from_another_thread(db: Path) -> None:
    watcher, writer = open_store(db), open_store(db)
    events = watcher.watch(kind="Workflow", namespace="default", timeout=5)

    def write() -> None:
        time.sleep(0.1)
        writer.create(wf(nodes={"n1": node(1)}))
        writer.create(wf("elsewhere", "prod"))  # filtered out by namespace
        writer.create({"apiVersion": "v1", "kind": "CronWorkflow", "metadata": {"name": "c"}})  # by kind
        time.sleep(0.2)
        writer.patch("Workflow", "default", "wf", {"status": {"nodes": {"n1": {"phase": "Succeeded"}}}})
        time.sleep(0.2)
        writer.delete("Workflow", "default", "wf")

    thread = threading.Thread(target=write)
    thread.start()
    seen = [next(events) for _ in range(3)]
    thread.join()
    events.close()
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[1]["object"]["status"]["nodes"]["n1"]["phase"] == "Succeeded"
    assert seen[2]["object"]["status"]["nodes"]["n1"]["phase"] == "Succeeded", "DELETED keeps the last body"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions)
    watcher.close()
    writer.close()


def test_watch_coalesces_states_it_fell_behind_on(store: ObjectStore) -> None:
    start = store.create(wf("other"))["metadata"]["resourceVersion"]
    store.create(wf())
    for phase in ("Pending", "Running", "Succeeded"):
        store.patch("Workflow", "default", "wf", {"status": {"phase": phase}})
    events = list(store.watch(since=start, timeout=0.2))
    # One event carrying the latest state; the object was new to this watcher, so it is ADDED.
    assert [(e["type"], e["object"]["status"]["phase"]) for e in events] == [("ADDED", "Succeeded")]


def test_watch_stops_after_idle_timeout(store: ObjectStore) -> None:
    t0 = time.monotonic()
    assert list(store.watch(timeout=0.3)) == []
    assert 0.25 < time.monotonic() - t0 < 2


def test_watch_too_old_resource_version(db: Path) -> None:
    store = open_store(db, event_retention=10)
    store.create(wf())
    for i in range(200):
        store.patch("Workflow", "default", "wf", {"status": {"i": i}})
    with pytest.raises(Conflict, match="too old"):
        store.watch(since="1")
    recent = int(store.get("Workflow", "default", "wf")["metadata"]["resourceVersion"]) - 5
    assert [e["object"]["status"]["i"] for e in store.watch(since=str(recent), timeout=0.1)] == [199]
    store.close()


# -- processes, threads, crashes -------------------------------------------------------------------


def _increment(path: str, times: int, start: multiprocessing.synchronize.Barrier, conflicts) -> None:
    store = open_store(path)
    start.wait(60)  # both processes are up (spawn is slow) before either starts counting
    lost = 0
    for _ in range(times):
        while True:
            obj = store.get("ConfigMap", "default", "counter")
            obj["data"]["value"] += 1
            time.sleep(0.001)  # the "think" step of read-modify-write, where the other process slips in
            try:
                store.update(obj)
                break
            except Conflict:
                lost += 1
    conflicts.put(lost)
    store.close()


def test_two_processes_cas_increment_to_exact_total(db: Path) -> None:
    store = open_store(db)
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}, "data": {"value": 0}})
    ctx = multiprocessing.get_context("spawn")
    start, conflicts = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_increment, args=(str(db), 300, start, conflicts)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert store.get("ConfigMap", "default", "counter")["data"]["value"] == 600
    # The processes really raced: otherwise this test would not show CAS working.
    assert conflicts.get(timeout=5) + conflicts.get(timeout=5) > 0
    store.close()


def test_threads_share_one_store(store: ObjectStore) -> None:
    store.create(wf(nodes={}))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                store.create(wf(f"t{t}-{i}"))
                store.patch("Workflow", "default", "wf", {"status": {"nodes": {f"t{t}-{i}": {"i": i}}}})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list("Workflow")) == 201
    assert len(store.get("Workflow", "default", "wf")["status"]["nodes"]) == 200


_CRASH_WRITER = """
import sys
from reconciler.store import open_store
store = open_store(sys.argv[1])
ids = [f"n{i}" for i in range(300)]
gen = 0
while True:
    gen += 1
    if gen % 2:
        store.patch("Workflow", "default", "wf",
                    {"status": {"gen": gen, "nodes": {i: {"gen": gen} for i in ids}}}, return_object=False)
    else:
        obj = store.get("Workflow", "default", "wf")
        obj["status"] = {"gen": gen, "nodes": {i: {"gen": gen, "pad": "x" * 200} for i in ids}}
        store.update(obj)
"""


def test_crash_never_leaves_an_object_half_written(db: Path) -> None:
    store = open_store(db)
    store.create(wf(nodes={f"n{i}": {"gen": 0} for i in range(300)}))
    store.patch("Workflow", "default", "wf", {"status": {"gen": 0}})
    writer = subprocess.Popen([sys.executable, "-c", _CRASH_WRITER, str(db)])

    def consistent() -> int:
        status = store.get("Workflow", "default", "wf")["status"]
        assert len(status["nodes"]) == 300
        assert {n["gen"] for n in status["nodes"].values()} == {status["gen"]}
        return status["gen"]

    try:
        deadline, reads = time.monotonic() + 30, 0
        # Read as fast as possible while the writer runs: a reader must never see a torn write either.
        while (reads < 500 or consistent() < 30) and time.monotonic() < deadline:
            consistent()
            reads += 1
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    store.close()

    store = open_store(db)
    assert consistent() >= 30
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


# -- open_store ------------------------------------------------------------------------------------


def test_open_store_locations(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        s.create(wf())
    assert (tmp_path / "store.db").exists()
    with open_store(f"sqlite://{tmp_path}/store.db") as s:
        assert s.get("Workflow", "default", "wf")["metadata"]["name"] == "wf"
    with open_store(tmp_path / "new" / "dir" / "x.db") as s:
        assert isinstance(s, SqliteStore)
    assert (tmp_path / "new" / "dir" / "x.db").exists()
    with open_store(":memory:") as s:
        s.create(wf())
        assert len(s.list("Workflow")) == 1
    with pytest.raises(ValueError):
        open_store("postgres://db/x")


def test_closed_store_refuses_work(db: Path) -> None:
    store = open_store(db)
    store.close()
    with pytest.raises(StoreError):
        store.get("Workflow", "default", "wf")


# -- merge patch -----------------------------------------------------------------------------------

RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(target, patch, result) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before, "the target is not modified"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=15,
)
null_free_docs = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=3) | st.lists(json_values, max_size=2),
    lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=15,
).filter(lambda v: isinstance(v, dict))


@given(null_free_docs, null_free_docs)
def test_make_merge_patch_round_trips(old: dict, new: dict) -> None:
    assert merge_patch(old, make_merge_patch(old, new)) == new

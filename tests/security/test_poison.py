"""Issue 10, parts 4 and 7: a workflow cannot take the daemon down, and a damaged store has a way out.

Everything runs for real: `reconciler up` as a subprocess on a temp data directory, the CLI as
subprocesses, real SQLite files damaged the way disks and people damage them."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from reconciler.store import open_store
from reconciler.store.errors import DamagedStore
from tests.conftest import run_cli
from tests.test_api_support import start_daemon

pytestmark = pytest.mark.xdist_group("daemon")

NORMAL = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: NAME}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sh, -c, "echo fine"]}
"""

# Schema-valid workflows that lint accepts and that made the engine raise (the daemon died, and died
# again on every restart): a template that calls itself, in steps and in a DAG (Argo allows recursion;
# the engine has no depth limit yet, so it overflows Python's stack).
POISONS = {
    "recurse-steps": """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: recurse-steps}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: again, template: main}
""",
    "recurse-dag": """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: recurse-dag}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: again, template: main}
""",
}

# Odd inputs that used to raise out of the engine and now end the node in Error with the cause.
ODD = {
    "bad-suspend-duration": ("""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: bad-suspend-duration}
spec:
  entrypoint: main
  arguments: {parameters: [{name: d, value: soon}]}
  templates:
  - name: main
    suspend: {duration: "{{workflow.parameters.d}}"}
""", 'suspend.duration: invalid duration "soon"'),
    "bad-memo-max-age": ("""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: bad-memo-max-age}
spec:
  entrypoint: main
  templates:
  - name: main
    memoize: {key: k, maxAge: forever, cache: {configMap: {name: memo-cache}}}
    container: {image: alpine:3, command: [echo, hi]}
""", 'memoize: invalid duration "forever"'),
}
# The cache entry the memoized step finds (its age is only checked when there is one).
MEMO_CACHE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: memo-cache}
data:
  k: '{"nodeID": "x", "outputs": {}, "creationTimestamp": "2020-01-01T00:00:00Z"}'
"""

SLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: NAME}
spec:
  entrypoint: main
  volumes: [{name: journal, emptyDir: {}}]
  templates:
  - name: main
    container:
      image: alpine:3
      command: [sh, -c, "echo run >> /journal/marker; sleep 300"]
      volumeMounts: [{name: journal, mountPath: /journal}]
"""


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def _workflow(home: Path, name: str) -> dict:
    proc = run_cli(home, "get", name, "-o", "json", check=True)
    return json.loads(proc.stdout)


def _wait_phase(home: Path, name: str, phases: tuple[str, ...], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        wf = _workflow(home, name)
        if (wf.get("status") or {}).get("phase") in phases:
            return wf
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never reached {phases}: {wf.get('status')}")
        time.sleep(0.3)


def _marker_runs(home: Path, name: str) -> int:
    marker = home / "volumes" / "default" / name / "journal" / "marker"
    return marker.read_text().count("run") if marker.exists() else 0


def _wait_runs(home: Path, name: str, runs: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _marker_runs(home, name) < runs:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: the step ran {_marker_runs(home, name)} time(s), expected {runs}")
        time.sleep(0.1)


# ---- part 4: a poison workflow --------------------------------------------------------------------

def test_poison_workflows_fail_alone_and_the_daemon_keeps_running(tmp_path: Path, home: Path) -> None:
    for name, text in POISONS.items():
        assert run_cli(home, "lint", str(_write(tmp_path, name, text))).returncode == 0  # nothing flags them
    daemon = start_daemon(home, tmp_path)
    try:
        for name, text in POISONS.items():
            run_cli(home, "submit", str(_write(tmp_path, name, text)), check=True)
        for name in POISONS:
            wf = _wait_phase(home, name, ("Succeeded", "Failed", "Error"))
            assert wf["status"]["phase"] == "Error"
            assert "RecursionError" in wf["status"]["message"], wf["status"]["message"]
            assert not (wf["metadata"].get("annotations") or {}).get("reconciler.io/lease-holder")
        assert daemon.proc.poll() is None, daemon.logs()[-3000:]
        assert daemon.client.get("/readyz", token=False).status == 200
        run_cli(home, "submit", str(_write(tmp_path, "after", NORMAL.replace("NAME", "after"))), check=True)
        assert _wait_phase(home, "after", ("Succeeded", "Failed", "Error"))["status"]["phase"] == "Succeeded"
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.logs()[-3000:]


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_inputs_error_the_node_with_the_cause(tmp_path: Path, home: Path, name: str) -> None:
    text, message = ODD[name]
    run_cli(home, "apply", str(_write(tmp_path, "memo-cache", MEMO_CACHE)), check=True)
    proc = run_cli(home, "submit", str(_write(tmp_path, name, text)), "--wait")
    assert proc.returncode == 1, proc.stderr
    wf = _workflow(home, name)
    assert wf["status"]["phase"] == "Error"
    errored = [n for n in wf["status"]["nodes"].values() if n["phase"] == "Error"]
    assert any(message in n.get("message", "") for n in errored), errored


# ---- part 4: a step that keeps killing the daemon -------------------------------------------------

def test_a_node_the_daemon_dies_under_three_times_is_not_run_a_fourth(tmp_path: Path, home: Path) -> None:
    run_cli(home, "submit", str(_write(tmp_path, "killer", SLOW.replace("NAME", "killer"))), check=True)
    for death in range(1, 4):
        daemon = start_daemon(home, tmp_path)
        # The step stands in for one that crashes the daemon: the test kills it while the step runs.
        _wait_runs(home, "killer", death)
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
    daemon = start_daemon(home, tmp_path)
    try:
        wf = _wait_phase(home, "killer", ("Succeeded", "Failed", "Error"))
        status = wf["status"]
        assert status["phase"] == "Error"
        assert "the daemon stopped 3 times while running this node" in status["message"]
        pod = next(n for n in status["nodes"].values() if n["type"] == "Pod")
        assert pod["phase"] == "Error"
        assert pod["message"] == "the daemon stopped 3 times while running this node"
        # The daemon is still up and works; the step did not run a 4th time.
        run_cli(home, "submit", str(_write(tmp_path, "next", NORMAL.replace("NAME", "next"))), check=True)
        assert _wait_phase(home, "next", ("Succeeded", "Failed", "Error"))["status"]["phase"] == "Succeeded"
        assert daemon.proc.poll() is None
        assert _marker_runs(home, "killer") == 3
    finally:
        daemon.stop()
    # Nor on the next start: an Error workflow is never picked up again.
    daemon = start_daemon(home, tmp_path)
    daemon.stop()
    assert _marker_runs(home, "killer") == 3


def test_clean_stops_and_idle_restarts_are_not_counted(tmp_path: Path, home: Path) -> None:
    run_cli(home, "submit", str(_write(tmp_path, "steady", SLOW.replace("NAME", "steady"))), check=True)
    idle = _write(tmp_path, "idle", NORMAL.replace("NAME", "idle").replace(
        'container: {image: alpine:3, command: [sh, -c, "echo fine"]}', "suspend: {}"))
    run_cli(home, "submit", str(idle), check=True)
    for stop in range(1, 5):
        daemon = start_daemon(home, tmp_path)
        _wait_runs(home, "steady", stop)
        _wait_phase(home, "idle", ("Running",))
        if stop % 2:
            daemon.stop()  # SIGTERM: the running step is killed after --grace and run again next time
            assert daemon.proc.returncode == 0
        else:
            # A crash while `steady` runs counts for it; `idle` waits on a suspend node: never counted.
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
    daemon = start_daemon(home, tmp_path)
    try:
        _wait_runs(home, "steady", 5)
        assert _workflow(home, "steady")["status"]["phase"] == "Running"
        assert _workflow(home, "idle")["status"]["phase"] == "Running"
        run_cli(home, "resume", "idle", check=True)
        assert _wait_phase(home, "idle", ("Succeeded", "Failed", "Error"))["status"]["phase"] == "Succeeded"
        run_cli(home, "terminate", "steady", check=True)
        _wait_phase(home, "steady", ("Succeeded", "Failed", "Error"))
    finally:
        daemon.stop()


# ---- part 7: a damaged store ----------------------------------------------------------------------

def _store_with_workflows(tmp_path: Path, home: Path, names: list[str]) -> None:
    for name in names:
        run_cli(home, "submit", str(_write(tmp_path, name, NORMAL.replace("NAME", name))), check=True)


def _damage(store: Path, how: str) -> None:
    data = store.read_bytes()
    if how == "garbage":
        store.write_bytes(b"this is not a database\n" * 400)
    elif how == "truncated":
        store.write_bytes(data[: len(data) // 2])
    else:  # one row's JSON overwritten in place, as a bad sector or a stray write would
        at = data.index(b'"name":"victim"')
        store.write_bytes(data[:at] + b"\xff\x00{{" + data[at + 4:])


COMMANDS = [["list"], ["get", "w1"], ["delete", "w1"], ["template", "list"], ["cron", "list"],
            ["suspend", "w1"], ["up", "--listen", "off"]]


@pytest.mark.parametrize("how", ["garbage", "truncated", "bad-row"])
def test_a_damaged_store_gives_one_line_and_a_way_out(tmp_path: Path, home: Path, how: str) -> None:
    names = ["w1", "w2", "w3", "victim", "w4"]
    _store_with_workflows(tmp_path, home, names)
    store = home / "store.db"
    _damage(store, how)
    damaged = store.read_bytes()
    if how == "bad-row":  # the other rows still read: what touches the bad one fails, with the same line
        commands = [["list"], ["get", "victim"], ["delete", "victim"], ["list", "-A", "-o", "name"]]
    else:
        commands = [*COMMANDS, ["submit", str(_write(tmp_path, "w9", NORMAL.replace("NAME", "w9")))]]
    for args in commands:
        proc = run_cli(home, *args)
        # `up` may log before it opens the store (e.g. tightening the data directory's modes): those are
        # log records, not the error; the error itself must still be one line, with no traceback.
        lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith('{"time": ')]
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert lines[0].startswith(f"{store}: the store is damaged") and "reconciler doctor" in lines[0]
    assert store.read_bytes() == damaged  # nothing was written to it, nothing lost

    check = run_cli(home, "doctor")
    assert check.returncode == 2
    assert "damaged" in check.stderr

    recovered = run_cli(home, "doctor", "--recover")
    assert recovered.returncode == 0, recovered.stderr
    kept = sorted(home.glob("store.db.damaged-*"))
    assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [damaged]
    assert run_cli(home, "doctor").returncode == 0

    with open_store(store) as s:
        present = {w["metadata"]["name"] for w in s.list_brief("Workflow")}
    if how == "garbage":
        assert present == set()
    elif how == "bad-row":
        assert present == set(names) - {"victim"}
    else:
        assert present <= set(names)
    # The daemon starts on the new store and runs what was recovered (and what is submitted now).
    daemon = start_daemon(home, tmp_path)
    try:
        run_cli(home, "submit", str(_write(tmp_path, "fresh", NORMAL.replace("NAME", "fresh"))), check=True)
        for name in present | {"fresh"}:
            assert _wait_phase(home, name, ("Succeeded", "Failed", "Error"))["status"]["phase"] == "Succeeded"
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0


def test_backup_while_the_daemon_runs_then_restore(tmp_path: Path, home: Path) -> None:
    daemon = start_daemon(home, tmp_path)
    try:
        _store_with_workflows(tmp_path, home, ["kept"])
        _wait_phase(home, "kept", ("Succeeded",))
        backup = tmp_path / "backups" / "store-backup.db"
        backup.parent.mkdir()
        proc = run_cli(home, "doctor", "--backup", str(backup))
        assert proc.returncode == 0, proc.stderr
        assert run_cli(home, "doctor", "--backup", str(backup)).returncode == 2  # never overwrites
        # While it runs, the daemon's store cannot be swapped under it.
        busy = run_cli(home, "doctor", "--restore", str(backup))
        assert busy.returncode == 2 and "stop it first" in busy.stderr
    finally:
        daemon.stop()
    run_cli(home, "delete", "kept", check=True)
    _store_with_workflows(tmp_path, home, ["later"])

    proc = run_cli(home, "doctor", "--restore", str(backup))
    assert proc.returncode == 0, proc.stderr
    names = run_cli(home, "list", "-o", "name", check=True).stdout.split()
    assert names == ["kept"]
    assert _workflow(home, "kept")["status"]["phase"] == "Succeeded"
    # The store it replaced is kept beside it, whole.
    (replaced,) = [p for p in home.glob("store.db.replaced-*") if not p.name.endswith(("-wal", "-shm"))]
    with open_store(replaced) as old:
        assert [w["metadata"]["name"] for w in old.list_brief("Workflow")] == ["later"]
    # A file that is not a good store is refused as a backup, and the store is left alone.
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope" * 1000)
    refused = run_cli(home, "doctor", "--restore", str(bad))
    assert refused.returncode == 2 and str(bad) in refused.stderr
    assert run_cli(home, "list", "-o", "name", check=True).stdout.split() == ["kept"]


# ---- part 4: transient store errors ---------------------------------------------------------------

def test_a_locked_database_is_waited_out_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = open_store(path, busy_timeout=0.05)  # each attempt gives up fast: the retries do the waiting
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock, as a long backup might
    released = threading.Event()

    def release() -> None:
        time.sleep(0.5)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    try:
        created = store.create({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}})
        assert released.is_set()  # it could only have been written after the lock was let go
        assert store.get("ConfigMap", "default", "c")["data"] == {"k": "v"}
        assert created["metadata"]["name"] == "c"
    finally:
        store.close()
        other.close()


def test_a_damaged_store_is_not_retried_but_named(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"\x00garbage" * 700)
    with pytest.raises(DamagedStore) as caught:
        open_store(path)
    assert str(path) in str(caught.value) and "reconciler doctor" in str(caught.value)

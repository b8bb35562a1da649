"""Concurrency limits end to end: mutexes, semaphores and the namespace cap on running workflows.

Real parts only: the steps are real subprocesses (`LocalProcessExecutor`), the store is a real
SQLite file, and the workflows are driven by `WorkflowRunner.serve()` (the daemon's loop) in a
thread, while the test reads the store as any other client would. The CLI is the real command in a
subprocess, on the same data directory.

When steps ran is read from the stored node status (`startedAtUnix`/`finishedAtUnix`, which the
executor measures around the step's process), so "never overlap" is a statement about the
processes themselves. Steps that must stay running until the test has looked (the CLI tests)
wait for a file the test creates in the workflow's volume (`HOME/volumes/<ns>/<wf>/<volume>`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from reconciler import config
from reconciler.artifacts import LocalArtifactRepository
from reconciler.engine.submission import build_workflow, store_lookup
from reconciler.executors import LocalProcessExecutor
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store
from tests.conftest import run_cli

# Daemons and many step processes: one worker runs these one after another.
pytestmark = pytest.mark.xdist_group("daemon")

NS = "default"
FINISHED = ("Succeeded", "Failed", "Error")


class Daemon:
    """`runner.serve()` in a thread, as `reconciler up` runs it, on the data directory `home`."""

    def __init__(self, home: Path, max_running: int | None = None) -> None:
        self.home = home
        self.store = open_store(config.store_path(home))
        self.executor = LocalProcessExecutor()
        self.runner = WorkflowRunner(self.store, self.executor, LocalArtifactRepository(home / "artifacts"), home,
                                     max_running=max_running)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.runner.serve, args=(self.stop,), kwargs={"grace": 2.0},
                                       daemon=True)

    def __enter__(self) -> Daemon:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.executor.close()
        self.store.close()


def submit(store, doc: dict) -> str:
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", **doc}
    return store.create(build_workflow(doc, namespace=NS, lookup=store_lookup(store)))["metadata"]["name"]


def set_configmap(store, name: str, data: dict[str, str]) -> None:
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
                  "data": data})


def watch(store, names: list[str], *, until=None, timeout: float = 30.0) -> tuple[dict[str, dict], list[dict]]:
    """Poll the store until every workflow has finished (or `until(snapshot)` is true); returns the
    last state of each workflow and every snapshot seen ({name: workflow})."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        snap = {name: store.get("Workflow", NS, name) for name in names}
        seen.append(snap)
        if until(snap) if until else all(wf.get("status", {}).get("phase") in FINISHED for wf in snap.values()):
            return snap, seen
        if time.monotonic() > deadline:
            raise AssertionError("timed out; last state: " + json.dumps(
                {n: {"phase": wf.get("status", {}).get("phase"), "message": wf.get("status", {}).get("message"),
                     "nodes": {x["displayName"]: [x["phase"], x.get("message")]
                               for x in wf.get("status", {}).get("nodes", {}).values()}}
                 for n, wf in snap.items()}, indent=1))
        time.sleep(0.03)


def pods(wf: dict, display: str | None = None) -> list[dict]:
    return [n for n in wf["status"]["nodes"].values()
            if n["type"] == "Pod" and (display is None or n["displayName"] == display)]


def span(obj: dict) -> tuple[float, float]:
    return obj["startedAtUnix"], obj["finishedAtUnix"]


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (one ending at t and one starting at t do not overlap)."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def node_messages(seen: list[dict]) -> list[tuple[str, str, str]]:
    """(workflow, node display name, message) of every Pending pod node in the snapshots."""
    return [(name, n["displayName"], n.get("message") or "")
            for snap in seen for name, wf in snap.items()
            for n in (wf.get("status") or {}).get("nodes", {}).values()
            if n["type"] == "Pod" and n["phase"] == "Pending"]


def workflow_messages(seen: list[dict]) -> list[tuple[str, str, str]]:
    return [(name, wf["status"].get("phase"), wf["status"].get("message") or "")
            for snap in seen for name, wf in snap.items() if wf.get("status")]


def sleeper(name: str, seconds: float, sync: dict | None = None) -> dict:
    tmpl = {"name": name, "container": {"image": "alpine", "command": ["sh", "-c", f"sleep {seconds}"]}}
    if sync is not None:
        tmpl["synchronization"] = sync
    return tmpl


GATED = {
    "name": "gated",
    "container": {
        "image": "alpine",
        # Runs until the test creates `go` in the workflow's volume (at most ~15 s).
        "command": ["sh", "-c", "i=0; while [ ! -f /mnt/shared/go ] && [ $i -lt 300 ]; do sleep 0.05; "
                                "i=$((i+1)); done; test -f /mnt/shared/go"],
        "volumeMounts": [{"name": "shared", "mountPath": "/mnt/shared"}],
    },
}


def gated_workflow(name: str, sync: dict | None = None) -> dict:
    spec = {"entrypoint": "gated", "templates": [GATED], "volumes": [{"name": "shared", "emptyDir": {}}]}
    if sync:
        spec["synchronization"] = sync
    return {"metadata": {"name": name}, "spec": spec}


def release_gate(home: Path, name: str) -> None:
    gate = home / "volumes" / NS / name / "shared" / "go"
    gate.parent.mkdir(parents=True, exist_ok=True)
    gate.touch()


def phases(snap: dict) -> dict[str, str | None]:
    """Each workflow's phase; "Waiting" for a Pending one the runner has seen (it says why it waits)."""
    out = {}
    for name, wf in snap.items():
        status = wf.get("status") or {}
        out[name] = "Waiting" if status.get("phase") == "Pending" and status.get("message") else status.get("phase")
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


# ---- template-level locks ---------------------------------------------------------------------------
def test_template_mutex_in_both_shapes_keeps_steps_of_concurrent_workflows_apart(home: Path) -> None:
    """Three workflows run at once; their `guarded` steps share one mutex, named through v4's
    `mutexes:` list by two of them and v3's single `mutex:` by the third."""
    shapes = [{"mutexes": [{"name": "the-lock"}]}, {"mutex": {"name": "the-lock"}}, {"mutexes": [{"name": "the-lock"}]}]
    with Daemon(home) as d:
        names = [submit(d.store, {
            "metadata": {"name": f"mutex-{i}"},
            "spec": {"entrypoint": "main", "templates": [
                {"name": "main", "steps": [[{"name": "guarded", "template": "guarded"},
                                            {"name": "free", "template": "free"}]]},
                sleeper("guarded", 0.5, sync), sleeper("free", 0.5)]},
        }) for i, sync in enumerate(shapes)]
        final, seen = watch(d.store, names)

    assert phases(final) == dict.fromkeys(names, "Succeeded")
    guarded = [span(pods(wf, "guarded")[0]) for wf in final.values()]
    free = [span(pods(wf, "free")[0]) for wf in final.values()]
    assert max_overlap(guarded) == 1, guarded
    assert max_overlap(free) == 3, free         # the workflows did run at the same time
    waits = {(wf, msg) for wf, display, msg in node_messages(seen) if display == "guarded"}
    assert any(msg == "Waiting for mutex the-lock, 1/1 held" for _, msg in waits), waits
    assert not any(n.get("message") for wf in final.values() for n in pods(wf))


def test_template_semaphore_of_two_lets_two_of_five_parallel_tasks_run(home: Path) -> None:
    with Daemon(home) as d:
        set_configmap(d.store, "my-config", {"template": "2"})
        name = submit(d.store, {
            "metadata": {"name": "sem"},
            "spec": {"entrypoint": "main", "templates": [
                {"name": "main", "dag": {"tasks": [{"name": f"t{i}", "template": "work"} for i in range(5)]}},
                sleeper("work", 0.6, {"semaphores": [{"configMapKeyRef": {"name": "my-config", "key": "template"}}]}),
            ]},
        })
        final, seen = watch(d.store, [name])

    wf = final[name]
    assert wf["status"]["phase"] == "Succeeded"
    spans = [span(n) for n in pods(wf)]
    assert len(spans) == 5 and all(n["phase"] == "Succeeded" for n in pods(wf))
    assert max_overlap(spans) == 2, spans
    messages = {msg for _, _, msg in node_messages(seen)}
    assert "Waiting for semaphore my-config/template, 2/2 held" in messages, messages
    assert not any(n.get("message") for n in pods(wf))


# ---- workflow-level locks and the namespace cap -------------------------------------------------------
def test_workflow_semaphore_of_one_runs_workflows_one_after_the_other(home: Path) -> None:
    with Daemon(home) as d:
        set_configmap(d.store, "my-config", {"workflow": "1"})
        sync = {"semaphore": {"configMapKeyRef": {"name": "my-config", "key": "workflow"}}}
        names = [submit(d.store, {"metadata": {"name": f"serial-{i}"},
                                  "spec": {"entrypoint": "work", "synchronization": sync,
                                           "templates": [sleeper("work", 0.4)]}}) for i in range(3)]
        final, seen = watch(d.store, names)

    assert phases(final) == dict.fromkeys(names, "Succeeded")
    spans = sorted(span(wf["status"]) for wf in final.values())
    assert max_overlap(spans) == 1, spans
    waiting = {name for name, phase, msg in workflow_messages(seen)
               if phase == "Pending" and msg == "Waiting for semaphore my-config/workflow, 1/1 held"}
    assert len(waiting) >= 2, workflow_messages(seen)[:10]
    assert not any(wf["status"].get("message") for wf in final.values())


@pytest.mark.parametrize("source", ["configmap", "runner"])
def test_namespace_cap_of_one(home: Path, source: str) -> None:
    """`reconciler semaphore set reconciler-limits/maxRunningWorkflows 1` caps the namespace, and
    wins over the runner's own `max_running` (3 here); without it, `max_running=1` caps it."""
    if source == "configmap":
        out = run_cli(home, "semaphore", "set", "reconciler-limits/maxRunningWorkflows", "1", "-n", NS, check=True)
        assert "reconciler-limits/maxRunningWorkflows size 1" in out.stdout
    with Daemon(home, max_running=3 if source == "configmap" else 1) as d:
        names = [submit(d.store, {"metadata": {"name": f"capped-{i}"},
                                  "spec": {"entrypoint": "main", "templates": [
                                      {"name": "main", "steps": [[{"name": "a", "template": "work"},
                                                                  {"name": "b", "template": "work"}]]},
                                      sleeper("work", 0.3)]}}) for i in range(3)]
        final, seen = watch(d.store, names)

    assert phases(final) == dict.fromkeys(names, "Succeeded")
    assert max_overlap([span(wf["status"]) for wf in final.values()]) == 1
    assert max_overlap([span(n) for wf in final.values() for n in pods(wf)]) == 2   # a and b of one workflow
    messages = {msg for _, phase, msg in workflow_messages(seen) if phase == "Pending" and msg}
    assert messages == {"Waiting for namespace limit on running workflows, 1/1 held"}, messages


# ---- the CLI ----------------------------------------------------------------------------------------
def test_cli_semaphore_set_and_list_show_sizes_and_holders(home: Path, tmp_path: Path) -> None:
    out = run_cli(home, "semaphore", "set", "my-config/workflow", "1", "-n", NS, check=True)
    assert out.stdout.strip() == "semaphore my-config/workflow size 1"
    sync = {"semaphore": {"configMapKeyRef": {"name": "my-config", "key": "workflow"}}}
    names = []
    for i in range(2):
        path = tmp_path / f"held-{i}.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                        **gated_workflow(f"held-{i}", sync)}))
        names.append(run_cli(home, "submit", str(path), "-n", NS, "-o", "name", check=True).stdout.strip())
    assert names == ["held-0", "held-1"]

    with Daemon(home) as d:
        assert d.store.get("ConfigMap", NS, "my-config")["data"] == {"workflow": "1"}
        snap, _ = watch(d.store, names, until=lambda s: sorted(phases(s).values()) == ["Running", "Waiting"])
        running = next(n for n, p in phases(snap).items() if p == "Running")
        pending = next(n for n, p in phases(snap).items() if p == "Waiting")
        assert snap[pending]["status"]["message"] == "Waiting for semaphore my-config/workflow, 1/1 held"

        listed = json.loads(run_cli(home, "semaphore", "list", "-n", NS, "-o", "json", check=True).stdout)
        locks = {lk["metadata"]["name"]: lk["status"] for lk in listed}
        assert locks["semaphore.my-config.workflow"] == {"holders": [f"{NS}/{running}"], "size": 1}
        assert locks["workflows"]["holders"] == [f"{NS}/{running}"]       # the namespace cap (no limit set)
        table = run_cli(home, "semaphore", "list", "-n", NS, check=True).stdout
        row = next(line for line in table.splitlines() if "semaphore.my-config.workflow" in line)
        assert "1/1" in row and f"{NS}/{running}" in row, table

        for name in names:
            release_gate(home, name)
        final, _ = watch(d.store, names)
    assert phases(final) == dict.fromkeys(names, "Succeeded")
    listed = json.loads(run_cli(home, "semaphore", "list", "-n", NS, "-o", "json", check=True).stdout)
    assert all(lk["status"]["holders"] == [] for lk in listed), listed


def test_raising_a_semaphore_size_lets_waiting_workflows_run(home: Path) -> None:
    sync = {"semaphores": [{"configMapKeyRef": {"name": "my-config", "key": "workflow"}}]}
    with Daemon(home) as d:
        set_configmap(d.store, "my-config", {"workflow": "1"})
        names = [submit(d.store, gated_workflow(f"raised-{i}", sync)) for i in range(3)]
        snap, _ = watch(d.store, names, until=lambda s: sorted(phases(s).values()) == ["Running", "Waiting", "Waiting"])
        first = next(n for n, p in phases(snap).items() if p == "Running")
        time.sleep(0.5)   # they stay waiting while the size is 1
        assert sorted(phases(watch(d.store, names, until=lambda s: True)[0]).values()) == ["Running", "Waiting",
                                                                                          "Waiting"]

        run_cli(home, "semaphore", "set", "my-config/workflow", "3", "-n", NS, check=True)
        snap, _ = watch(d.store, names, until=lambda s: all(p == "Running" for p in phases(s).values()), timeout=10)
        assert all(not wf["status"].get("message") for wf in snap.values())
        for name in names:
            release_gate(home, name)
        final, _ = watch(d.store, names)

    assert phases(final) == dict.fromkeys(names, "Succeeded")
    # The first one was still running (held at its gate) when the others started.
    others = [final[n]["status"]["startedAtUnix"] for n in names if n != first]
    assert all(start < final[first]["status"]["finishedAtUnix"] for start in others)


def test_waiting_workflows_are_admitted_by_priority_then_age(tmp_path):
    """spec.priority orders the namespace-cap queue (Argo: higher priority is processed first)."""
    home = tmp_path / "home"
    with Daemon(home, max_running=1) as d:
        hold = submit(d.store, {"metadata": {"name": "hold"}, "spec": {"entrypoint": "m", "templates": [
            {"name": "m", "suspend": {"duration": "2"}}]}})
        watch(d.store, [hold], until=lambda s: s[hold]["status"].get("phase") == "Running")
        quick = {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "a", "command": ["true"]}}]}
        low = submit(d.store, {"metadata": {"name": "low"}, "spec": quick})
        high = submit(d.store, {"metadata": {"name": "high"}, "spec": {**quick, "priority": 5}})
        final, _ = watch(d.store, [hold, low, high])
    assert all(w["status"]["phase"] == "Succeeded" for w in final.values())
    # One at a time: the high-priority one, submitted last, ran (and finished) before the older low one.
    assert final[high]["status"]["finishedAtUnix"] <= final[low]["status"]["startedAtUnix"]

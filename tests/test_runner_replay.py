"""A runner that dies is replaced by one that rebuilds the workflow's frames from its recorded
status (replay): recorded results are never run again, a pod that was running is run again,
timers (retry backoff, suspend durations) keep their original deadlines; and leases keep two
runners from driving one workflow."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from reconciler.artifacts import LocalArtifactRepository
from reconciler.engine.submission import build_workflow, store_lookup
from reconciler.executors.base import Executor, PodJob, PodResult
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store
from reconciler.store.errors import Conflict

WF = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: replayed}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: pod}
      - {name: b, depends: a, template: flaky}
      - {name: c, depends: b, template: pod}
      - {name: gate, template: wait}
      - {name: d, depends: gate, template: pod}
  - name: pod
    container: {image: alpine:3, command: [echo, hi]}
    outputs:
      parameters: [{name: out, valueFrom: {path: /tmp/out}}]
  - name: flaky
    retryStrategy: {limit: 2, backoff: {duration: "2s"}}
    container: {image: alpine:3, command: [sh, -c, exit 1]}
  - name: wait
    suspend: {duration: "100s"}
"""


class ManualExecutor(Executor):
    """Jobs finish when the test says so."""

    name = "manual"
    isolation = "none"

    def __init__(self) -> None:
        self.jobs: dict[str, PodJob] = {}
        self.started: list[str] = []
        self.done: list[PodResult] = []
        self.killed: list[str] = []

    def start(self, job: PodJob) -> None:
        self.jobs[job.node_id] = job
        self.started.append(job.pod_name)

    def finish(self, pod_prefix: str, phase: str = "Succeeded", out: str = "v") -> str:
        [node_id] = [n for n, j in self.jobs.items() if j.pod_name.startswith(pod_prefix)]
        job = self.jobs.pop(node_id)
        now = time.time()
        self.done.append(PodResult(node_id, phase, 0 if phase == "Succeeded" else 1, "", "", None,
                                   dict.fromkeys(job.output_parameter_paths, out), {}, now, now,
                                   namespace=job.namespace))
        return node_id

    def kill(self, key: tuple[str, str], reason: str = "") -> None:
        self.killed.append(key[1])
        self.jobs.pop(key[1], None)

    def poll(self, timeout: float) -> list[PodResult]:
        out, self.done = self.done, []
        return out

    def running(self) -> set[tuple[str, str]]:
        return {j.key for j in self.jobs.values()} | {r.key for r in self.done}

    def close(self) -> None:
        self.jobs.clear()


def by_display(store, name: str = "replayed") -> dict[str, dict]:
    wf = store.get("Workflow", "default", name)
    return {n["displayName"]: n for n in wf["status"]["nodes"].values()}


def make(tmp_path: Path, identity: str, lease: float = 15.0) -> tuple[WorkflowRunner, ManualExecutor]:
    store = open_store(tmp_path / "store.db")
    ex = ManualExecutor()
    return WorkflowRunner(store, ex, LocalArtifactRepository(tmp_path / "art"), tmp_path, identity=identity,
                          lease_seconds=lease), ex


def test_replay_after_a_crash_keeps_results_and_deadlines(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    store.create(build_workflow(yaml.safe_load(WF), namespace="default", lookup=store_lookup(store)))
    first, ex1 = make(tmp_path, "first", lease=0.5)
    op = first.claim("default", "replayed")
    assert op is not None
    first.step()
    ex1.finish("replayed-pod")                # a succeeds
    first.step()
    ex1.finish("replayed-flaky", "Failed")    # b(0) fails: a 2 s backoff starts
    first.step()
    nodes = by_display(store)
    assert nodes["b(0)"]["phase"] == "Failed" and nodes["b"]["message"].startswith("Backoff")
    suspend_started = nodes["gate"]["startedAtUnix"]
    a_before = nodes["a"]
    # The first runner dies here (no drain, its lease is left to expire).
    time.sleep(0.6)

    second, ex2 = make(tmp_path, "second")
    op2 = second.claim("default", "replayed")
    assert op2 is not None
    second.step()
    assert ex2.started == []                  # a is recorded; b(1) waits for the original backoff
    assert abs(op2.timers[nodes["gate"]["id"]][0] - (suspend_started + 100)) < 0.01
    nodes = by_display(store)
    assert nodes["a"] == a_before
    deadline = time.time() + 5
    while not ex2.started and time.time() < deadline:
        second.step()
    assert len(ex2.started) == 1 and "flaky" in ex2.started[0]
    assert by_display(store)["b(1)"]["startedAtUnix"] >= by_display(store)["b(0)"]["finishedAtUnix"] + 1.9
    ex2.finish("replayed-flaky")
    second.step()
    ex2.finish("replayed-pod")                # c
    second.step()
    op2.resume("gate")
    second.step()
    ex2.finish("replayed-pod")                # d
    second.step()
    second.step()
    wf = store.get("Workflow", "default", "replayed")
    assert wf["status"]["phase"] == "Succeeded"
    assert [n for n in ex1.started + ex2.started if "pod" in n].count(ex1.started[0]) == 1

    # The first runner wakes up: its next write is refused, and it lets the workflow go.
    first.step()
    assert ("default", "replayed") not in first.ops


def test_a_running_pod_is_run_again_after_a_crash(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    store.create(build_workflow(yaml.safe_load(WF), namespace="default", lookup=store_lookup(store)))
    first, ex1 = make(tmp_path, "first", lease=0.2)
    first.claim("default", "replayed")
    first.step()
    assert any("pod" in p for p in ex1.started)
    time.sleep(0.3)
    second, ex2 = make(tmp_path, "second")
    second.claim("default", "replayed")
    second.step()
    assert [p for p in ex2.started if "pod" in p] == [p for p in ex1.started if "pod" in p]
    assert by_display(store)["a"]["phase"] == "Running"


def test_a_live_lease_is_not_taken_and_writes_are_fenced(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    store.create(build_workflow(yaml.safe_load(WF), namespace="default", lookup=store_lookup(store)))
    first, _ = make(tmp_path, "first")
    assert first.claim("default", "replayed") is not None
    second, _ = make(tmp_path, "second")
    assert second.claim("default", "replayed") is None
    ann = store.get("Workflow", "default", "replayed")["metadata"]["annotations"]
    assert ann["reconciler.io/lease-holder"] == "first"
    # A write made with a stale version is refused: the compare-and-swap the lease relies on.
    rv = store.get("Workflow", "default", "replayed")["metadata"]["resourceVersion"]
    store.patch("Workflow", "default", "replayed", {"metadata": {"labels": {"x": "y"}}})
    try:
        store.patch("Workflow", "default", "replayed", {"metadata": {"annotations": {"a": "b"}}}, resource_version=rv)
        raise AssertionError("stale write accepted")
    except Conflict:
        pass


MUTEX_STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: guarded-}
spec:
  entrypoint: main
  templates:
  - name: main
    synchronization:
      mutexes: [{name: deploy}]
    steps:
    - - {name: one, template: pod}
    - - {name: two, template: pod}
  - name: pod
    container: {image: alpine:3, command: [echo, hi]}
"""


def test_a_steps_template_mutex_admits_one_at_a_time(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    names = [store.create(build_workflow(yaml.safe_load(MUTEX_STEPS), namespace="default"))["metadata"]["name"]
             for _ in range(2)]
    runner, ex = make(tmp_path, "only")
    for name in names:
        runner.claim("default", name)
    runner.step()
    assert len(ex.jobs) == 1
    first = next(iter(ex.jobs.values())).workflow_name
    other = next(n for n in names if n != first)
    waiting = store.get("Workflow", "default", other)["status"]["nodes"][other]
    assert waiting["message"] == "Waiting for mutex deploy, 1/1 held"
    for _ in range(2):
        ex.finish(f"{first}-pod")
        runner.step()
        runner.step()
    assert store.get("Workflow", "default", first)["status"]["phase"] == "Succeeded"
    runner.step()
    assert {j.workflow_name for j in ex.jobs.values()} == {other}

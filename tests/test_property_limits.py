"""Property: concurrency limits hold for any DAG, and every node still runs.

Hypothesis draws a random DAG (2-12 tasks, each depending on random earlier ones, random
durations), random limits (workflow `parallelism`, the DAG template's `parallelism`, a
template-level semaphore of size 1-3 sized by a ConfigMap, a template-level mutex, a
workflow-level semaphore and the namespace cap) and 1-3 workflows sharing those locks. They are
driven by the real `WorkflowRunner` and the real SQLite store, but pods run on a simulated
executor in virtual time: a pod "runs" for the DURATION its environment names, and polling moves
the virtual clock to the next pod end, so an example takes milliseconds instead of seconds.

Each limit is checked twice: on what really ran (the executor records when each pod starts and
ends, and the test computes the most pods running at once in each group a limit applies to), and
on what the store shows at every instant (after every write to a workflow, no more pods or
workflows are recorded Running than a limit allows).
"""

from __future__ import annotations

import heapq
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.artifacts import LocalArtifactRepository
from reconciler.engine.submission import build_workflow, store_lookup
from reconciler.executors.base import SUCCEEDED, Executor, PodJob, PodResult
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store

NS = "default"
SEM_CM, SEM_KEY = "limits", "template"
WF_SEM_KEY = "workflow"


class VirtualClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class PodRun:
    workflow: str
    node_id: str
    pod_name: str
    started: float
    finished: float


class SimulatedExecutor(Executor):
    """Pods that take DURATION virtual seconds; `poll(timeout)` is where virtual time passes.

    Like a real executor's poll, it waits at most `timeout`: if no pod ends by then the clock moves
    by `timeout` and nothing is returned; else the clock moves to the first end and every pod
    ending then is returned."""

    name = "simulated"

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._ends: list[tuple[float, int, str]] = []   # heap of (end time, sequence, node id)
        self._jobs: dict[str, tuple[PodJob, float]] = {}
        self._seq = 0
        self.runs: list[PodRun] = []

    def start(self, job: PodJob) -> None:
        assert job.node_id not in self._jobs, f"{job.node_id} started twice"
        duration = float(job.env.get("DURATION", "1"))
        self._jobs[job.node_id] = (job, self.clock.now)
        self._seq += 1
        heapq.heappush(self._ends, (self.clock.now + duration, self._seq, job.node_id))

    def kill(self, key: tuple[str, str], reason: str = "") -> None:
        raise AssertionError(f"nothing should be killed here ({key}: {reason})")

    def poll(self, timeout: float) -> list[PodResult]:
        if not self._ends:
            self.clock.now += max(timeout, 0.0)
            return []
        first = self._ends[0][0]
        if first > self.clock.now + timeout:
            self.clock.now += max(timeout, 0.0)
            return []
        self.clock.now = max(self.clock.now, first)
        out = []
        while self._ends and self._ends[0][0] <= self.clock.now:
            _, _, node_id = heapq.heappop(self._ends)
            job, started = self._jobs.pop(node_id)
            self.runs.append(PodRun(job.workflow_name, node_id, job.pod_name, started, self.clock.now))
            log = job.scratch_dir / "main.log"
            out.append(PodResult(node_id, SUCCEEDED, 0, "", "", log, dict.fromkeys(job.output_parameter_paths),
                                 {a.name: None for a in job.output_artifacts}, started, self.clock.now,
                                 namespace=job.namespace))
        return out

    def running(self) -> set[tuple[str, str]]:
        return {job.key for job, _ in self._jobs.values()}

    def close(self) -> None:
        self._jobs.clear()
        self._ends.clear()


# ---- the random workflows -------------------------------------------------------------------------
KINDS = ("plain", "mutex", "mutex-v3", "sem", "sem-v3", "both")


def _task_template(kind: str) -> dict:
    tmpl: dict = {
        "name": kind,
        "inputs": {"parameters": [{"name": "d"}]},
        "container": {"image": "busybox", "command": ["true"],
                      "env": [{"name": "DURATION", "value": "{{inputs.parameters.d}}"}]},
    }
    mutex = {"name": "guard"}
    sem = {"configMapKeyRef": {"name": SEM_CM, "key": SEM_KEY}}
    sync = {
        "plain": None,
        "mutex": {"mutexes": [mutex]},
        "mutex-v3": {"mutex": mutex},
        "sem": {"semaphores": [sem]},
        "sem-v3": {"semaphore": sem},
        "both": {"mutexes": [mutex], "semaphores": [sem]},
    }[kind]
    if sync:
        tmpl["synchronization"] = sync
    return tmpl


@dataclass
class Scenario:
    tasks: list[tuple[str, list[int], float]]   # (kind, earlier tasks it depends on, duration)
    workflows: int
    calls: int                  # how many times the entrypoint calls the random DAG, in parallel
    wf_parallelism: int | None
    dag_parallelism: int | None
    sem_size: int
    wf_sem_size: int | None     # workflow-level semaphore (spec.synchronization), if any
    max_running: int | None     # namespace cap
    runners: int                # runners sharing the store, each driving some of the workflows

    def workflow(self, index: int) -> dict:
        dag_tasks = []
        for i, (kind, deps, duration) in enumerate(self.tasks):
            task = {"name": f"t{i}", "template": kind,
                    "arguments": {"parameters": [{"name": "d", "value": f"{duration:g}"}]}}
            if deps:
                task["dependencies"] = [f"t{d}" for d in deps]
            dag_tasks.append(task)
        inner: dict = {"name": "inner", "dag": {"tasks": dag_tasks}}
        if self.dag_parallelism:
            inner["parallelism"] = self.dag_parallelism
        spec: dict = {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": [{"name": f"c{c}", "template": "inner"} for c in range(self.calls)]}},
                inner,
                *[_task_template(kind) for kind in sorted({k for k, _, _ in self.tasks})],
            ],
        }
        if self.wf_parallelism:
            spec["parallelism"] = self.wf_parallelism
        if self.wf_sem_size is not None:
            spec["synchronization"] = {"semaphore": {"configMapKeyRef": {"name": SEM_CM, "key": WF_SEM_KEY}}}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": f"w{index}"}, "spec": spec}


@st.composite
def scenarios(draw) -> Scenario:
    n = draw(st.integers(2, 12))
    tasks = []
    for i in range(n):
        deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 3)))) if i else []
        kind = draw(st.sampled_from(KINDS))
        duration = draw(st.sampled_from([0.5, 1, 1.5, 2, 3, 5]))
        tasks.append((kind, deps, duration))
    return Scenario(
        tasks=tasks,
        workflows=draw(st.integers(1, 3)),
        calls=draw(st.integers(1, 2)),
        wf_parallelism=draw(st.none() | st.integers(1, 4)),
        dag_parallelism=draw(st.none() | st.integers(1, 3)),
        sem_size=draw(st.integers(1, 3)),
        wf_sem_size=draw(st.none() | st.integers(1, 2)),
        max_running=draw(st.none() | st.integers(1, 2)),
        runners=draw(st.integers(1, 2)),
    )


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant; one ending at t and one starting at t do not overlap."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def groups_of(sc: Scenario, workflow: str, node: dict) -> list[tuple]:
    """The groups a pod node counts in, one per limit that applies to it."""
    call, task = node["name"].split(".")[1:]   # w0.c1.t3
    kind = sc.tasks[int(task[1:])][0]
    out = [("workflow", workflow), ("dag", workflow, call)]
    if kind.startswith("mutex") or kind == "both":
        out.append(("mutex",))
    if kind.startswith("sem") or kind == "both":
        out.append(("sem",))
    return out


def limit_of(sc: Scenario, group: tuple) -> int | None:
    return {"workflow": sc.wf_parallelism, "dag": sc.dag_parallelism, "mutex": 1, "sem": sc.sem_size,
            "workflows": min([c for c in (sc.max_running, sc.wf_sem_size) if c is not None], default=None)}[group[0]]


def check_store(sc: Scenario, store, names: list[str]) -> None:
    """What anyone reading the store sees at this instant respects every limit too: no more pods
    (or workflows) recorded Running than the limit allows."""
    counts: dict[tuple, int] = defaultdict(int)
    for name in names:
        status = store.get("Workflow", NS, name).get("status") or {}
        if status.get("phase") == "Running":
            counts["workflows",] += 1
        for node in (status.get("nodes") or {}).values():
            if node["type"] == "Pod" and node["phase"] == "Running":
                for group in groups_of(sc, name, node):
                    counts[group] += 1
    for group, count in counts.items():
        limit = limit_of(sc, group)
        assert limit is None or count <= limit, f"{count} Running in the store for {group}, limit {limit}: {sc}"


class CheckedStore:
    """The store, checked by `check_store` after every write to a Workflow: what a client polling
    the store could see at any instant, not only between the runner's steps."""

    def __init__(self, store, check) -> None:
        self._store = store
        self._check = check

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def patch(self, kind: str, *args, **kwargs):
        out = self._store.patch(kind, *args, **kwargs)
        if kind == "Workflow":
            self._check()
        return out

    def update(self, obj: dict, *args, **kwargs):
        out = self._store.update(obj, *args, **kwargs)
        if obj.get("kind") == "Workflow":
            self._check()
        return out


def run_scenario(sc: Scenario, home: Path) -> tuple[dict[str, dict], list[PodRun]]:
    """Run every workflow of the scenario to its end, checking the store after every write;
    returns (final workflows, every pod run)."""
    names: list[str] = []
    raw = open_store(home / "store.db")
    store = CheckedStore(raw, lambda: check_store(sc, raw, names))
    clock = VirtualClock()
    executors = [SimulatedExecutor(clock) for _ in range(sc.runners)]
    try:
        data = {SEM_KEY: str(sc.sem_size)}
        if sc.wf_sem_size is not None:
            data[WF_SEM_KEY] = str(sc.wf_sem_size)
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": SEM_CM, "namespace": NS},
                      "data": data})
        for i in range(sc.workflows):
            wf = build_workflow(sc.workflow(i), namespace=NS, lookup=store_lookup(store))
            names.append(store.create(wf)["metadata"]["name"])
        runners = []
        for i, executor in enumerate(executors):
            runner = WorkflowRunner(store, executor, LocalArtifactRepository(home / "art"), home, clock=clock,
                                    identity=f"runner-{i}", max_running=sc.max_running)
            # With no pod running the runner sleeps `timeout` real seconds; in virtual time that
            # wait is the clock moving on.
            runner._idle = executor.poll
            runners.append(runner)
        for i, name in enumerate(names):
            assert runners[i % len(runners)].claim(NS, name) is not None
        for _ in range(20_000):
            busy = [r for r in runners if r.ops]
            if not busy:
                break
            for runner in busy:
                runner.step()
        else:
            raise AssertionError("workflows did not finish: " + ", ".join(
                f"{k[1]}={op.status.get('phase')} {op.status.get('message', '')}"
                for r in runners for k, op in r.ops.items()))
        runs = [run for executor in executors for run in executor.runs]
        return {name: store.get("Workflow", NS, name) for name in names}, runs
    finally:
        for executor in executors:
            executor.close()
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
# Found by this test: a node that finished freed its semaphore slot (judged "stale" from the
# runner's memory) before its end was persisted, so the store showed 2 Running for a size of 1.
@example(Scenario(tasks=[("mutex", [], 1), ("sem", [], 0.5), ("sem", [0], 0.5)], workflows=2, calls=1,
                  wf_parallelism=None, dag_parallelism=None, sem_size=1, wf_sem_size=None, max_running=None,
                  runners=1))
# The same for the namespace cap: two workflows, one slot.
@example(Scenario(tasks=[("plain", [], 1.5), ("plain", [0], 2)], workflows=2, calls=1, wf_parallelism=None,
                  dag_parallelism=None, sem_size=1, wf_sem_size=None, max_running=1, runners=1))
def test_limits_hold_and_every_node_runs(sc: Scenario) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        final, runs = run_scenario(sc, Path(tmp))

    # Every workflow succeeded and every task ran exactly once.
    for name, wf in final.items():
        status = wf["status"]
        pods = [n for n in status["nodes"].values() if n["type"] == "Pod"]
        assert status["phase"] == "Succeeded", (name, status.get("message"))
        assert len(pods) == len(sc.tasks) * sc.calls
        assert all(n["phase"] == "Succeeded" for n in pods)
        assert not any(n.get("message") for n in pods), [n.get("message") for n in pods]
    assert len(runs) == len(sc.tasks) * sc.calls * sc.workflows
    assert len({(r.workflow, r.node_id) for r in runs}) == len(runs)

    # When the pods really ran (as the executor saw them), per group a limit applies to.
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for r in runs:
        node = final[r.workflow]["status"]["nodes"][r.node_id]
        assert node["startedAtUnix"] == r.started and node["finishedAtUnix"] == r.finished
        for group in groups_of(sc, r.workflow, node):
            groups[group].append((r.started, r.finished))
    # Workflow-level limits (the namespace cap, the workflow semaphore): the workflows' own times.
    groups["workflows",] = [(wf["status"]["startedAtUnix"], wf["status"]["finishedAtUnix"]) for wf in final.values()]
    for group, spans in groups.items():
        limit = limit_of(sc, group)
        most = max_overlap(spans)
        assert limit is None or most <= limit, (group, most, limit, sc)
        if group == ("mutex",):
            assert most == 1


def test_locks_of_a_workflow_taken_over_from_a_dead_runner_are_released_at_its_end() -> None:
    """A runner that carries on a workflow whose first runner died holds that workflow's
    workflow-level locks (namespace cap, semaphore) without having taken them itself; it must still
    free them when the workflow ends, rather than leave them to be found stale."""
    sc = Scenario(tasks=[("plain", [], 1), ("mutex", [0], 1)], workflows=1, calls=1, wf_parallelism=None,
                  dag_parallelism=None, sem_size=1, wf_sem_size=1, max_running=2, runners=1)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = open_store(home / "store.db")
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": SEM_CM, "namespace": NS},
                      "data": {SEM_KEY: "1", WF_SEM_KEY: "1"}})
        name = store.create(build_workflow(sc.workflow(0), namespace=NS, lookup=store_lookup(store)))["metadata"]["name"]
        clock = VirtualClock()

        def runner(identity: str) -> WorkflowRunner:
            executor = SimulatedExecutor(clock)
            r = WorkflowRunner(store, executor, LocalArtifactRepository(home / "art"), home, clock=clock,
                               identity=identity, max_running=2)
            r._idle = executor.poll
            return r

        first = runner("first")
        assert first.claim(NS, name) is not None
        first.step()
        assert store.get("Workflow", NS, name)["status"]["phase"] == "Running"
        holders = {lk["metadata"]["name"]: lk["status"]["holders"] for lk in store.list("Lock", NS)}
        assert holders["workflows"] == holders["semaphore.limits.workflow"] == [f"{NS}/{name}"]

        clock.now += 60                      # the first runner died: its lease runs out
        second = runner("second")
        assert second.claim(NS, name) is not None
        while second.ops:
            second.step()
        assert store.get("Workflow", NS, name)["status"]["phase"] == "Succeeded"
        holders = {lk["metadata"]["name"]: lk["status"]["holders"] for lk in store.list("Lock", NS)}
        assert holders == {"workflows": [], "semaphore.limits.workflow": [], "mutex.guard": []}, holders
        store.close()

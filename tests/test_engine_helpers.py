"""Helpers shared by the tests/test_engine_*.py files (this module holds no tests).

Every engine test runs a real workflow end to end: the real `WorkflowRunner`, by default the real
`LocalProcessExecutor` (one subprocess per step, bubblewrap where it can run), a real SQLite store
and a local artifact repository, all under the test's tmp_path. Assertions are made on the object
persisted in the store, not on the runner's in-memory copy. `run(..., executor=...)` takes any
executor, so the same table of workflows runs on the in-process executor (tests/engine_inprocess.py,
no processes) and on the local one."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from reconciler.artifacts import LocalArtifactRepository
from reconciler.engine.submission import build_workflow, store_lookup
from reconciler.executors import LocalProcessExecutor
from reconciler.executors.base import Executor
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store

NS = "default"


def run(tmp_path: Path, text: str, params: dict[str, str] | None = None, templates: list[str] | tuple = (),
        limit: float = 20.0, executor: Executor | None = None) -> dict:
    """Store the WorkflowTemplates in `templates`, submit the Workflow in `text` with `params` as
    `-p` overrides, run it to its end and return the Workflow object as persisted.

    A workflow that has not finished after `limit` seconds fails the test (rather than hanging
    the suite). `executor` (closed here) defaults to a new LocalProcessExecutor."""
    store = open_store(tmp_path / "store.db")
    executor = executor or LocalProcessExecutor()
    try:
        for tmpl_text in templates:
            tmpl = yaml.safe_load(tmpl_text)
            tmpl.setdefault("apiVersion", "argoproj.io/v1alpha1")
            tmpl.setdefault("kind", "WorkflowTemplate")
            tmpl.setdefault("metadata", {})["namespace"] = NS
            store.create(tmpl)
        doc = yaml.safe_load(text)
        doc.setdefault("apiVersion", "argoproj.io/v1alpha1")
        doc.setdefault("kind", "Workflow")
        wf = store.create(build_workflow(doc, namespace=NS, parameters=params or {}, lookup=store_lookup(store)))
        name = wf["metadata"]["name"]
        runner = WorkflowRunner(store, executor, LocalArtifactRepository(tmp_path / "art"), tmp_path)
        stop = threading.Event()
        timer = threading.Timer(limit, stop.set)
        timer.start()
        try:
            runner.run(NS, name, stop=stop)
        finally:
            timer.cancel()
        wf = store.get("Workflow", NS, name)
        status = wf["status"]
        assert status["phase"] in ("Succeeded", "Failed", "Error"), (
            f"workflow {name} still {status['phase']} after {limit}s; nodes: "
            + ", ".join(f"{n['displayName']}={n['phase']}" for n in status.get("nodes", {}).values()))
        return wf
    finally:
        executor.close()


def nodes(wf: dict) -> list[dict]:
    return list(wf["status"]["nodes"].values())


def node(wf: dict, display: str) -> dict:
    """The one node with this displayName."""
    found = [n for n in nodes(wf) if n["displayName"] == display]
    assert len(found) == 1, f"{len(found)} nodes named {display!r}: {sorted(n['displayName'] for n in nodes(wf))}"
    return found[0]


def maybe_node(wf: dict, display: str) -> dict | None:
    found = [n for n in nodes(wf) if n["displayName"] == display]
    assert len(found) <= 1, f"{len(found)} nodes named {display!r}"
    return found[0] if found else None


def pods(wf: dict) -> list[dict]:
    return [n for n in nodes(wf) if n["type"] == "Pod"]


def children(wf: dict, parent: dict) -> list[dict]:
    all_nodes = wf["status"]["nodes"]
    return [all_nodes[c] for c in parent.get("children", [])]


def result(wf: dict, display: str) -> str:
    return node(wf, display)["outputs"]["result"]


def out_param(n: dict, name: str) -> str:
    for p in (n.get("outputs") or {}).get("parameters", []):
        if p["name"] == name:
            return p["value"]
    raise AssertionError(f"node {n['displayName']!r} has no output parameter {name!r}: {n.get('outputs')}")


def in_param(n: dict, name: str) -> str:
    for p in (n.get("inputs") or {}).get("parameters", []):
        if p["name"] == name:
            return p["value"]
    raise AssertionError(f"node {n['displayName']!r} has no input parameter {name!r}: {n.get('inputs')}")


def interval(n: dict) -> tuple[float, float]:
    return n["startedAtUnix"], n["finishedAtUnix"]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an interval ending exactly when another starts
    does not overlap it)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(f, -1) for _, f in intervals], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


# A template `echo` printing its input `m`, and a workflow whose entrypoint `main` is a steps
# template built from `steps` (YAML of the step groups, indented under `steps:`).
ECHO = """
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [sh, -c, "echo '{{inputs.parameters.m}}'"]}
"""


def steps_wf(name: str, steps: str, extra: str = "", args: str = "") -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
{args}
  templates:
  - name: main
    steps:
{steps}
{ECHO}
{extra}
"""


def test_max_overlap_helper() -> None:
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 4)]) == 3
    assert max_overlap([(0, 2), (1, 3), (2.5, 4)]) == 2

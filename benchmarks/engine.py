"""Engine overhead per node, on this machine.

    python benchmarks/engine.py            # all figures
    python benchmarks/engine.py --quick    # smaller runs

Prints:
  floor      median wall time of spawning `sh -c true` from Python (subprocess.run)
  chain-50   a 50-task DAG chain of `sh -c true` on the local executor: wall/node - floor
  fanin-200  200 parallel `sh -c true` tasks joined by one: wall/node - floor
             per isolation mode: bwrap = the container-like sandbox (own pid namespace, private
             /tmp, unprivileged uid, cgroup limits, scratch removed after the step); legacy =
             the sandbox before issue 10 (an overlay view of / only); tmpdir = none
  dag-N      an N-node layered DAG on the in-process no-op executor, so only the engine
             (state machine + SQLite persistence) is timed: seconds to completion, peak RSS
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def floor_ms(runs: int = 100) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def dag_workflow(name: str, tasks: list[dict]) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": tasks}},
                {"name": "noop", "container": {"image": "busybox", "command": ["sh", "-c", "true"]}},
            ],
        },
    }


def chain(n: int) -> list[dict]:
    return [{"name": f"t{i}", "template": "noop", **({"depends": f"t{i-1}"} if i else {})} for i in range(n)]


def fan_in(width: int) -> list[dict]:
    tasks = [{"name": f"w{i}", "template": "noop"} for i in range(width)]
    tasks.append({"name": "join", "template": "noop", "dependencies": [f"w{i}" for i in range(width)]})
    return tasks


def layered(n: int, width: int = 100, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    tasks = []
    layers = n // width
    for layer in range(layers):
        for i in range(width):
            task = {"name": f"n{layer}-{i}", "template": "noop"}
            if layer:
                deps = sorted({rng.randrange(width) for _ in range(2)})
                task["depends"] = " && ".join(f"n{layer-1}-{d}" for d in deps)
            tasks.append(task)
    return tasks


def run_workflow(wf: dict, executor_kind: str, isolation: str = "bwrap") -> tuple[float, dict]:
    from reconciler.artifacts import LocalArtifactRepository
    from reconciler.engine.submission import build_workflow
    from reconciler.executors import InProcessExecutor, LocalProcessExecutor
    from reconciler.executors.settings import StepSettings
    from reconciler.runner import WorkflowRunner
    from reconciler.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = open_store(home / "store.db")
        legacy = isolation == "legacy"
        executor = InProcessExecutor() if executor_kind == "inprocess" else LocalProcessExecutor(
            settings=StepSettings(isolation="bwrap" if legacy else isolation, legacy=legacy))
        runner = WorkflowRunner(store, executor, LocalArtifactRepository(home / "artifacts"), home, keep_scratch=legacy)
        created = store.create(build_workflow(wf, namespace="default"))
        start = time.perf_counter()
        final = runner.run("default", created["metadata"]["name"])
        elapsed = time.perf_counter() - start
        executor.close()
        store.close()
    return elapsed, final["status"]


def per_node(kind: str, n: int, tasks: list[dict], floor: float, isolation: str) -> str:
    elapsed, status = run_workflow(dag_workflow(kind, tasks), "local", isolation)
    assert status["phase"] == "Succeeded", status.get("message")
    pods = len(tasks)
    over = elapsed * 1000 / pods - floor
    return f"{kind:<10} {isolation:<7} {pods:>6} nodes  {elapsed:7.2f} s  {over:6.2f} ms/node above floor"


def big_dag_child(n: int) -> None:
    """Run in a fresh process so that peak RSS belongs to this size alone."""
    elapsed, status = run_workflow(dag_workflow("big", layered(n)), "inprocess")
    assert status["phase"] == "Succeeded", status.get("message")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"nodes": n, "seconds": elapsed, "peak_mb": peak_mb}))


def big_dag(n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        big_dag_child(args.child)
        return
    from reconciler.executors import probe_bwrap

    floor = floor_ms(30 if args.quick else 100)
    print(f"floor      median spawn of `sh -c true`: {floor:.2f} ms")
    modes = ["bwrap", "legacy", "tmpdir"] if probe_bwrap()[0] else ["tmpdir"]
    for isolation in modes:
        print(per_node("chain-50", 50, chain(50), floor, isolation))
        print(per_node("fanin-200", 201, fan_in(50 if args.quick else 200), floor, isolation))
    sizes = [2000, 4000] if args.quick else [10_000, 20_000]
    results = [big_dag(n) for n in sizes]
    for r in results:
        print(f"dag-{r['nodes']:<6} in-process no-op executor: {r['seconds']:6.2f} s  "
              f"({r['seconds'] * 1e6 / r['nodes']:.0f} us/node)  peak RSS {r['peak_mb']:.0f} MB")
    print(f"scaling    {sizes[1]} vs {sizes[0]} nodes: {results[1]['seconds'] / results[0]['seconds']:.2f}x time")


if __name__ == "__main__":
    main()

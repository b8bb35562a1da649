"""Many workflows under a namespace cap, driven by one daemon loop.

    python benchmarks/concurrency.py            # 200 workflows x 10 nodes, cap 20
    python benchmarks/concurrency.py --quick    # 50 workflows

All workflows are stored at once (as `reconciler submit` without --wait does), the cap is set as a
user would (`reconciler semaphore set reconciler-limits/maxRunningWorkflows 20`: the ConfigMap),
and one `WorkflowRunner.serve()` (the loop of `reconciler up`) drives them all, in a thread, until
every workflow has finished. Each workflow is a 10-node DAG of `sh -c true` steps:
t0 -> t1..t4 -> t5 -> t6..t8 -> t9.

Prints, per executor (local = real subprocesses, bwrap where it runs; inprocess = no-op pods, so
only the engine, the runner and the SQLite store are timed):
  wall        seconds from starting the loop to the last workflow finished; throughput in nodes/s
  runner cpu  CPU of the runner process (all its threads, children excluded) per node, and of the
              loop's own thread alone
  steps cpu   CPU of the step processes (RUSAGE_CHILDREN) per node
  running     most workflows Running at once: exact, from the stored start/finish times, and as
              sampled from the store every 0.1 s while it ran (both must be <= the cap)
Each run is made in a fresh process so that its resource usage is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NS = "default"
NODES = 10


def workflow(i: int) -> dict:
    deps = {1: [0], 2: [0], 3: [0], 4: [0], 5: [1, 2, 3, 4], 6: [5], 7: [5], 8: [5], 9: [6, 7, 8]}
    tasks = [{"name": f"t{n}", "template": "noop", **({"dependencies": [f"t{d}" for d in deps[n]]} if n else {})}
             for n in range(NODES)]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": f"bench-{i:04d}"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": tasks}},
                {"name": "noop", "container": {"image": "busybox", "command": ["sh", "-c", "true"]}},
            ],
        },
    }


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def run(executor_kind: str, workflows: int, cap: int) -> dict:
    from reconciler.artifacts import LocalArtifactRepository
    from reconciler.engine.submission import build_workflow
    from reconciler.executors import InProcessExecutor, LocalProcessExecutor
    from reconciler.runner import WorkflowRunner
    from reconciler.runner.locks import LIMITS_CONFIGMAP, MAX_RUNNING_KEY
    from reconciler.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = open_store(home / "store.db")
        store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": LIMITS_CONFIGMAP, "namespace": NS},
                      "data": {MAX_RUNNING_KEY: str(cap)}})
        t0 = time.perf_counter()
        for i in range(workflows):
            store.create(build_workflow(workflow(i), namespace=NS))
        submit_s = time.perf_counter() - t0

        executor = InProcessExecutor() if executor_kind == "inprocess" else LocalProcessExecutor()
        runner = WorkflowRunner(store, executor, LocalArtifactRepository(home / "artifacts"), home)
        stop = threading.Event()
        loop_cpu = {}

        def serve() -> None:
            start = time.thread_time()
            runner.serve(stop, grace=5.0)
            loop_cpu["s"] = time.thread_time() - start

        self0 = resource.getrusage(resource.RUSAGE_SELF)
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        thread = threading.Thread(target=serve, name="runner")
        thread.start()
        sampled_max = 0
        while True:
            phases = [(wf.get("status") or {}).get("phase") for wf in store.list_brief("Workflow", NS)]
            sampled_max = max(sampled_max, phases.count("Running"))
            if all(p in ("Succeeded", "Failed", "Error") for p in phases):
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"not finished after 600 s: {phases.count('Running')} running")
            time.sleep(0.1)
        wall = time.perf_counter() - started
        stop.set()
        thread.join()
        executor.close()
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)

        final = store.list("Workflow", NS)
        store.close()
    failed = [wf["metadata"]["name"] for wf in final if wf["status"]["phase"] != "Succeeded"]
    pods = sum(1 for wf in final for n in wf["status"]["nodes"].values() if n["type"] == "Pod")
    spans = [(wf["status"]["startedAtUnix"], wf["status"]["finishedAtUnix"]) for wf in final]
    return {
        "executor": executor_kind,
        "isolation": executor.isolation,
        "workflows": workflows,
        "nodes": pods,
        "failed": failed,
        "submit_s": submit_s,
        "wall_s": wall,
        "self_cpu_s": (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime),
        "loop_cpu_s": loop_cpu["s"],
        "children_cpu_s": (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
        "max_running_exact": max_overlap(spans),
        "max_running_sampled": sampled_max,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(executor_kind: str, workflows: int, cap: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", executor_kind, "--workflows", str(workflows),
                          "--cap", str(cap)], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{executor_kind} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r: dict, cap: int) -> None:
    n = r["nodes"]
    label = f"{r['executor']} ({r['isolation']})" if r["executor"] == "local" else r["executor"]
    print(f"{label}: {r['workflows']} workflows x {NODES} nodes = {n} nodes, cap {cap}"
          + (f"  FAILED: {len(r['failed'])} {r['failed'][:5]}" if r["failed"] else ""))
    print(f"  submit      {r['submit_s']:7.2f} s to store {r['workflows']} workflows")
    print(f"  wall        {r['wall_s']:7.2f} s   throughput {n / r['wall_s']:7.1f} nodes/s")
    print(f"  runner cpu  {r['self_cpu_s']:7.2f} s   {r['self_cpu_s'] * 1000 / n:6.2f} ms/node (process)   "
          f"{r['loop_cpu_s'] * 1000 / n:6.2f} ms/node (loop thread)")
    if r["executor"] == "local":
        print(f"  steps cpu   {r['children_cpu_s']:7.2f} s   {r['children_cpu_s'] * 1000 / n:6.2f} ms/node (children)")
    print(f"  running     at most {r['max_running_exact']} at once (stored times), "
          f"{r['max_running_sampled']} sampled; cap {cap}")
    print(f"  peak RSS    {r['peak_rss_mb']:7.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="50 workflows instead of 200")
    parser.add_argument("--workflows", type=int)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--child", choices=["local", "inprocess"])
    args = parser.parse_args()
    workflows = args.workflows or (50 if args.quick else 200)
    if args.child:
        print(json.dumps(run(args.child, workflows, args.cap)))
        return
    ok = True
    for kind in ("local", "inprocess"):
        r = in_child(kind, workflows, args.cap)
        report(r, args.cap)
        ok &= not r["failed"] and max(r["max_running_exact"], r["max_running_sampled"]) <= args.cap
    if not ok:
        raise SystemExit("FAILED: a workflow failed or the cap was exceeded")


if __name__ == "__main__":
    main()

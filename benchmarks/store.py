"""Store benchmark: small status patches onto a huge workflow, and reading it back.

Targets (DESIGN: checked here, not by timed tests): 10,000 one-node patches onto a 10,000-node
workflow in < 3 s in total; get() of that workflow in < 150 ms.

    python benchmarks/store.py [--nodes 10000] [--patches 10000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reconciler.store import open_store


def make_node(i: int, phase: str = "Running") -> dict:
    # Roughly the ~12 small fields the engine keeps per node.
    return {
        "id": f"wf-bench-{i}",
        "name": f"wf-bench[0].step-{i}",
        "displayName": f"step-{i}",
        "type": "Pod",
        "templateName": "work",
        "phase": phase,
        "boundaryID": "wf-bench",
        "startedAt": "2024-01-01T00:00:00Z",
        "finishedAt": None if phase == "Running" else "2024-01-01T00:01:00Z",
        "progress": "0/1",
        "children": [f"wf-bench-{i + 1}"],
        "outputs": {"parameters": [{"name": "out", "value": str(i)}]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--patches", type=int, default=10_000)
    parser.add_argument("--dir", help="directory for the database (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(args.dir or tmp) / "bench.db")
        nodes = {f"wf-bench-{i}": {k: v for k, v in make_node(i).items() if v is not None}
                 for i in range(args.nodes)}
        wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
              "metadata": {"name": "wf-bench", "namespace": "default", "labels": {"app": "bench"}},
              "spec": {"entrypoint": "main", "templates": [{"name": "work", "container": {"image": "x"}}]},
              "status": {"phase": "Running", "nodes": nodes}}

        t0 = time.perf_counter()
        store.create(wf)
        report(f"create, {args.nodes} nodes", time.perf_counter() - t0)

        t0 = time.perf_counter()
        for i in range(args.patches):
            n = i % args.nodes
            store.patch("Workflow", "default", "wf-bench",
                        {"status": {"phase": "Running", "nodes": {f"wf-bench-{n}": make_node(n, "Succeeded")}}},
                        return_object=False)
        elapsed = time.perf_counter() - t0
        report(f"{args.patches} one-node patches (return_object=False)", elapsed, target=3.0,
               per=elapsed / args.patches)

        t0 = time.perf_counter()
        for i in range(20):
            store.patch("Workflow", "default", "wf-bench",
                        {"status": {"nodes": {f"wf-bench-{i}": make_node(i, "Failed")}}})
        report("one-node patch returning the full object (mean of 20)", (time.perf_counter() - t0) / 20)

        t0 = time.perf_counter()
        for _ in range(10):
            obj = store.get("Workflow", "default", "wf-bench")
        report(f"get, {len(obj['status']['nodes'])} nodes (mean of 10)", (time.perf_counter() - t0) / 10,
               target=0.150)

        obj["status"]["nodes"]["wf-bench-1"]["phase"] = "Error"
        t0 = time.perf_counter()
        store.update(obj)
        report("update of the whole object, 1 node changed", time.perf_counter() - t0)

        t0 = time.perf_counter()
        events = list(store.watch(kind="Workflow", since="1", timeout=0))
        report(f"watch since=1 ({len(events)} event after coalescing)", time.perf_counter() - t0)
        store.close()


def report(what: str, seconds: float, target: float | None = None, per: float | None = None) -> None:
    line = f"{what:<60} {seconds * 1000:10.1f} ms"
    if per is not None:
        line += f"  ({per * 1e6:.0f} us each)"
    if target is not None:
        line += f"  target < {target * 1000:.0f} ms: {'ok' if seconds < target else 'MISSED'}"
    print(line, flush=True)


if __name__ == "__main__":
    main()

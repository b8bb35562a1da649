"""Kubernetes store benchmark against the API-server double (tests/kubedouble): what the client side
costs per call over real HTTP, and what compressing a large workflow's nodes gives. The double is
not a real API server (no etcd, no admission), so the latencies are the store's and the client's
own overhead plus loopback HTTP, a floor for what a cluster costs.

    python benchmarks/kubernetes_store.py [--calls 300] [--nodes 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.store import make_node  # noqa: E402
from reconciler.store.kubernetes import KubernetesStore  # noqa: E402
from reconciler.store.offload import compress_nodes  # noqa: E402
from tests.kubedouble import ApiServerDouble  # noqa: E402


def per_call(label: str, calls: int, fn) -> None:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {elapsed / calls * 1000:8.2f} ms per call ({calls} calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=10_000)
    args = parser.parse_args()
    double = ApiServerDouble()
    store = KubernetesStore(double.api_client())
    store.install_crds()

    def wf(name: str, nodes: dict | None = None) -> dict:
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
               "metadata": {"name": name, "namespace": "bench"}, "spec": {"entrypoint": "main"}}
        if nodes is not None:
            obj["status"] = {"phase": "Running", "nodes": nodes}
        return obj

    store.create(wf("warm"))
    per_call("create a small workflow", args.calls, lambda i: store.create(wf(f"w{i}")))
    per_call("get it", args.calls, lambda i: store.get("Workflow", "bench", f"w{i}"))
    per_call("merge-patch its status (server side)", args.calls,
             lambda i: store.patch("Workflow", "bench", f"w{i}", {"status": {"phase": "Succeeded"}},
                                   return_object=False))
    per_call("list 300 workflows", 20, lambda i: store.list("Workflow", "bench"))

    nodes = {f"n{i}": make_node(i) for i in range(args.nodes)}
    raw = len(json.dumps(nodes, separators=(",", ":")))
    started = time.perf_counter()
    packed = compress_nodes({"status": {"nodes": nodes}}, 0)["status"]["compressedNodes"]
    compress_ms = (time.perf_counter() - started) * 1000
    print(f"{args.nodes}-node status: {raw / 1024:.0f} KiB of JSON -> {len(packed) / 1024:.0f} KiB stored "
          f"({raw / len(packed):.1f}x), compressing took {compress_ms:.0f} ms")
    store.create(wf("big", nodes))
    per_call(f"get the {args.nodes}-node workflow (inflated)", 10, lambda i: store.get("Workflow", "bench", "big"))
    per_call("patch one node of it (read, merge, write)", 10, lambda i: store.patch(
        "Workflow", "bench", "big", {"status": {"nodes": {"n5": {"phase": f"P{i}"}}}}, return_object=False))
    store.close()
    double.close()


if __name__ == "__main__":
    main()

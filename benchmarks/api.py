"""HTTP API benchmark: `GET /api/v1/workflows` on a store of 1,000 finished workflows, and the idle
memory of a `reconciler up` daemon serving the API.

Creates the workflows directly in the store (each with a few pod nodes in its status), starts
`reconciler up --listen 127.0.0.1:PORT` as a subprocess, reads its idle VmRSS, then drives the list
endpoint from a few client threads with keep-alive connections (http.client) for a fixed time and
prints requests per second and latency percentiles (also for one workflow by name, a page of 50, and
the full list while another process writes to the store, which defeats the API's list cache).

    python benchmarks/api.py [--workflows 1000] [--clients 4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from reconciler.store import open_store

TOKEN = "bench-token"
RSS_TARGET_MB = 120


def workflow(i: int, nodes: int) -> dict:
    name = f"bench-{i:05d}"
    start = 1_700_000_000 + i * 60
    status_nodes = {name: {"id": name, "name": name, "displayName": name, "type": "Steps", "phase": "Succeeded",
                           "templateName": "main", "startedAtUnix": start, "finishedAtUnix": start + 30,
                           "children": [f"{name}-{k}" for k in range(nodes)]}}
    for k in range(nodes):
        status_nodes[f"{name}-{k}"] = {
            "id": f"{name}-{k}", "name": f"{name}[{k}].step", "displayName": f"step-{k}", "type": "Pod",
            "phase": "Succeeded", "templateName": "step", "podName": f"{name}-step-{k}", "boundaryID": name,
            "startedAtUnix": start + k, "finishedAtUnix": start + k + 5, "hostNodeName": "local",
            "outputs": {"parameters": [{"name": "result", "value": str(k)}], "exitCode": "0"},
        }
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": name, "namespace": "bench", "labels": {"team": "bench",
                                                                    "workflows.argoproj.io/completed": "true"}},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "size", "value": "big"}]},
                 "templates": [{"name": "main", "steps": [[{"name": f"s{k}", "template": "step"}]
                                                          for k in range(nodes)]},
                               {"name": "step", "container": {"image": "alpine:3", "command": ["echo", "hi"]}}]},
        "status": {"phase": "Succeeded", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:30Z",
                   "startedAtUnix": start, "finishedAtUnix": start + 30, "progress": f"{nodes}/{nodes}",
                   "nodes": status_nodes},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
    return len(body)


def load(port: int, path: str, clients: int, seconds: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    sizes: list[int] = []
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                size = request(conn, path)
                latencies[k].append(time.perf_counter() - t0)
                if not sizes:
                    sizes.append(size)
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    flat = sorted(x for lat in latencies for x in lat)
    pct = lambda p: flat[min(len(flat) - 1, int(p / 100 * len(flat)))] * 1000  # noqa: E731
    return {"requests": len(flat), "rps": len(flat) / elapsed, "p50": pct(50), "p99": pct(99),
            "mean": statistics.mean(flat) * 1000, "bytes": sizes[0] if sizes else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=5, help="pod nodes per workflow")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0, help="per measured endpoint")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="reconciler-api-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        t0 = time.perf_counter()
        with open_store(home / "store.db") as store:
            for i in range(args.workflows):
                store.create(workflow(i, args.nodes))
        print(f"store: {args.workflows} finished workflows x {args.nodes} pod nodes created in "
              f"{time.perf_counter() - t0:.1f}s")

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env.update(RECONCILER_HOME=str(home), RECONCILER_API_TOKEN=TOKEN)
        log = open(Path(tmp) / "up.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--listen", f"127.0.0.1:{port}",
                                 "--log-level", "WARNING"], stdout=log, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"daemon did not start:\n{(Path(tmp) / 'up.log').read_text()[-2000:]}")
                time.sleep(0.1)
            time.sleep(2.0)  # let start-up settle: the runner's first scan, the scheduler
            idle = rss_mb(proc.pid)
            print(f"daemon idle RSS with the API on: {idle:.0f} MB (target <= {RSS_TARGET_MB} MB)"
                  f"{'' if idle <= RSS_TARGET_MB else '  OVER TARGET'}")

            cases = [("GET /api/v1/workflows (all 1,000, no nodes)", "/api/v1/workflows"),
                     ("GET /api/v1/workflows?namespace=bench&limit=50", "/api/v1/workflows?namespace=bench&limit=50"),
                     ("GET /api/v1/workflows/bench/bench-00500 (with nodes)", "/api/v1/workflows/bench/bench-00500")]
            for title, path in cases:
                r = load(port, path, args.clients, args.seconds)
                print(f"{title}: {r['rps']:.1f} req/s with {args.clients} keep-alive clients; latency p50 "
                      f"{r['p50']:.1f} ms, p99 {r['p99']:.1f} ms ({r['requests']} requests, {r['bytes'] / 1024:.0f} "
                      "KiB each)")
            # A busy store: a writer changes a ConfigMap 50 times a second (as a runner records progress),
            # so list replies can rarely be answered from the API's cache and are read and encoded again.
            stop_writing = threading.Event()

            def writer() -> None:
                with open_store(home / "store.db") as w:
                    w.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "tick", "namespace": "bench"}, "data": {"n": "0"}})
                    n = 0
                    while not stop_writing.wait(0.02):
                        n += 1
                        w.patch("ConfigMap", "bench", "tick", {"data": {"n": str(n)}}, return_object=False)

            writing = threading.Thread(target=writer)
            writing.start()
            try:
                r = load(port, "/api/v1/workflows", args.clients, args.seconds)
            finally:
                stop_writing.set()
                writing.join()
            print(f"GET /api/v1/workflows while the store changes 50x/s: {r['rps']:.1f} req/s; latency p50 "
                  f"{r['p50']:.1f} ms, p99 {r['p99']:.1f} ms ({r['requests']} requests)")
            print(f"daemon RSS after the load: {rss_mb(proc.pid):.0f} MB")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

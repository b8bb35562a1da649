"""Sizes benchmark (issue 10): what large input costs a real `reconciler up --repo`.

Prints, for a daemon polling its repository every second: the time a step printing 100 MB takes,
the daemon's peak RSS after it, the time and size of `GET .../log` for it; then, after a 50 MB file
is committed to the dev branch and removed again, the Environment object's stored size and the
daemon's idle CPU (share of one core over `--idle` seconds of no-change passes).

    python benchmarks/sizes.py [--idle 20] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "bench-token-0123456789"
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
CONFIG = """\
apiVersion: reconciler.io/v1
kind: ReconcilerConfig
environments:
  dev: {branch: dev, namespace: bench-dev, path: workflows}
"""
TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: etl}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [echo, hi], resources: {limits: {cpu: 100m, memory: 64Mi}}}
"""
FLOOD = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: flood}
spec:
  entrypoint: main
  templates:
  - name: main
    script:
      image: python:3.12
      command: [python]
      source: |
        import sys
        line = "x" * 1023 + "\\n"
        for _ in range(100 * 1024):
            sys.stdout.write(line)
"""


def git(work: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=work, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def call(port: int, method: str, path: str, body: dict | None = None) -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310 - our own daemon on loopback
        return resp.read()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def wait_until(predicate, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle passes to measure")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-sizes-"))
    bare, work, home = root / "remote.git", root / "work", root / "home"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True, env=GIT_ENV)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, env=GIT_ENV, capture_output=True)
    git(work, "checkout", "-q", "-b", "main")
    (work / "workflows").mkdir()
    (work / "reconciler.yaml").write_text(CONFIG)
    (work / "workflows" / "etl.yaml").write_text(TEMPLATE)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "dev")
    git(work, "push", "-q", "origin", "dev")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RECONCILER_HOME=str(home), RECONCILER_API_TOKEN=TOKEN)
    log = open(root / "up.log", "wb")  # noqa: SIM115 - open for the daemon's whole life
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--repo", str(bare),
                             "--poll-interval", "1", "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log, env=env)
    try:
        def ready() -> bool:
            try:
                return json.loads(call(port, "GET", "/api/v1/sync/status")).get("firstPassDone", False)
            except OSError:
                return False
        wait_until(ready, 60)

        started = time.perf_counter()
        call(port, "POST", "/api/v1/workflows/default", {"manifest": FLOOD})
        wait_until(lambda: json.loads(call(port, "GET", "/api/v1/workflows/default/flood"))
                   .get("status", {}).get("phase") in ("Succeeded", "Failed", "Error"))
        step = time.perf_counter() - started
        started = time.perf_counter()
        text = call(port, "GET", "/api/v1/workflows/default/flood/log")
        log_seconds = time.perf_counter() - started
        print(f"step printing 100 MB: {step:.1f} s to finish; daemon peak RSS {vm_hwm_mb(proc.pid):.0f} MB")
        print(f"GET .../log: {log_seconds:.2f} s, {len(text) / (1 << 20):.1f} MiB")

        def synced_at(sha: str) -> bool:
            envs = json.loads(call(port, "GET", "/api/v1/sync/status"))["items"]
            return any(e["name"] == "dev" and (e["head"] == sha) for e in envs)

        (work / "workflows" / "huge.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n  blob: |\n"
            + "".join(f"    {'z' * 1018}{i}\n" for i in range(50 * 1024)))
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "50 MB")
        git(work, "push", "-q", "origin", "dev")
        wait_until(lambda: synced_at(git(work, "rev-parse", "HEAD")))
        git(work, "rm", "-q", "workflows/huge.yaml")
        git(work, "commit", "-q", "-m", "remove it")
        git(work, "push", "-q", "origin", "dev")
        wait_until(lambda: synced_at(git(work, "rev-parse", "HEAD")))
        time.sleep(2)
        with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
            size, rv = db.execute("SELECT length(body), rv FROM objects WHERE kind='Environment' AND name='dev'"
                                  ).fetchone()
        before, started = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle)
        cpu = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
        with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
            (rv_after,) = db.execute("SELECT rv FROM objects WHERE kind='Environment' AND name='dev'").fetchone()
        print(f"after a 50 MB file committed and removed: Environment dev stored in {size / 1024:.1f} KiB; "
              f"{'not rewritten' if rv_after == rv else 'rewritten'} over {args.idle:.0f} s of 1 s polls; "
              f"idle daemon CPU {cpu * 100:.1f}% of a core; peak RSS {vm_hwm_mb(proc.pid):.0f} MB")
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


if __name__ == "__main__":
    main()

"""GitOps sync benchmark: a repository of 500 WorkflowTemplates/CronWorkflows in 3 environments.

Prints the git fetch time, the first pass (creates 3 x 500 objects), a no-change pass (what the
daemon does every poll interval), a pass after a commit changing 10 files on one branch, and a
no-change pass in a fresh process-like Reconciler (what `reconciler sync` costs, caches cold).

    python benchmarks/sync.py [--objects 500] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from reconciler.store import open_store
from reconciler.sync import Reconciler, SyncLoop

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")

CONFIG = """\
apiVersion: reconciler.io/v1
kind: ReconcilerConfig
environments:
  dev: {branch: dev, namespace: bench-dev, path: workflows, parameters: {size: small}}
  qa: {branch: qa, namespace: bench-qa, path: workflows}
  prod: {branch: main, namespace: bench-prod, path: workflows, limits: {maxRunningWorkflows: 10}}
"""

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: tmpl-{i}
  labels: {{team: bench}}
spec:
  entrypoint: main
  arguments:
    parameters: [{{name: size, value: big}}]
  templates:
  - name: main
    dag:
      tasks:
      - {{name: a, template: step}}
      - {{name: b, template: step, depends: a}}
  - name: step
    container:
      image: python:3.12-slim
      command: [python, -c, "print({i}, '{marker}')"]
      resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}
"""

CRON = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata:
  name: cron-{i}
spec:
  schedule: "{minute} 3 * * *"
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      script:
        image: python:3.12-slim
        source: print({i}, '{marker}')
        resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}
"""


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def write_object(work: Path, i: int, marker: str) -> None:
    folder = work / "workflows" / f"group-{i % 20:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    if i % 3 == 2:
        (folder / f"cron-{i}.yaml").write_text(CRON.format(i=i, minute=i % 60, marker=marker))
    else:
        (folder / f"tmpl-{i}.yaml").write_text(TEMPLATE.format(i=i, marker=marker))


def make_repo(root: Path, objects: int) -> tuple[Path, Path]:
    bare, work = root / "remote.git", root / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=root)
    git("clone", "-q", str(bare), str(work), cwd=root)
    git("checkout", "-q", "-b", "main", cwd=work)
    (work / "reconciler.yaml").write_text(CONFIG)
    for i in range(objects):
        write_object(work, i, "v1")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "initial", cwd=work)
    for branch in ("main", "qa", "dev"):
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return bare, work


def timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"{label:<52} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        bare, work = timed(f"make repository ({args.objects} objects, 3 branches)",
                           lambda: make_repo(root, args.objects))
        home = root / "home"
        with open_store(home / "store.db") as store:
            loop = SyncLoop(store, str(bare), home, interval=30)
            rec = loop.reconciler
            fetch = timed("git fetch (first: clone into the data dir)", rec.fetch)
            assert fetch.ok, fetch.error
            timed("git fetch (no change)", rec.fetch)
            results = timed("first pass (creates every object in 3 namespaces)", loop.run_pass)
            assert all(r.phase == "Synced" for r in results), [r.message for r in results]
            created = sum(len(store.list(k, f"bench-{e}")) for k in ("WorkflowTemplate", "CronWorkflow")
                          for e in ("dev", "qa", "prod"))
            print(f"{'  objects in the store':<52} {created:8d}")
            results = timed("no-change pass (fetch + diff, every poll)", loop.run_pass)
            assert all(r.plan.empty for r in results)
            git("checkout", "-q", "-b", "dev", "origin/dev", cwd=work)
            for i in range(0, 10 * 7, 7):
                write_object(work, i, "v2")
            git("commit", "-q", "-am", "change 10 files", cwd=work)
            git("push", "-q", "origin", "dev", cwd=work)
            results = timed("pass after a commit changing 10 files on dev", loop.run_pass)
            dev = next(r for r in results if r.environment == "dev")
            assert dev.phase == "Synced" and len(dev.plan.changes) == 10, dev.message
            cold = Reconciler(store, str(bare), home)
            results = timed("no-change pass, cold caches (like `reconciler sync`)", cold.run_pass)
            assert all(r.plan.empty for r in results)
            loop.stop()


if __name__ == "__main__":
    main()

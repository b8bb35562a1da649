"""A real git "remote" (bare repository) and a working clone that commits and pushes, for GitOps tests."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}

CONFIG = """\
apiVersion: reconciler.io/v1
kind: ReconcilerConfig
environments:
  dev:
    branch: dev
    namespace: team-dev
    path: workflows
    parameters: {size: small}
    limits:
      maxRunningWorkflows: 3
      semaphores: {db-locks: {warehouse: 1}}
  qa:
    branch: qa
    namespace: team-qa
    path: workflows
  prod:
    branch: main
    namespace: team-prod
    path: workflows
"""


def template(name: str, *, image: str = "python:3.12-slim", limits: bool = True, extra: str = "",
             message: str = "hello") -> str:
    """A WorkflowTemplate that passes every default policy unless told otherwise."""
    text = textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata:
          name: {name}
        spec:
          entrypoint: main
          arguments:
            parameters:
            - name: size
              value: big
          templates:
          - name: main
            container:
              image: {image}
              command: [echo, "{message}"]
        """)
    if limits:
        text += "      resources: {limits: {cpu: 100m, memory: 64Mi}}\n"
    return text + extra


def cron(name: str, schedule: str = "0 2 * * *") -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: CronWorkflow
        metadata:
          name: {name}
        spec:
          schedule: "{schedule}"
          workflowSpec:
            entrypoint: main
            templates:
            - name: main
              container:
                image: python:3.12-slim
                command: [echo, nightly]
                resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}
        """)


def workflow(size: str | None = None) -> str:
    """A Workflow file with a `size` argument; without a value, only an override can give it one."""
    value = f', value: "{size}"' if size is not None else ""
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          generateName: backfill-
        spec:
          entrypoint: main
          arguments:
            parameters: [{{name: size{value}}}]
          templates:
          - name: main
            container:
              image: python:3.12-slim
              command: [echo, "{{{{workflow.parameters.size}}}}"]
              resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}
        """)


class GitRemote:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.bare = self.root / "remote.git"
        self.work = self.root / "work"
        self.root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=self.root)
        self.git("clone", "-q", str(self.bare), str(self.work), cwd=self.root)
        self.git("checkout", "-q", "-b", "main")

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.work, capture_output=True, text=True,
                              env=GIT_ENV, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, branch: str, files: dict[str, str | None], message: str = "change", *,
               base: str = "main", push: bool = True) -> str:
        """Write (or, for None, delete) files on `branch`, commit and push; returns the commit sha."""
        if self.git("symbolic-ref", "--short", "HEAD") == branch:
            pass
        elif self.git("branch", "--list", branch):
            self.git("checkout", "-q", branch)
        else:
            self.git("checkout", "-q", "-b", branch, base)
        for path, text in files.items():
            target = self.work / path
            if text is None:
                self.git("rm", "-q", path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", path)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        if push:
            self.git("push", "-q", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def branch_from(self, branch: str, base: str = "main") -> str:
        """Create `branch` at `base` and push it."""
        self.git("checkout", "-q", "-B", branch, base)
        self.git("push", "-q", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def remote_head(self, branch: str) -> str:
        return self.git("rev-parse", f"refs/heads/{branch}", cwd=self.bare)


def make_remote(root: Path, files: dict[str, str] | None = None) -> GitRemote:
    """A remote whose main, qa and dev branches all hold CONFIG plus `files`."""
    remote = GitRemote(root)
    remote.commit("main", {"reconciler.yaml": CONFIG, **(files or {})}, "initial")
    remote.branch_from("qa")
    remote.branch_from("dev")
    return remote

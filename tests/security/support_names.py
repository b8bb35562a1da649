"""Helpers for tests/security/test_names.py: the workflow texts the attacks use, and waiting on a
real daemon. No tests here."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from ..test_api_support import Daemon

# 242 characters, a valid DNS-1123 subdomain (four labels of at most 63).
LONG_VALID_NAME = ".".join(["a" * 60, "b" * 60, "c" * 60, "d" * 59])


def escape_name(target: Path) -> str:
    """A metadata.name that, joined to any folder of the data directory, lands on `target`."""
    return "../" * 24 + str(target).lstrip("/")


def workflow(name: str, *, command: str = "echo hi", volume: bool = False, key: str = "name") -> str:
    """A run-once Workflow that passes the default policies; with `volume`, an emptyDir mounted at /vol."""
    body = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {key: name},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {
            "image": "python:3.12-slim", "command": ["sh", "-c", command],
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}}]},
    }
    if volume:
        body["spec"]["volumes"] = [{"name": "vol", "emptyDir": {}}]
        body["spec"]["templates"][0]["container"]["volumeMounts"] = [{"name": "vol", "mountPath": "/vol"}]
    return yaml.safe_dump(body, sort_keys=False)


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not true within {timeout}s: {predicate}")


def workflows(daemon: Daemon, namespace: str | None = None) -> list[dict]:
    reply = daemon.client.get("/api/v1/workflows" + (f"?namespace={namespace}" if namespace else ""))
    assert reply.status == 200, reply.body
    return reply.json()["items"]


def environments(daemon: Daemon) -> dict[str, dict]:
    reply = daemon.client.get("/api/v1/sync/status")
    assert reply.status == 200, reply.body
    return {e["name"]: e for e in reply.json()["items"]}


def files_named(root: Path, name: str) -> list[Path]:
    """Every file or folder called `name` under `root` (symlinks not followed)."""
    return [p for p in root.rglob(name)]

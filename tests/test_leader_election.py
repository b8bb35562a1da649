"""Leader election on the Kubernetes backend: two real `reconciler up` replicas on the API-server
double share one coordination.k8s.io Lease; exactly one leads (and runs workflows), both serve the
read API, and when the leader is killed the other takes over and runs the next workflow."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.store.kubernetes import KubernetesStore

from .kubedouble import ApiServerDouble
from .test_api_support import Daemon, start_daemon

HELLO = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: NAME, namespace: team}
spec:
  entrypoint: main
  templates:
  - name: main
    script: {image: python, command: [sh], source: "echo hi"}
"""


@pytest.fixture
def double():
    d = ApiServerDouble()
    store = KubernetesStore(d.api_client())
    store.install_crds()
    store.close()
    yield d
    d.close()


def _wait(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def _holder(double: ApiServerDouble) -> str | None:
    lease = double.state.objects.get(("coordination.k8s.io", "leases", "reconciler-system", "reconciler-leader"))
    return (lease or {}).get("spec", {}).get("holderIdentity")


def _leader_identity(daemon: Daemon) -> str | None:
    found = re.search(r"leader election: (\S+) leads", daemon.logs())
    return found.group(1) if found else None


def _submit_and_wait(double: ApiServerDouble, env: dict, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HELLO.replace("NAME", name))
    done = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "submit", str(path)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr

    def phase() -> str | None:
        obj = double.state.objects.get(("reconciler.io", "workflows", "team", name)) or {}
        value = (obj.get("status") or {}).get("phase")
        return value if value in ("Succeeded", "Failed", "Error") else None

    return _wait(phase, f"workflow {name} finished")


def test_two_replicas_one_leads_and_the_other_takes_over(double: ApiServerDouble, tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(double.kubeconfig(tmp_path / "kubeconfig")), "RECONCILER_BACKEND": "kubernetes",
           "RECONCILER_LEADER_LEASE_SECONDS": "2"}
    a = start_daemon(tmp_path / "a", tmp_path, env=env, ready_path="/healthz")
    b = start_daemon(tmp_path / "b", tmp_path, env=env, ready_path="/healthz")
    try:
        holder = _wait(lambda: _holder(double), "a leader")
        leaders = [d for d in (a, b) if _leader_identity(d)]
        assert len(leaders) == 1 and _leader_identity(leaders[0]) == holder, (a.logs()[-2000:], b.logs()[-2000:])
        leader = leaders[0]
        standby = b if leader is a else a
        assert "standing by" in standby.logs()
        for daemon in (a, b):  # both serve the read API
            assert daemon.client.get("/api/v1/workflows/team").status == 200

        cli_env = {**os.environ, **env, "RECONCILER_HOME": str(tmp_path / "cli")}
        cli_env.pop("RECONCILER_SERVER", None)
        assert _submit_and_wait(double, cli_env, tmp_path, "first") == "Succeeded"
        # The leader ran it: its step's log is in the leader's data directory, none in the standby's.
        assert any("first" in str(p) for p in leader.home.rglob("*")), sorted(leader.home.rglob("*"))
        assert not any("first" in str(p) for p in standby.home.rglob("*"))

        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(timeout=30)
        _wait(lambda: _leader_identity(standby), "the standby taking over")
        assert _wait(lambda: _holder(double) == _leader_identity(standby), "the lease naming the new leader")
        assert standby.proc.poll() is None
        assert _submit_and_wait(double, cli_env, tmp_path, "second") == "Succeeded"
    finally:
        a.stop()
        b.stop()

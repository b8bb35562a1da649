"""`reconciler --server URL` (and RECONCILER_SERVER): the CLI through a real daemon's HTTP API, from a
data directory of its own, printing what the local commands print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_api_support import TOKEN, Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("api-cli")

HELLO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    inputs: {parameters: [{name: who}]}
    container: {image: alpine:3, command: [echo, "hello {{inputs.parameters.who}}"]}
"""

SLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: slow-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sleep, "30"]}
"""

CRON = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      container: {image: alpine:3, command: [echo, nightly]}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("api-cli")
    home = tmp / "home"
    home.mkdir()
    d = start_daemon(home, tmp)
    yield d
    d.stop()


def cli(home: Path, *args: str, server: str | None = None, token: str | None = TOKEN,
        timeout: float = 90) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["RECONCILER_HOME"] = str(home)
    if server:
        env["RECONCILER_SERVER"] = server
    if token:
        env["RECONCILER_API_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "reconciler.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_submit_wait_list_get_logs_delete_through_the_api(daemon, tmp_path):
    elsewhere = tmp_path / "client-home"  # the client's own data directory stays empty
    wf_file = tmp_path / "hello.yaml"
    wf_file.write_text(HELLO)
    remote = {"server": daemon.url}
    out = ok(cli(elsewhere, "submit", str(wf_file), "-p", "who=api", "--wait", "-o", "json", **remote))
    final = json.loads(out)
    name = final["metadata"]["name"]
    assert final["status"]["phase"] == "Succeeded"
    assert not (elsewhere / "store.db").exists()

    # -o json: the same objects as the local command on the daemon's own data directory
    assert json.loads(ok(cli(elsewhere, "list", "-o", "json", **remote))) == \
        json.loads(ok(cli(daemon.home, "list", "-o", "json")))
    assert ok(cli(elsewhere, "list", **remote)).splitlines()[0].split() == \
        ok(cli(daemon.home, "list")).splitlines()[0].split()
    assert json.loads(ok(cli(elsewhere, "get", name, "-o", "json", **remote))) == \
        json.loads(ok(cli(daemon.home, "get", name, "-o", "json")))
    assert name in ok(cli(elsewhere, "get", name, **remote))
    assert ok(cli(elsewhere, "logs", name, **remote)) == ok(cli(daemon.home, "logs", name)) != ""
    assert "hello api" in ok(cli(elsewhere, "logs", name, **remote))

    missing = cli(elsewhere, "get", "nope", **remote)
    assert missing.returncode == 1 and "'nope' not found in namespace default" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(HELLO.replace("entrypoint: main", "entrypoint: main\n  daemonize: true"))
    invalid = cli(elsewhere, "submit", str(bad), **remote)
    assert invalid.returncode == 2 and f"{bad}:6: spec.daemonize:" in invalid.stderr

    assert ok(cli(elsewhere, "delete", name, **remote)).strip() == f'Workflow "{name}" deleted'
    assert cli(daemon.home, "get", name).returncode == 1


def test_controls_cron_and_status_through_the_api(daemon, tmp_path):
    elsewhere = tmp_path / "client-home"
    remote = {"server": daemon.url}
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    name = ok(cli(elsewhere, "submit", str(slow), "-o", "name", **remote)).strip()
    assert ok(cli(elsewhere, "suspend", name, **remote)).strip() == f"workflow {name} suspended"
    assert json.loads(ok(cli(daemon.home, "get", name, "-o", "json")))["spec"]["suspend"] is True
    assert ok(cli(elsewhere, "resume", name, **remote)).strip() == f"workflow {name} resumed"
    deadline = time.monotonic() + 30
    while json.loads(ok(cli(daemon.home, "get", name, "-o", "json"))).get("status", {}).get("phase") != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert ok(cli(elsewhere, "terminate", name, **remote)).strip() == f"workflow {name} terminated"
    while json.loads(ok(cli(daemon.home, "get", name, "-o", "json")))["status"].get("phase") != "Failed":
        assert time.monotonic() < deadline + 30
        time.sleep(0.3)
    again = cli(elsewhere, "stop", name, **remote)
    assert again.returncode == 1 and "already finished" in again.stderr
    resubmitted = ok(cli(elsewhere, "resubmit", name, "-o", "name", **remote)).strip()
    assert resubmitted != name
    assert ok(cli(elsewhere, "stop", resubmitted, **remote)).strip() == f"workflow {resubmitted} stopped"

    cron_file = tmp_path / "cron.yaml"
    cron_file.write_text(CRON)
    ok(cli(daemon.home, "apply", str(cron_file)))
    assert json.loads(ok(cli(elsewhere, "cron", "list", "-o", "json", **remote))) == \
        json.loads(ok(cli(daemon.home, "cron", "list", "-o", "json")))
    assert "nightly" in ok(cli(elsewhere, "cron", "list", **remote))

    assert "no environments synced yet" in ok(cli(elsewhere, "status", **remote))
    assert json.loads(ok(cli(elsewhere, "status", "-o", "json", **remote))) == []
    no_repo = cli(elsewhere, "sync", **remote)
    assert no_repo.returncode == 1 and "no repository configured" in no_repo.stderr
    no_repo = cli(elsewhere, "diff", **remote)  # bad input, as a local diff without --repo
    assert no_repo.returncode == 2 and "no repository configured" in no_repo.stderr


def test_remote_errors_are_plain_lines(daemon, tmp_path):
    elsewhere = tmp_path / "client-home"
    wrong = cli(elsewhere, "list", server=daemon.url, token="wrong")
    assert wrong.returncode == 1 and "invalid bearer token" in wrong.stderr and "RECONCILER_API_TOKEN" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    down = cli(elsewhere, "list", server="http://127.0.0.1:1")
    assert down.returncode == 1 and "cannot reach the reconciler API" in down.stderr
    applied = cli(elsewhere, "apply", "x.yaml", server=daemon.url)  # read here, as locally
    assert applied.returncode == 2 and applied.stderr == "x.yaml:1: (file): cannot read file: No such file or directory\n"
    assert cli(elsewhere, "--server", daemon.url, "list", "-o", "name").returncode == 0

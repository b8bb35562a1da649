"""Issue 10, part 2: a step is contained, against a real `reconciler up` (bubblewrap, a token and a
webhook secret set). Each test runs the attacker's step and asserts its goal was not reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.executors import probe_bwrap
from reconciler.executors.settings import daemon_paths
from tests.conftest import run_cli
from tests.test_api_support import TOKEN, WEBHOOK_SECRET, Daemon, free_port, start_daemon

pytestmark = [pytest.mark.xdist_group("daemon"),
              pytest.mark.skipif(not probe_bwrap()[0], reason="these tests need bwrap; tests/test_cli.py covers tmpdir")]

FINISHED = ("Succeeded", "Failed", "Error")
PIDS = 64


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Path]]:
    tmp = tmp_path_factory.mktemp("sandbox")
    home = tmp / "home"
    home.mkdir()
    # Outside /tmp, which every step has privately anyway: these must be hidden by name.
    secret = Path(tempfile.mkstemp(prefix="reconciler-hidden-", dir="/var/lib")[1])
    secret.write_text("HIDDEN-FILE-CONTENT\n")
    config = Path(tempfile.mkstemp(prefix="reconciler-config-", suffix=".yaml", dir="/var/lib")[1])
    config.write_text(f"# CONFIG-FILE-CONTENT\nstepPids: {PIDS}\nhidePaths: [{secret}]\n")
    daemon = start_daemon(home, tmp, "--config", str(config))
    try:
        yield daemon, [secret, config]
    finally:
        daemon.stop()
        secret.unlink()
        config.unlink()


def submit(daemon: Daemon, text: str) -> str:
    path = Path(tempfile.mkstemp(suffix=".yaml", dir=daemon.home.parent)[1])
    path.write_text(text)
    return run_cli(daemon.home, "submit", str(path), "-o", "name", check=True).stdout.strip()


def wait(daemon: Daemon, name: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        wf = json.loads(run_cli(daemon.home, "get", name, "-o", "json", check=True).stdout)
        if (wf.get("status") or {}).get("phase") in FINISHED:
            return wf
        assert daemon.proc.poll() is None, f"daemon died:\n{daemon.logs()[-3000:]}"
        assert time.monotonic() < deadline, json.dumps(wf.get("status"), indent=1)[:3000]
        time.sleep(0.3)


def pods(wf: dict) -> dict[str, dict]:
    return {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}


def result(wf: dict) -> str:
    """outputs.result of the workflow's one pod: its stdout."""
    (node,) = pods(wf).values()
    return node["outputs"]["result"]


def logs(daemon: Daemon, name: str) -> str:
    return run_cli(daemon.home, "logs", name, check=True).stdout


def one_step(script: str, limits: str = "", image: str = "alpine") -> str:
    resources = f"\n      resources: {{limits: {{{limits}}}}}" if limits else ""
    return f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: attack-}}
spec:
  entrypoint: main
  templates:
  - name: main
    script:
      image: {image}
      command: [sh]{resources}
      source: |
{_indent(script, 8)}
"""


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.strip("\n").splitlines())


def test_step_cannot_read_the_daemon_environment(env):
    daemon, _ = env
    script = f"""
for f in /proc/{daemon.proc.pid}/environ /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done
cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'
env
"""
    name = submit(daemon, one_step(script))
    wf = wait(daemon, name)
    out = logs(daemon, name) + json.dumps(wf)
    assert TOKEN not in out and WEBHOOK_SECRET not in out
    assert "RECONCILER_" not in logs(daemon, name)


def test_step_env_is_only_path_home_tmpdir_and_its_own(env):
    daemon, _ = env
    text = one_step("env | cut -d= -f1 | sort").replace("command: [sh]", "command: [sh]\n      env: [{name: MINE, value: x}]")
    names = set(result(wait(daemon, submit(daemon, text))).split())
    assert names <= {"PATH", "HOME", "TMPDIR", "MINE", "PWD", "SHLVL", "_", "OLDPWD"}, names
    assert {"PATH", "HOME", "TMPDIR", "MINE"} <= names


def test_step_runs_as_an_unprivileged_uid(env):
    daemon, _ = env
    name = submit(daemon, one_step("id -u; id -G; touch /etc/owned 2>/dev/null || echo refused"))
    lines = result(wait(daemon, name)).split("\n")
    assert lines[0] == "10001" and lines[1] == "10001"
    assert "refused" in lines and not Path("/etc/owned").exists()


def test_step_cannot_read_the_data_directory_or_hidden_files(env):
    daemon, (secret, config) = env
    first = submit(daemon, one_step("echo other-workflow-output > /tmp/o; echo logged-line-xyz"))
    wait(daemon, first)
    home = daemon.home
    script = f"""
cat {home}/store.db {secret} {config}
ls -laR {home}
cat {home}/logs/*/*/* {home}/runs/*/*/*/tmp/o
find / -xdev -name store.db 2>/dev/null
"""
    name = submit(daemon, one_step(script))
    wf = wait(daemon, name)
    out = logs(daemon, name)
    assert "SQLite format 3" not in out and "HIDDEN-FILE-CONTENT" not in out and "CONFIG-FILE-CONTENT" not in out
    assert "logged-line-xyz" not in out and "other-workflow-output" not in out
    assert str(home / "store.db") not in out.replace(f"cat: {home}/store.db", "")
    assert next(iter(pods(wf).values()))["isolation"] == "bwrap"


def test_secret_files_and_the_daemon_home_are_among_the_hidden_paths(tmp_path):
    token, hook, user_home = tmp_path / "token", tmp_path / "hook", tmp_path / "user"
    for p in (token, hook):
        p.write_text("x")
    user_home.mkdir()
    hidden = daemon_paths(tmp_path / "data", {"RECONCILER_API_TOKEN_FILE": str(token), "HOME": str(user_home),
                                              "RECONCILER_WEBHOOK_SECRET_FILE": str(hook)})
    assert {str(token), str(hook), str(user_home)} <= set(hidden)


def test_concurrent_step_sees_neither_tmp_nor_processes_and_cannot_kill(env):
    daemon, _ = env
    text = f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: pair-}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: victim, template: victim}}
      - {{name: attacker, template: attacker}}
  - name: victim
    script:
      image: alpine
      command: [sh]
      source: |
        echo victim-secret-123 > /tmp/secret
        sleep 6
        cat /tmp/secret
  - name: attacker
    script:
      image: alpine
      command: [sh]
      source: |
        sleep 2
        cat /tmp/secret; ls /tmp
        cat {daemon.home}/runs/*/*/*/tmp/secret
        ps ax
        kill -9 -1; kill -9 {daemon.proc.pid}
        for p in /proc/[0-9]*; do kill -9 ${{p#/proc/}}; done
        echo survived
"""
    name = submit(daemon, text)
    wf = wait(daemon, name)
    nodes = pods(wf)
    assert nodes["victim"]["phase"] == "Succeeded", nodes["victim"]
    out = run_cli(daemon.home, "logs", name, "--node", "attacker", check=True).stdout
    assert "victim-secret-123" not in out and "sleep 6" not in out
    assert daemon.proc.poll() is None
    assert daemon.client.get("/readyz", token=False).status == 200


def test_fork_bomb_is_stopped_with_a_clear_message(env):
    daemon, _ = env
    name = submit(daemon, one_step("b() { b | b & }; b; sleep 60"))
    wf = wait(daemon, name)
    node = next(iter(pods(wf).values()))
    assert node["phase"] == "Failed" and f"process limit of {PIDS} (pids limit)" in node["message"], node
    assert daemon.proc.poll() is None


@pytest.mark.parametrize("script,limits,message,never", [
    pytest.param("python -c \"x = b'x' * (400 << 20); print(len(x))\"", "memory: 64Mi",
                 "OOMKilled (exit code 137): the step reached its memory limit of 64Mi", "419430400", id="memory-hog"),
    pytest.param("set -e; head -c 50000000 /dev/zero > /tmp/big; echo wrote", "ephemeral-storage: 8Mi",
                 "a file reached the step's size limit of 8Mi (SIGXFSZ)", "wrote", id="big-file"),
    pytest.param("i=0; while [ $i -lt 40 ]; do head -c 1000000 /dev/zero > /tmp/f$i; i=$((i+1)); done; sleep 30; "
                 "echo wrote", "ephemeral-storage: 8Mi", "ephemeral storage limit exceeded", "wrote", id="many-files"),
])
def test_limit_stops_the_step_with_a_clear_message(env, script, limits, message, never):
    daemon, _ = env
    name = submit(daemon, one_step(script, limits=limits))
    node = next(iter(pods(wait(daemon, name)).values()))
    assert node["phase"] == "Failed" and message in node["message"], node
    assert never not in logs(daemon, name)


def test_scratch_space_is_removed_when_a_step_ends(env):
    daemon, _ = env
    name = submit(daemon, one_step("echo data > /tmp/leftover; echo ok"))
    assert result(wait(daemon, name)) == "ok"
    deadline = time.monotonic() + 30  # a background thread removes it
    while [p for p in (daemon.home / "runs").glob(f"*/{name}/*") if p.is_dir()]:
        assert time.monotonic() < deadline, list((daemon.home / "runs").rglob("*"))
        time.sleep(0.1)


def test_up_refuses_the_tmpdir_fallback_unless_asked(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, RECONCILER_HOME=str(home), RECONCILER_BWRAP="/bin/false")
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "up", "--listen", f"127.0.0.1:{free_port()}"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "bwrap isolation is not available" in proc.stderr and "--isolation tmpdir" in proc.stderr
    # submit --wait runs steps in the CLI: the same refusal, nothing run.
    wf = tmp_path / "wf.yaml"
    wf.write_text(one_step(f"touch {tmp_path}/ran"))
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "submit", str(wf), "--wait"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "RECONCILER_ISOLATION=tmpdir" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_tmpdir_isolation_when_asked_is_logged_and_recorded(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    daemon = start_daemon(home, tmp_path, "--isolation", "tmpdir", env={"RECONCILER_BWRAP": "/bin/false"})
    try:
        name = submit(daemon, one_step("echo hi"))
        wf = wait(daemon, name)
        assert next(iter(pods(wf).values()))["isolation"] == "tmpdir"
        assert "Isolation:  tmpdir (steps shared the daemon's trust)" in run_cli(home, "get", name).stdout
        assert "share the daemon's trust" in daemon.logs()
    finally:
        daemon.stop()

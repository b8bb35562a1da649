"""Controls on stored workflows, through the real CLI and a real `reconciler up` daemon:
submit-then-run, suspend/resume (whole workflow and one node with output parameters, in steps and
in DAGs), stop/terminate, retry, resubmit --memoized, and ownership by lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli

# Daemons and many step processes: one worker runs these one after another.
pytestmark = pytest.mark.xdist_group("daemon")

FINISHED = ("Succeeded", "Failed", "Error")


@pytest.fixture
def daemon(home: Path, tmp_path: Path) -> Iterator[subprocess.Popen]:
    env = dict(os.environ, RECONCILER_HOME=str(home))
    with open(tmp_path / "up.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--grace", "2"],
                                stdout=log, stderr=log, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


def submit(home: Path, tmp_path: Path, text: str, *args: str) -> str:
    path = tmp_path / f"wf-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return run_cli(home, "submit", str(path), "-o", "name", *args, check=True).stdout.strip()


def workflow(home: Path, name: str) -> dict:
    return json.loads(run_cli(home, "get", name, "-o", "json", check=True).stdout)


def wait_for(home: Path, name: str, cond: Callable[[dict], bool], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        wf = workflow(home, name)
        if cond(wf):
            return wf
        assert time.monotonic() < deadline, f"timed out; workflow is {json.dumps(wf.get('status'), indent=1)[:3000]}"
        time.sleep(0.2)


def by_display(wf: dict) -> dict[str, dict]:
    return {n["displayName"]: n for n in wf["status"].get("nodes", {}).values()}


def phase_is(*phases: str) -> Callable[[dict], bool]:
    return lambda wf: (wf.get("status") or {}).get("phase") in phases


def node_phase(display: str, phase: str) -> Callable[[dict], bool]:
    return lambda wf: by_display(wf).get(display, {}).get("phase") == phase


STEPS_APPROVAL = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: approval-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: build, template: echo, arguments: {parameters: [{name: msg, value: built}]}}
    - - {name: approve, template: approve}
    - - name: deploy
        template: echo
        arguments: {parameters: [{name: msg, value: "deploy to {{steps.approve.outputs.parameters.target}}"}]}
  - name: approve
    suspend: {}
    outputs:
      parameters:
      - {name: target, valueFrom: {supplied: {}}}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine:3, command: [echo, "{{inputs.parameters.msg}}"]}
"""

DAG_SUSPENDS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: gates-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: gate-a, template: wait}
      - {name: gate-b, template: timed}
      - {name: after-a, depends: gate-a, template: echo}
      - {name: after-b, depends: gate-b, template: echo}
  - name: wait
    suspend: {}
  - name: timed
    suspend: {duration: "2s"}
  - name: echo
    container: {image: alpine:3, command: [echo, done]}
"""

SLOW_WITH_EXIT = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: slow-}
spec:
  entrypoint: main
  onExit: cleanup
  templates:
  - name: main
    steps:
    - - {name: sleep, template: sleep}
    - - {name: never, template: cleanup}
  - name: sleep
    container: {image: alpine:3, command: [sleep, "30"]}
  - name: cleanup
    container: {image: alpine:3, command: [echo, cleaned]}
"""


def test_submit_only_stores_and_the_daemon_runs_it(home: Path, tmp_path: Path, daemon) -> None:
    name = submit(home, tmp_path, STEPS_APPROVAL.replace("generateName: approval-", "name: stored-then-run"))
    assert name == "stored-then-run"
    wf = wait_for(home, name, node_phase("approve", "Running"))
    assert by_display(wf)["build"]["phase"] == "Succeeded"
    assert "deploy" not in by_display(wf)


def test_resume_one_node_with_output_parameter_in_steps(home: Path, tmp_path: Path, daemon) -> None:
    name = submit(home, tmp_path, STEPS_APPROVAL)
    wait_for(home, name, node_phase("approve", "Running"))
    bad = run_cli(home, "resume", name, "--node", "approve", "-p", "nope=1")
    assert bad.returncode == 0  # the request is valid to the CLI; the runner rejects unknown names
    wf = workflow(home, name)
    assert by_display(wf)["approve"]["phase"] == "Running"
    run_cli(home, "resume", name, "--node", "build", check=False)  # not a suspend node
    assert "not a waiting suspend node" in run_cli(home, "resume", name, "--node", "build").stderr
    run_cli(home, "resume", name, "--node", "approve", "-p", "target=prod", check=True)
    wf = wait_for(home, name, phase_is(*FINISHED))
    assert wf["status"]["phase"] == "Succeeded"
    approve = by_display(wf)["approve"]
    assert approve["outputs"]["parameters"] == [{"name": "target", "value": "prod"}]
    logs = run_cli(home, "logs", name, check=True).stdout
    assert "deploy to prod" in logs


def test_dag_suspend_nodes_resume_by_name_and_by_duration(home: Path, tmp_path: Path, daemon) -> None:
    name = submit(home, tmp_path, DAG_SUSPENDS)
    wf = wait_for(home, name, node_phase("after-b", "Succeeded"), timeout=20)
    # The timed gate let its branch through; the other is still waiting for a person.
    assert by_display(wf)["gate-a"]["phase"] == "Running"
    assert "after-a" not in by_display(wf)
    run_cli(home, "resume", name, "--node", "gate-a", check=True)
    wf = wait_for(home, name, phase_is(*FINISHED))
    assert wf["status"]["phase"] == "Succeeded"


def test_workflow_suspend_blocks_new_steps_until_resume(home: Path, tmp_path: Path, daemon) -> None:
    text = STEPS_APPROVAL.replace("suspend: {}\n    outputs:\n      parameters:\n      - {name: target, valueFrom: {supplied: {}}}",
                                  "container: {image: alpine:3, command: [sh, -c, 'sleep 3; echo staging > /tmp/t']}\n"
                                  "    outputs:\n      parameters:\n      - {name: target, valueFrom: {path: /tmp/t}}")
    name = submit(home, tmp_path, text)
    wait_for(home, name, node_phase("approve", "Running"))
    run_cli(home, "suspend", name, check=True)
    wait_for(home, name, node_phase("approve", "Succeeded"))  # a running step finishes
    time.sleep(1.0)  # `deploy` is due now, and must not start
    wf = workflow(home, name)
    assert wf["spec"]["suspend"] is True
    assert wf["status"]["phase"] == "Running"
    assert by_display(wf).get("deploy", {}).get("phase") in (None, "Pending")
    run_cli(home, "resume", name, check=True)
    wf = wait_for(home, name, phase_is(*FINISHED))
    assert wf["status"]["phase"] == "Succeeded"
    assert "deploy to staging" in run_cli(home, "logs", name, check=True).stdout


def test_stop_runs_exit_handler_and_terminate_does_not(home: Path, tmp_path: Path, daemon) -> None:
    stopped = submit(home, tmp_path, SLOW_WITH_EXIT)
    terminated = submit(home, tmp_path, SLOW_WITH_EXIT)
    for name in (stopped, terminated):
        wait_for(home, name, node_phase("sleep", "Running"))
    started = time.monotonic()
    run_cli(home, "stop", stopped, check=True)
    run_cli(home, "terminate", terminated, check=True)
    a = wait_for(home, stopped, phase_is(*FINISHED))
    b = wait_for(home, terminated, phase_is(*FINISHED))
    assert time.monotonic() - started < 15  # the 30 s sleeps were killed
    assert (a["status"]["phase"], a["status"]["message"]) == ("Failed", "Stopped")
    assert (b["status"]["phase"], b["status"]["message"]) == ("Failed", "Terminated")
    assert by_display(a)["sleep"]["phase"] == "Failed"
    assert by_display(a)[f"{stopped}.onExit"]["phase"] == "Succeeded"
    assert f"{terminated}.onExit" not in by_display(b)
    assert "never" not in by_display(a) and "never" not in by_display(b)
    again = run_cli(home, "stop", stopped)
    assert again.returncode == 1 and "already finished" in again.stderr


FLAKY = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: flaky-pipeline}
spec:
  entrypoint: main
  volumes: [{name: state, emptyDir: {}}]
  templates:
  - name: main
    dag:
      tasks:
      - {name: extract, template: count, arguments: {parameters: [{name: id, value: extract}]}}
      - {name: load, depends: extract, template: fails-once}
      - {name: report, depends: load, template: count, arguments: {parameters: [{name: id, value: report}]}}
  - name: count
    inputs: {parameters: [{name: id}]}
    script:
      image: alpine:3
      command: [sh]
      volumeMounts: [{name: state, mountPath: /mnt/state}]
      source: echo run >> /mnt/state/{{inputs.parameters.id}}; echo ok
  - name: fails-once
    script:
      image: alpine:3
      command: [sh]
      volumeMounts: [{name: state, mountPath: /mnt/state}]
      source: |
        if [ -e /mnt/state/load ]; then echo second; else echo first > /mnt/state/load; exit 1; fi
"""


def test_retry_reruns_failed_nodes_in_place(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "flaky.yaml"
    path.write_text(FLAKY)
    first = run_cli(home, "submit", str(path), "--wait")
    assert first.returncode == 1
    wf = workflow(home, "flaky-pipeline")
    assert by_display(wf)["load"]["phase"] == "Failed" and "report" in by_display(wf)
    extract_before = by_display(wf)["extract"]
    assert run_cli(home, "retry", "flaky-pipeline", "--wait").returncode == 0
    wf = workflow(home, "flaky-pipeline")
    assert wf["status"]["phase"] == "Succeeded"
    assert by_display(wf)["extract"] == extract_before  # kept as it was, not re-run
    # the re-run `load` is linked again under the kept `extract` (a DAG task hangs off its dependency)
    assert by_display(wf)["extract"]["children"] == [by_display(wf)["load"]["id"]]
    assert by_display(wf)["load"]["children"] == [by_display(wf)["report"]["id"]]
    state = home / "volumes" / "default" / "flaky-pipeline" / "state"
    assert (state / "extract").read_text() == "run\n"
    assert (state / "report").read_text() == "run\n"  # report was omitted the first time
    assert "not retried" not in run_cli(home, "retry", "flaky-pipeline").stderr
    assert run_cli(home, "retry", "flaky-pipeline").returncode == 1  # Succeeded: nothing to retry


MEMO = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: memo-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: n, value: "3"}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: produce, template: produce}
      - name: consume
        depends: produce
        template: consume
        arguments:
          artifacts: [{name: data, from: "{{tasks.produce.outputs.artifacts.data}}"}]
          parameters: [{name: n, value: "{{tasks.produce.outputs.parameters.n}}"}]
      - {name: stamp, template: stamp}
  - name: produce
    script:
      image: python:3.12
      command: [python]
      source: |
        import random
        open("/tmp/data", "w").write(str(random.random()))
        open("/tmp/n", "w").write("{{workflow.parameters.n}}")
    outputs:
      parameters: [{name: n, valueFrom: {path: /tmp/n}}]
      artifacts: [{name: data, path: /tmp/data}]
  - name: consume
    inputs:
      parameters: [{name: n}]
      artifacts: [{name: data, path: /tmp/in}]
    container: {image: alpine:3, command: [cat, /tmp/in]}
  - name: stamp
    container: {image: alpine:3, command: [date, "+%s%N"]}
"""


def test_resubmit_memoized_reuses_outputs_of_equal_calls(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "memo.yaml"
    path.write_text(MEMO)
    orig = run_cli(home, "submit", str(path), "--wait", "-o", "name", check=True).stdout.split()[0]
    original = workflow(home, orig)
    again = run_cli(home, "resubmit", orig, "--memoized", "--wait", "-o", "name", check=True).stdout.split()[0]
    assert again != orig
    new = workflow(home, again)
    assert new["status"]["phase"] == "Succeeded"
    a, b = by_display(original), by_display(new)
    for task in ("produce", "consume", "stamp"):
        assert b[task]["memoizationStatus"]["hit"] is True, task
        assert b[task]["memoizationStatus"]["cacheName"] == orig
        assert b[task]["outputs"] == a[task]["outputs"]
    # A plain resubmit runs everything again: produce draws a new random payload.
    fresh = run_cli(home, "resubmit", orig, "--wait", "-o", "name", check=True).stdout.split()[0]
    c = by_display(workflow(home, fresh))
    assert "memoizationStatus" not in c["produce"]
    assert c["consume"]["outputs"]["result"] != a["consume"]["outputs"]["result"]


def test_memoized_resubmit_runs_calls_whose_inputs_changed(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "memo.yaml"
    path.write_text(MEMO)
    orig = run_cli(home, "submit", str(path), "--wait", "-o", "name", check=True).stdout.split()[0]
    again = run_cli(home, "resubmit", orig, "--memoized", "-p", "n=4", "--wait", "-o", "name",
                    check=True).stdout.split()[0]
    b = by_display(workflow(home, again))
    assert b["stamp"]["memoizationStatus"]["hit"] is True
    # produce's substituted script differs (n=4), so it ran; consume's input n changed too.
    for task in ("produce", "consume"):
        assert "memoizationStatus" not in b[task], task
    assert b["produce"]["outputs"]["parameters"][0]["value"] == "4"


def test_two_daemons_never_drive_the_same_workflow(home: Path, tmp_path: Path) -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: shared-}
spec:
  entrypoint: main
  volumes: [{name: runs, emptyDir: {}}]
  templates:
  - name: main
    steps:
    - - {name: a, template: mark}
    - - {name: b, template: mark}
  - name: mark
    script:
      image: alpine:3
      command: [sh]
      volumeMounts: [{name: runs, mountPath: /mnt/runs}]
      source: echo {{pod.name}} >> /mnt/runs/log; sleep 0.5
"""
    names = [submit(home, tmp_path, text) for _ in range(4)]
    env = dict(os.environ, RECONCILER_HOME=str(home))
    procs = [subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        for name in names:
            assert wait_for(home, name, phase_is(*FINISHED))["status"]["phase"] == "Succeeded"
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    for name in names:
        lines = (home / "volumes" / "default" / name / "runs" / "log").read_text().split()
        assert len(lines) == len(set(lines)) == 2, lines
        ann = workflow(home, name)["metadata"].get("annotations") or {}
        assert "reconciler.io/lease-holder" not in ann  # released when it finished


def test_sigterm_saves_state_and_the_next_daemon_finishes(home: Path, tmp_path: Path) -> None:
    # 3 s: long enough to be seen Running by a CLI poll on a loaded machine, short of the 5 s grace.
    text = SLOW_WITH_EXIT.replace('command: [sleep, "30"]', 'command: [sleep, "3"]')
    name = submit(home, tmp_path, text)
    env = dict(os.environ, RECONCILER_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--grace", "5"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(home, name, node_phase("sleep", "Running"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    wf = workflow(home, name)
    # The running step got its grace period and its result was saved; nothing new was started.
    assert by_display(wf)["sleep"]["phase"] == "Succeeded"
    assert "never" not in by_display(wf) or by_display(wf)["never"]["phase"] == "Pending"
    assert "reconciler.io/lease-holder" not in (wf["metadata"].get("annotations") or {})
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(home, name, phase_is(*FINISHED))["status"]["phase"] == "Succeeded"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_logs_follow_prints_lines_while_the_step_runs_and_ends_with_the_workflow(home: Path, tmp_path: Path,
                                                                                  daemon) -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: chatty-}
spec:
  entrypoint: talk
  templates:
  - name: talk
    script:
      image: alpine:3
      command: [sh]
      source: |
        echo first; sleep 4; echo second
"""
    name = submit(home, tmp_path, text)
    env = dict(os.environ, RECONCILER_HOME=str(home))
    follower = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "logs", name, "-f"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = follower.stdout.readline()
    seen_first = time.time()
    assert first.rstrip().endswith(": first")
    rest, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert rest.rstrip().endswith(": second")
    # the first line arrived while the step was still sleeping
    assert workflow(home, name)["status"]["finishedAtUnix"] - seen_first > 1.0


def test_a_suspend_step_reached_while_suspended_waits_only_after_resume(home: Path, tmp_path: Path, daemon) -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: held-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: work, template: work}
    - - {name: gate, template: gate}
    - - {name: after, template: done}
  - name: work
    container: {image: alpine:3, command: [sleep, "5"]}
  - name: done
    container: {image: alpine:3, command: ["true"]}
  - name: gate
    suspend: {duration: "1s"}
"""
    name = submit(home, tmp_path, text)
    wait_for(home, name, node_phase("work", "Running"))
    run_cli(home, "suspend", name, check=True)
    wf = wait_for(home, name, node_phase("gate", "Pending"))
    assert by_display(wf)["gate"]["message"] == "Workflow suspended"
    time.sleep(1.5)  # longer than the gate's duration: it must not have started counting
    assert by_display(workflow(home, name))["gate"]["phase"] == "Pending"
    resumed_at = time.time()
    run_cli(home, "resume", name, check=True)
    wf = wait_for(home, name, phase_is(*FINISHED))
    assert wf["status"]["phase"] == "Succeeded"
    gate = by_display(wf)["gate"]
    # `resume` did not skip the gate: it waited its full second after the resume.
    assert gate["finishedAtUnix"] - resumed_at >= 0.9

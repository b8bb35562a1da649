"""Chaos: `reconciler up` SIGKILLed at random moments, 20+ times, while it drives a 30+ node
workflow (DAG, loops, retries, artifacts, nested steps); restarted each time.

What must hold at the end: the workflow Succeeded; every pod node's recorded log shows it completed
exactly once; no node was started again after its success was recorded; no step process of the
test is left running."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from reconciler.store import open_store
from tests.conftest import run_cli

pytestmark = pytest.mark.xdist_group("daemon")

WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: chaos
spec:
  entrypoint: main
  volumes: [{name: journal, emptyDir: {}}]
  templates:
  - name: main
    dag:
      tasks:
      - name: gen
        template: gen
      - name: fan
        depends: gen
        template: work
        arguments:
          parameters: [{name: id, value: "fan-{{item}}"}]
          artifacts: [{name: data, from: "{{tasks.gen.outputs.artifacts.data}}"}]
        withParam: "{{tasks.gen.outputs.parameters.items}}"
      - name: flaky
        depends: gen
        template: flaky
      - name: chain
        depends: gen
        template: chain
      - name: join
        depends: fan && flaky && chain
        template: work
        arguments:
          parameters: [{name: id, value: join}]
          artifacts: [{name: data, from: "{{tasks.gen.outputs.artifacts.data}}"}]
      - name: tail
        depends: join
        template: chain
      - name: tail2
        depends: tail
        template: chain
      - name: tail3
        depends: tail2
        template: chain
  - name: chain
    steps:
    - - {name: s1, template: step, arguments: {parameters: [{name: id, value: "{{workflow.name}}-s1"}]}}
    - - {name: s2, template: step, arguments: {parameters: [{name: id, value: s2}]}}
      - {name: s3, template: step, arguments: {parameters: [{name: id, value: s3}]}}
    - - {name: s4, template: step, arguments: {parameters: [{name: id, value: s4}]}}
    - - {name: s5, template: step, arguments: {parameters: [{name: id, value: s5}]}}
    - - {name: s6, template: step, arguments: {parameters: [{name: id, value: s6}]}}
  - name: gen
    script:
      image: python:3.12
      command: [python]
      env: [{name: CHAOS_MARKER, value: "@MARKER@"}]
      volumeMounts: [{name: journal, mountPath: /mnt/journal}]
      source: |
        import json, os, time
        me = os.environ["POD"] if "POD" in os.environ else "gen"
        open("/mnt/journal/log", "a").write(f"start gen {time.time()}\\n")
        time.sleep(0.4)
        open("/tmp/data.txt", "w").write("payload\\n")
        open("/tmp/items.json", "w").write(json.dumps(list(range(12))))
        print("completed gen")
        open("/mnt/journal/log", "a").write(f"done gen {time.time()}\\n")
    outputs:
      parameters: [{name: items, valueFrom: {path: /tmp/items.json}}]
      artifacts: [{name: data, path: /tmp/data.txt}]
  - name: work
    inputs:
      parameters: [{name: id}]
      artifacts: [{name: data, path: /tmp/in.txt}]
    script:
      image: python:3.12
      command: [sh]
      env: [{name: CHAOS_MARKER, value: "@MARKER@"}]
      volumeMounts: [{name: journal, mountPath: /mnt/journal}]
      source: |
        echo "start {{inputs.parameters.id}} $(date +%s.%N)" >> /mnt/journal/log
        grep -q payload /tmp/in.txt || exit 3
        sleep 0.4
        echo "completed {{inputs.parameters.id}}"
        echo "done {{inputs.parameters.id}} $(date +%s.%N)" >> /mnt/journal/log
  - name: step
    inputs:
      parameters: [{name: id}]
    script:
      image: alpine:3
      command: [sh]
      env: [{name: CHAOS_MARKER, value: "@MARKER@"}]
      volumeMounts: [{name: journal, mountPath: /mnt/journal}]
      source: |
        echo "start {{pod.name}} $(date +%s.%N)" >> /mnt/journal/log
        sleep 0.5
        echo "completed {{pod.name}}"
        echo "done {{pod.name}} $(date +%s.%N)" >> /mnt/journal/log
  - name: flaky
    retryStrategy: {limit: 3}
    script:
      image: alpine:3
      command: [sh]
      env: [{name: CHAOS_MARKER, value: "@MARKER@"}]
      volumeMounts: [{name: journal, mountPath: /mnt/journal}]
      source: |
        echo "start {{pod.name}} $(date +%s.%N)" >> /mnt/journal/log
        sleep 0.3
        echo "completed {{pod.name}} attempt {{retries}}"
        echo "done {{pod.name}} $(date +%s.%N)" >> /mnt/journal/log
        [ {{retries}} -ge 1 ]
"""


def _marker_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"CHAOS_MARKER={marker}".encode() in environ:
            found.append(int(entry.name))
    return found


def _start_up(home: Path, log) -> subprocess.Popen:
    env = dict(os.environ, RECONCILER_HOME=str(home))
    # 20+ kills land on long steps more than 3 times: this test is about replay, not the death limit.
    return subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--grace", "1",
                             "--max-daemon-deaths", "0"],
                            stdout=log, stderr=log, env=env)


def _phase(home: Path) -> str:
    with open_store(home / "store.db") as store:
        return (store.get("Workflow", "default", "chaos").get("status") or {}).get("phase", "")


def test_sigkilled_daemon_finishes_every_node_exactly_once(tmp_path: Path, home: Path) -> None:
    marker = uuid.uuid4().hex
    wf_file = tmp_path / "chaos.yaml"
    wf_file.write_text(WORKFLOW.replace("@MARKER@", marker))
    run_cli(home, "submit", str(wf_file), "-o", "name", check=True)
    rng = random.Random()
    kills = kills_while_running = 0
    with open(tmp_path / "up.log", "ab") as log:
        # Kill until 20 kills have hit the running workflow (or it finished first: a failure below).
        while kills_while_running < 20 and kills < 80:
            proc = _start_up(home, log)
            time.sleep(rng.uniform(0.3, 1.5))
            unfinished = _phase(home) not in ("Succeeded", "Failed", "Error")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            kills_while_running += unfinished
            if not unfinished:
                break
        proc = _start_up(home, log)
        time.sleep(1.5)  # past start-up: SIGTERM below must find the handler installed
        deadline = time.monotonic() + 120
        while _phase(home) not in ("Succeeded", "Failed", "Error") and time.monotonic() < deadline:
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert kills_while_running >= 20, f"only {kills_while_running} kills hit the running workflow"

    with open_store(home / "store.db") as store:
        wf = store.get("Workflow", "default", "chaos")
    status = wf["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    pods = [n for n in status["nodes"].values() if n["type"] == "Pod"]
    assert len(pods) >= 40

    # Each pod's recorded log is from one run that completed, once.
    for node in pods:
        text = (home / "logs" / "default" / "chaos" / f"{node['id']}.log").read_text()
        assert text.count("completed") == 1, (node["displayName"], text)

    # The retry node kept its history: attempt 0 failed, attempt 1 succeeded, nothing else.
    flaky = [n for n in status["nodes"].values() if n["displayName"].startswith("flaky(")]
    assert sorted((n["displayName"], n["phase"]) for n in flaky) == [("flaky(0)", "Failed"), ("flaky(1)", "Succeeded")]

    # No step started again once its success was recorded (the journal has every attempt).
    journal = (home / "volumes" / "default" / "chaos" / "journal" / "log").read_text().split("\n")
    starts: dict[str, list[float]] = {}
    for line in journal:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "start":
            starts.setdefault(parts[1], []).append(float(parts[2]))
    for node in pods:
        key = node.get("podName") if node["templateName"] in ("step", "flaky") else None
        if key is None:
            params = {p["name"]: p["value"] for p in (node.get("inputs") or {}).get("parameters", [])}
            key = params.get("id", "gen")
        assert starts.get(key), f"{node['displayName']} ({key}) never started according to the journal"
        late = [t for t in starts[key] if t > node["finishedAtUnix"] + 0.05]
        assert not late, f"{node['displayName']} started again after its success was recorded"

    # Killed attempts left no step process behind.
    deadline = time.monotonic() + 5
    while _marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marker_processes(marker) == []

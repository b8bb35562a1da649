"""Controls through the HTTP API on workflows a real `reconciler up` daemon is running: suspend and
resume (whole workflow, one suspend node with an output parameter), stop and terminate, retry and
resubmit, and logs streamed while a step runs."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .test_api_support import TOKEN, Client, Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("api-daemon")
FINISHED = ("Succeeded", "Failed", "Error")

APPROVAL = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: approval-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: build, template: work}
    - - {name: check, template: echo, arguments: {parameters: [{name: msg, value: checked}]}}
    - - {name: approve, template: approve}
    - - name: deploy
        template: echo
        arguments: {parameters: [{name: msg, value: "deploy to {{steps.approve.outputs.parameters.target}}"}]}
  - name: work
    container: {image: alpine:3, command: [sh, -c, 'sleep 2; echo built']}
  - name: approve
    suspend: {}
    outputs:
      parameters:
      - {name: target, valueFrom: {supplied: {}}}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine:3, command: [echo, "{{inputs.parameters.msg}}"]}
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
  - name: sleep
    container: {image: alpine:3, command: [sh, -c, 'for i in $(seq 1 60); do echo tick $i; sleep 0.5; done']}
  - name: cleanup
    container: {image: alpine:3, command: [echo, cleaned]}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("api-controls")
    home = tmp / "home"
    home.mkdir()
    d = start_daemon(home, tmp)
    yield d
    d.stop()


def submit(client: Client, text: str, ns: str = "default") -> str:
    reply = client.request("POST", f"/api/v1/workflows/{ns}", {"manifest": text})
    assert reply.status == 201, reply.body
    return reply.json()["items"][0]["metadata"]["name"]


def wait_for(client: Client, name: str, cond: Callable[[dict], bool], timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        wf = client.get(f"/api/v1/workflows/default/{name}").json()
        if cond(wf):
            return wf
        assert time.monotonic() < deadline, f"timed out: {wf.get('status', {}).get('phase')}"
        time.sleep(0.2)


def nodes(wf: dict) -> dict[str, dict]:
    return {n["displayName"]: n for n in (wf.get("status") or {}).get("nodes", {}).values()}


def node_phase(display: str, phase: str) -> Callable[[dict], bool]:
    return lambda wf: nodes(wf).get(display, {}).get("phase") == phase


def finished(wf: dict) -> bool:
    return (wf.get("status") or {}).get("phase") in FINISHED


def test_suspend_resume_and_resume_a_node_with_an_output(daemon):
    c = daemon.client
    name = submit(c, APPROVAL)
    wait_for(c, name, node_phase("build", "Running"))
    assert c.request("PUT", f"/api/v1/workflows/default/{name}/suspend").status == 200
    wait_for(c, name, node_phase("build", "Succeeded"))  # a running step finishes
    time.sleep(1.0)
    wf = c.get(f"/api/v1/workflows/default/{name}").json()
    assert wf["spec"]["suspend"] is True
    assert nodes(wf).get("check", {}).get("phase") in (None, "Pending"), nodes(wf)["check"]  # no new step
    assert c.request("PUT", f"/api/v1/workflows/default/{name}/resume").status == 200
    wait_for(c, name, node_phase("approve", "Running"))
    wrong = c.request("PUT", f"/api/v1/workflows/default/{name}/resume", {"node": "build"})
    assert wrong.status == 409 and "not a waiting suspend node" in wrong.json()["message"]
    assert c.request("PUT", f"/api/v1/workflows/default/{name}/resume", {"node": "nope"}).status == 404
    ok = c.request("PUT", f"/api/v1/workflows/default/{name}/resume",
                   {"node": "approve", "parameters": {"target": "prod"}})
    assert ok.status == 200, ok.body
    wf = wait_for(c, name, finished)
    assert wf["status"]["phase"] == "Succeeded"
    log = c.get(f"/api/v1/workflows/default/{name}/log").body.decode()
    assert "built" in log and "deploy to prod" in log
    assert c.get(f"/api/v1/workflows/default/{name}/log?node=deploy").body.decode() == "deploy to prod\n"
    assert c.request("PUT", f"/api/v1/workflows/default/{name}/suspend").status == 409  # finished


def test_stop_and_terminate_a_running_workflow_then_retry_and_resubmit(daemon):
    c = daemon.client
    stopped, terminated = submit(c, SLOW_WITH_EXIT), submit(c, SLOW_WITH_EXIT)
    for name in (stopped, terminated):
        wait_for(c, name, node_phase("sleep", "Running"))
    started = time.monotonic()
    assert c.request("PUT", f"/api/v1/workflows/default/{stopped}/stop").json()["action"] == "stopped"
    assert c.request("PUT", f"/api/v1/workflows/default/{terminated}/terminate").status == 200
    a, b = wait_for(c, stopped, finished), wait_for(c, terminated, finished)
    assert time.monotonic() - started < 20  # the 30 s loops were killed
    assert a["status"]["phase"] == b["status"]["phase"] == "Failed"
    assert "cleanup" in {n["displayName"] for n in nodes(a).values()} or any(
        "onExit" in n["name"] or "cleanup" in n.get("templateName", "") for n in nodes(a).values())
    assert not any(n.get("templateName") == "cleanup" for n in nodes(b).values())

    retried = c.request("PUT", f"/api/v1/workflows/default/{terminated}/retry")
    assert retried.status == 200, retried.body
    wait_for(c, terminated, node_phase("sleep", "Running"))
    assert c.request("PUT", f"/api/v1/workflows/default/{terminated}/terminate").status == 200
    wait_for(c, terminated, finished)
    again = c.request("PUT", f"/api/v1/workflows/default/{stopped}/resubmit", {"memoized": False})
    assert again.status == 201
    new = again.json()["metadata"]["name"]
    assert new != stopped
    wait_for(c, new, node_phase("sleep", "Running"))
    assert c.request("PUT", f"/api/v1/workflows/default/{new}/terminate").status == 200
    wait_for(c, new, finished)
    assert c.request("DELETE", f"/api/v1/workflows/default/{new}").status == 200
    assert c.get(f"/api/v1/workflows/default/{new}").status == 404


def test_logs_follow_streams_a_running_step_until_the_workflow_ends(daemon):
    c = daemon.client
    name = submit(c, SLOW_WITH_EXIT.replace("seq 1 60", "seq 1 6"))
    wait_for(c, name, node_phase("sleep", "Running"))
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    conn.request("GET", f"/api/v1/workflows/default/{name}/log?follow=true",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type").startswith("text/plain")
    first = resp.readline().decode()
    # the first line arrives while the step still runs
    assert "tick 1" in first
    assert not finished(c.get(f"/api/v1/workflows/default/{name}").json())
    rest = resp.read().decode()
    conn.close()
    lines = (first + rest).splitlines()
    assert [line.split(": ", 1)[1] for line in lines if "tick" in line] == [f"tick {i}" for i in range(1, 7)]
    assert any(line.endswith(": cleaned") for line in lines)
    assert finished(c.get(f"/api/v1/workflows/default/{name}").json())


def test_the_daemon_home_is_untouched_by_rejected_calls(daemon, tmp_path: Path):
    c = daemon.client
    before = c.get("/api/v1/workflows").json()["items"]
    for path in ("/api/v1/workflows/default/..%2f..%2fstore.db", "/api/v1/workflows/default/../../x"):
        assert c.request("DELETE", path).status == 400
    assert c.request("DELETE", "/api/v1/workflows/default/whatever", token="nope").status == 401
    assert c.get("/api/v1/workflows").json()["items"] == before
    assert (daemon.home / "store.db").exists()

"""The change streams (server-sent events) of a real `reconciler up`: Argo's framing, one workflow by
fieldSelector, resuming with Last-Event-ID, token scoping, heartbeats, and `get -w`/`list -w` through
--server and on the local store. The shared feed's bounds are checked on a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.api import feed as feed_module
from reconciler.store import open_store

from .test_api_support import TOKEN, Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("api-daemon")

HELLO = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: NAME, labels: {team: LABEL}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: echo}
    - - {name: b, template: echo}
  - name: echo
    container: {image: alpine:3, command: [echo, hi]}
"""
SCOPED = "scoped-token-abcdef0123"


class Stream:
    """An open event stream read line by line over a real socket."""

    def __init__(self, port: int, path: str, token: str | None = TOKEN, headers: dict | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        hdrs = {"Accept": "text/event-stream", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.last_id: str | None = None
        self.comments: list[str] = []

    def events(self) -> Iterator[dict]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            text = line.decode().rstrip("\n")
            if text.startswith("id:"):
                self.last_id = text[3:].strip()
            elif text.startswith(":"):
                self.comments.append(text)
            elif text.startswith("data:"):
                yield json.loads(text[5:])

    def until(self, predicate, limit: int = 500) -> list[dict]:
        seen = []
        for message in self.events():
            seen.append(message)
            if predicate(message) or len(seen) >= limit:
                return seen
        raise AssertionError(f"stream ended before the expected event; saw {seen[-5:]}")

    def close(self) -> None:
        self.conn.close()


def _submit(daemon: Daemon, name: str, namespace: str = "default", label: str = "x") -> None:
    reply = daemon.client.request("POST", f"/api/v1/workflows/{namespace}",
                                  {"manifest": HELLO.replace("NAME", name).replace("LABEL", label)})
    assert reply.status == 201, reply.body


def _named(name: str, phase: str | None = None):
    def check(message: dict) -> bool:
        obj = message.get("result", {}).get("object", {})
        return obj.get("metadata", {}).get("name") == name and (
            phase is None or (obj.get("status") or {}).get("phase") == phase)
    return check


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n- name: team-a\n  sha256: {hashlib.sha256(SCOPED.encode()).hexdigest()}\n"
                      "  namespaces: [team-a]\n  verbs: [read]\n")
    home = tmp_path / "home"
    d = start_daemon(home, tmp_path, "--api-tokens", str(tokens), env={"RECONCILER_EVENTS_HEARTBEAT": "0.5"})
    yield d
    d.stop()


def test_workflow_stream_argo_framing_live_and_resume(daemon: Daemon) -> None:
    _submit(daemon, "first")
    stream = Stream(daemon.port, "/api/v1/workflow-events/default")
    assert stream.resp.status == 200
    assert stream.resp.getheader("content-type").startswith("text/event-stream")
    # Without a resourceVersion the stream starts with what exists, as ADDED (a Kubernetes watch).
    initial = stream.until(_named("first"))
    assert initial[-1]["result"]["type"] == "ADDED"
    assert "nodes" not in initial[-1]["result"]["object"]["status"]  # a list stream: no node table
    stream.until(_named("first", "Succeeded"))
    _submit(daemon, "second")
    seen = stream.until(_named("second", "Succeeded"))
    assert any(m["result"]["type"] == "ADDED" and _named("second")(m) for m in seen)
    resume_from = stream.last_id
    assert resume_from and resume_from.isdigit()
    stream.close()

    # Reconnect with Last-Event-ID: only what changed since, here the third workflow's events.
    _submit(daemon, "third")
    again = Stream(daemon.port, "/api/v1/workflow-events/default", headers={"Last-Event-ID": resume_from})
    seen = again.until(_named("third", "Succeeded"))
    # Nothing the first connection saw comes again: every replayed change is newer than its last id.
    assert all(int(m["result"]["object"]["metadata"]["resourceVersion"]) > int(resume_from) for m in seen)
    assert not any(m["result"]["type"] == "ADDED" and not _named("third")(m) for m in seen)
    again.close()


def test_field_selector_streams_one_workflow_with_nodes(daemon: Daemon) -> None:
    _submit(daemon, "other")
    stream = Stream(daemon.port, "/api/v1/workflow-events/default?listOptions.fieldSelector=metadata.name%3Dwanted")
    _submit(daemon, "wanted")
    seen = stream.until(_named("wanted", "Succeeded"))
    assert {m["result"]["object"]["metadata"]["name"] for m in seen} == {"wanted"}
    nodes = seen[-1]["result"]["object"]["status"]["nodes"]
    assert {n["displayName"] for n in nodes.values()} >= {"a", "b"}
    assert all(n["phase"] == "Succeeded" for n in nodes.values())
    stream.close()


def test_scoped_token_streams_its_namespaces_only(daemon: Daemon) -> None:
    refused = Stream(daemon.port, "/api/v1/workflow-events/default", token=SCOPED)
    assert refused.resp.status == 403
    refused.close()
    no_token = Stream(daemon.port, "/api/v1/workflow-events/team-a", token=None)
    assert no_token.resp.status == 401
    no_token.close()
    stream = Stream(daemon.port, "/api/v1/workflow-events", token=SCOPED)
    assert stream.resp.status == 200
    _submit(daemon, "secret", "default")
    _submit(daemon, "visible", "team-a")
    seen = stream.until(_named("visible"))
    assert all(m["result"]["object"]["metadata"]["namespace"] == "team-a" for m in seen)
    stream.close()


def test_bad_selectors_and_versions_are_refused(daemon: Daemon) -> None:
    for query, status in (("listOptions.fieldSelector=spec.foo%3Dx", 400),
                          ("listOptions.labelSelector=team", 400),
                          ("listOptions.resourceVersion=abc", 400),
                          ("listOptions.fieldSelector=metadata.name%3DBad_Name", 400)):
        reply = daemon.client.get(f"/api/v1/workflow-events/default?{query}")
        assert reply.status == status, (query, reply.body)
        assert reply.json()["message"]


def test_label_selector_heartbeat_and_other_kinds(daemon: Daemon) -> None:
    stream = Stream(daemon.port, "/api/v1/workflow-events/default?listOptions.labelSelector=team%3Dblue")
    _submit(daemon, "red-one", label="red")
    _submit(daemon, "blue-one", label="blue")
    seen = stream.until(_named("blue-one"))
    assert {m["result"]["object"]["metadata"]["name"] for m in seen} == {"blue-one"}
    while not stream.resp.readline().startswith(b": heartbeat"):  # idle: heartbeats (every 0.5 s) keep it alive
        pass
    stream.close()
    for path in ("/api/v1/cron-workflow-events/default", "/api/v1/environment-events"):
        other = Stream(daemon.port, path)
        assert other.resp.status == 200, path
        other.close()


def test_cli_get_and_list_watch_through_server(daemon: Daemon) -> None:
    env = dict(daemon.env, RECONCILER_SERVER=daemon.url)
    lister = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "list", "-w", "-o", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        _submit(daemon, "watched")
        got = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "get", "-w", "watched", "-o", "json"],
                             check=False, capture_output=True, text=True, env=env, timeout=120)
        assert got.returncode == 0, got.stderr
        last = json.loads(got.stdout.strip().splitlines()[-1])
        assert last["status"]["phase"] == "Succeeded" and last["status"]["nodes"]
        for line in lister.stdout:
            event = json.loads(line)
            if event["object"]["metadata"]["name"] == "watched" and event["object"]["status"].get(
                    "phase") == "Succeeded":
                break
    finally:
        lister.terminate()
        lister.wait(10)


def test_cli_get_watch_on_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = dict(os.environ, RECONCILER_HOME=str(home))
    env.pop("RECONCILER_SERVER", None)
    manifest = tmp_path / "wf.yaml"
    manifest.write_text(HELLO.replace("NAME", "local").replace("LABEL", "x"))
    assert subprocess.run([sys.executable, "-m", "reconciler.cli.main", "submit", str(manifest)], env=env,
                          capture_output=True, check=False).returncode == 0
    watcher = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "get", "-w", "local", "-o", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    port_daemon = start_daemon(home, tmp_path)  # the daemon runs it; the watcher reads the store
    try:
        out, errors = watcher.communicate(timeout=120)
        assert watcher.returncode == 0, errors
        phases = [json.loads(line)["status"].get("phase") for line in out.splitlines()]
        assert phases[-1] == "Succeeded" and len(phases) >= 2
    finally:
        port_daemon.stop()
        if watcher.poll() is None:
            watcher.kill()


def test_feed_is_shared_and_drops_a_slow_subscriber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "MAX_QUEUED", 3)
    monkeypatch.setattr(feed_module, "POLL_SECONDS", 0.01)
    store = open_store(tmp_path / "store.db")
    feed = feed_module.Feed(store)

    async def scenario() -> tuple[int, bool, bool]:
        fast = feed.subscribe(frozenset({"ConfigMap"}))
        slow = feed.subscribe(frozenset({"ConfigMap"}))
        threads = sum(t.name == "reconciler-feed" for t in threading.enumerate())
        for i in range(20):
            await asyncio.to_thread(store.create, {"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": f"c{i}", "namespace": "default"}})
            while not fast.queue.empty():  # the fast one keeps up
                await fast.queue.get()
            await asyncio.sleep(0.05)
        feed.unsubscribe(fast)
        feed.unsubscribe(slow)
        return threads, slow.dropped, fast.dropped

    try:
        threads, slow_dropped, fast_dropped = asyncio.run(scenario())
    finally:
        feed.close()
        store.close()
    assert threads == 1  # one feed thread for both subscribers
    assert slow_dropped and not fast_dropped

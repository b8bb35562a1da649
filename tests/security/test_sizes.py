"""Issue 10, sizes: what a step, a workflow or a commit can make the daemon hold, store or rewrite.

Every attempt runs against a real `reconciler up` (a subprocess with its HTTP API, real bwrap
steps, a real SQLite store, a real git remote); each test asserts the attacker's goal was not
reached: memory stays bounded, nothing large is stored, the daemon stays up, the last good commit
stays applied. Small caps come from the daemon's config file where that keeps a test fast.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import limits
from reconciler.executors import LocalProcessExecutor

from ..conftest import run_cli
from ..gitops_repo import GitRemote, make_remote, template
from ..test_api_support import Daemon, start_daemon
from ..test_executor_local import run1, sh

pytestmark = pytest.mark.xdist_group("security-sizes")

MIB = 1 << 20
LOG_CAP = 1 * MIB
RESULT_CAP = 256 << 10  # Argo's: the default, not configured here
FINISHED = ("Succeeded", "Failed", "Error")


def vm_hwm_bytes(pid: int) -> int:
    """The process's peak resident memory, from the kernel."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def write_config(path: Path, limits: dict) -> Path:
    path.write_text(json.dumps({"limits": limits}))  # JSON is YAML
    return path


def submit(daemon: Daemon, manifest: str, namespace: str = "default") -> str:
    reply = daemon.client.request("POST", f"/api/v1/workflows/{namespace}", {"manifest": manifest})
    assert reply.status == 201, reply.body
    return reply.json()["items"][0]["metadata"]["name"]


def wait_finished(daemon: Daemon, name: str, namespace: str = "default", timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = daemon.client.get(f"/api/v1/workflows/{namespace}/{name}")
        assert reply.status == 200, reply.body
        wf = reply.json()
        if (wf.get("status") or {}).get("phase") in FINISHED:
            return wf
        assert daemon.proc.poll() is None, daemon.logs()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish in {timeout}s\n{daemon.logs()[-3000:]}")


def pods(wf: dict) -> dict[str, dict]:
    return {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}


def stored_size(home: Path, kind: str, namespace: str, name: str) -> tuple[int, int]:
    """(bytes of the object's row, its resourceVersion) as the store holds them."""
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT length(body), rv FROM objects WHERE kind=? AND namespace=? AND name=?",
                         (kind, namespace, name)).fetchone()
    assert row is not None, f"{kind} {namespace}/{name} not stored"
    return row


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("sizes")
    config = write_config(tmp / "config.yaml", {"logBytes": "1Mi", "workflowNodes": 60, "workflowOutputBytes": "1Mi"})
    daemon = start_daemon(tmp / "home", tmp, "--config", str(config))
    try:
        yield daemon
    finally:
        daemon.stop()


FLOOD = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata:
      name: flood
    spec:
      entrypoint: main
      templates:
      - name: main
        script:
          image: python:3.12
          command: [python]
          source: |
            import sys
            line = "x" * 1023 + "\\n"
            for _ in range(100 * 1024):  # 100 MiB
                sys.stdout.write(line)
            print("the end")
    """)


def test_a_step_printing_100_mb_keeps_argo_tail_as_result_and_a_capped_streamed_log(daemon: Daemon):
    name = submit(daemon, FLOOD)
    wf = wait_finished(daemon, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    node = pods(wf)["flood"]
    result = node["outputs"]["result"]
    # Argo keeps the last 256 KiB of stdout (after trimming one final newline): the end survives.
    assert result.endswith("x\nthe end")
    assert len(result.encode()) <= RESULT_CAP
    # The daemon never held the 100 MB: its peak RSS stays far below (it was 701 MB).
    assert vm_hwm_bytes(daemon.proc.pid) < 300 * MIB
    # What is stored for the workflow stays small.
    size, _ = stored_size(daemon.home, "Workflow", "default", name)
    assert size < 64 << 10

    reply = daemon.client.get(f"/api/v1/workflows/default/{name}/log?node={node['id']}")
    assert reply.status == 200
    text = reply.body.decode()
    assert "[reconciler] log truncated: over the 1 MiB limit (limits.logBytes)" in text
    assert "the end" not in text  # dropped after the cap
    assert len(reply.body) < LOG_CAP + 4096
    saved = daemon.home / "logs" / "default" / name / f"{node['id']}.log"
    assert saved.stat().st_size < LOG_CAP + 4096
    assert daemon.client.get("/healthz", token=False).status == 200
    assert "limits: resultBytes=256 KiB, outputParameterBytes=256 KiB, logBytes=1 MiB" in daemon.logs()


OUTPUTS = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata:
      name: outputs
    spec:
      entrypoint: main
      templates:
      - name: main
        dag:
          tasks:
          - {name: big-file, template: big-file}
          - {name: dev-zero, template: dev-zero}
          - {name: fits, template: fits}
      - name: big-file
        script:
          image: python:3.12
          command: [python]
          source: |
            open("/tmp/big", "w").write("y" * (1 << 20))
        outputs:
          parameters:
          - name: big
            valueFrom: {path: /tmp/big}
      - name: dev-zero
        container:
          image: alpine
          command: [sh, -c, "true"]
        outputs:
          parameters:
          - name: endless
            valueFrom: {path: /dev/zero}
      - name: fits
        container:
          image: alpine
          command: [sh, -c, "echo small > /tmp/small"]
        outputs:
          parameters:
          - name: small
            valueFrom: {path: /tmp/small}
    """)


def test_an_output_parameter_over_the_limit_fails_its_step_and_stores_nothing_large(daemon: Daemon):
    name = submit(daemon, OUTPUTS)
    wf = wait_finished(daemon, name)
    nodes = pods(wf)
    big, zero, fits = nodes["big-file"], nodes["dev-zero"], nodes["fits"]
    assert big["phase"] == "Error"
    assert big["message"].startswith("outputs.parameters.big: /tmp/big: the value is 1 MiB, over the 256 KiB limit")
    assert "limits.outputParameterBytes" in big["message"]
    assert zero["phase"] == "Error" and "outputs.parameters.endless: /dev/zero: the value is larger" in zero["message"]
    assert fits["phase"] == "Succeeded"
    assert fits["outputs"]["parameters"] == [{"name": "small", "value": "small"}]
    assert "parameters" not in (big.get("outputs") or {}) and "parameters" not in (zero.get("outputs") or {})
    size, _ = stored_size(daemon.home, "Workflow", "default", name)
    assert size < 64 << 10
    assert vm_hwm_bytes(daemon.proc.pid) < 300 * MIB
    assert daemon.client.get("/healthz", token=False).status == 200


def test_a_loop_of_a_trillion_items_fails_the_workflow_not_the_daemon(daemon: Daemon):
    name = submit(daemon, textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          name: trillion
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - name: each
                template: echo
                withSequence: {count: "1000000000000"}
          - name: echo
            container:
              image: alpine
              command: [echo, "{{item}}"]
        """))
    wf = wait_finished(daemon, name)
    assert wf["status"]["phase"] in ("Failed", "Error")
    messages = " ".join(n.get("message", "") for n in wf["status"]["nodes"].values())
    assert "withSequence makes 1000000000000 items, over the limit of 10000 (limits.loopItems" in messages
    assert not pods(wf)  # not one child was started
    assert vm_hwm_bytes(daemon.proc.pid) < 300 * MIB
    assert daemon.client.get("/healthz", token=False).status == 200


def test_a_workflow_keeps_at_most_its_output_limit_whatever_its_steps_print(daemon: Daemon):
    # Eight steps each printing 200 KiB (under the result limit): 1.6 MiB against a 1 MiB cap.
    name = submit(daemon, textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          name: chatty
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: talk, template: talk, withSequence: {count: "8"}}
          - name: talk
            script:
              image: python:3.12
              command: [python]
              source: |
                print("w" * 200 * 1024)
        """))
    wf = wait_finished(daemon, name)
    talks = [n for n in pods(wf).values()]
    kept = [n for n in talks if n["phase"] == "Succeeded"]
    refused = [n for n in talks if n["phase"] == "Error"]
    assert len(kept) == 5 and len(refused) == 3, [(n["phase"], n.get("message")) for n in talks]
    assert all("result" not in (n.get("outputs") or {}) for n in refused)
    assert "over the 1 MiB limit (limits.workflowOutputBytes" in refused[0]["message"]
    with sqlite3.connect(f"file:{daemon.home / 'store.db'}?mode=ro", uri=True) as db:
        (node_bytes,) = db.execute("SELECT sum(length(n.body)) FROM nodes n JOIN objects o ON n.object_id = o.id "
                                   "WHERE o.kind = 'Workflow' AND o.name = ?", (name,)).fetchone()
    assert 5 * 200 * 1024 < node_bytes < 1 * MIB + (64 << 10)  # the five results kept, not the other three
    assert daemon.client.get("/healthz", token=False).status == 200


def test_nested_loops_stop_at_the_workflow_node_limit(daemon: Daemon):
    name = submit(daemon, textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          name: nested
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - {name: outer, template: inner, withSequence: {count: "10"}}
          - name: inner
            steps:
            - - {name: each, template: echo, withSequence: {count: "10"}}
          - name: echo
            container:
              image: alpine
              command: [sh, -c, "true"]
        """))
    wf = wait_finished(daemon, name)
    assert wf["status"]["phase"] in ("Failed", "Error")
    nodes = wf["status"]["nodes"].values()
    assert len(nodes) <= 60 + 10  # the cap, plus the step nodes that report it
    assert any("nodes, over the limit of 60 (limits.workflowNodes" in n.get("message", "") for n in nodes)
    assert daemon.client.get("/healthz", token=False).status == 200


def test_expressions_that_would_build_400_mb_are_refused_not_held(daemon: Daemon):
    name = submit(daemon, textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          name: terabyte
        spec:
          entrypoint: main
          templates:
          - name: main
            steps:
            - - name: repeat
                template: echo
                arguments: {parameters: [{name: text, value: '{{=sprig.repeat(400000000, "x")}}'}]}
            - - name: range
                template: echo
                arguments: {parameters: [{name: text, value: '{{=len(1..10000000)}}'}]}
          - name: echo
            inputs: {parameters: [{name: text}]}
            container:
              image: alpine
              command: [sh, -c, 'echo "{{inputs.parameters.text}}" | head -c 100']
        """))
    wf = wait_finished(daemon, name)
    size, _ = stored_size(daemon.home, "Workflow", "default", name)
    assert size < 64 << 10, wf["status"]
    assert vm_hwm_bytes(daemon.proc.pid) < 300 * MIB
    assert daemon.client.get("/healthz", token=False).status == 200


def configmap(name: str, lines: int, width: int) -> str:
    body = "\n".join(f"    {'z' * width}{i}" for i in range(lines))
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  blob: |\n{body}\n"


def sync_dev(daemon: Daemon) -> dict:
    reply = daemon.client.request("POST", "/api/v1/sync?wait=true&env=dev")
    assert reply.status == 200, reply.body
    return {r["name"]: r for r in reply.json()["items"]}["dev"]


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Daemon, GitRemote]]:
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    config = write_config(tmp_path / "config.yaml", {"diffBytes": "4Ki", "environmentStatusBytes": "64Ki",
                                                     "environmentFilesBytes": "1Mi"})
    # An hour between polls: only the test's sync calls make passes happen.
    daemon = start_daemon(tmp_path / "home", tmp_path, "--config", str(config), "--repo", str(remote.bare),
                          "--poll-interval", "3600")
    try:
        yield daemon, remote
    finally:
        daemon.stop()


def test_a_50_mb_file_fails_the_environment_and_its_removal_leaves_a_small_still_status(synced):
    daemon, remote = synced
    home = daemon.home
    # A 200 KiB ConfigMap is a fine file, but its diff is over the 4 KiB diffBytes: summarised.
    medium = remote.commit("dev", {"workflows/medium.yaml": configmap("medium", 2000, 100)}, "medium")
    dev = sync_dev(daemon)
    assert dev["phase"] == "Synced" and dev["commit"] == medium, dev
    history = daemon.client.get("/api/v1/sync/history/dev").json()["items"]
    diffs = [c["diff"] for c in history[0]["plan"]["changes"] if c["name"] == "medium"]
    assert diffs and re.fullmatch(r"\d+ lines changed, diff omitted: over 4 KiB", diffs[0]), diffs

    huge = remote.commit("dev", {"workflows/huge.yaml": configmap("huge", 50 * 1024, 1018)}, "50 MB")
    dev = sync_dev(daemon)
    assert dev["phase"] == "Failed" and dev["commit"] == medium, dev  # the last good commit stays applied
    problem = dev["problems"][0]
    assert problem["file"] == "workflows/huge.yaml"
    assert re.match(r"the file is 50(\.\d)? MiB, over the 1\.5 MiB limit \(limits\.fileBytes", problem["message"])
    assert "workflows/huge.yaml" in dev["message"] and huge[:7] in dev["message"]
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM objects WHERE name='huge'").fetchone() == (0,)
    assert vm_hwm_bytes(daemon.proc.pid) < 300 * MIB  # the blob was never loaded

    removed = remote.commit("dev", {"workflows/huge.yaml": None}, "remove it")
    dev = sync_dev(daemon)
    assert dev["phase"] == "Synced" and dev["commit"] == removed, dev
    size, rv = stored_size(home, "Environment", "reconciler-system", "dev")
    assert size < (64 + 4) << 10  # the status cap plus metadata and spec

    again = sync_dev(daemon)  # nothing changed in git or in the namespace
    assert again["phase"] == "Synced" and again["commit"] == removed
    assert stored_size(home, "Environment", "reconciler-system", "dev") == (size, rv)  # not rewritten
    assert daemon.proc.poll() is None


def test_many_files_each_under_the_file_limit_still_cannot_add_up_past_the_environment_limit(synced):
    daemon, remote = synced
    before = sync_dev(daemon)["commit"]
    files = {f"workflows/part{i}.yaml": configmap(f"part{i}", 1000, 200) for i in range(6)}  # 6 x 200 KiB
    remote.commit("dev", files, "six parts")
    dev = sync_dev(daemon)
    assert dev["phase"] == "Failed" and dev["commit"] == before, dev
    assert [p["file"] for p in dev["problems"]] == ["workflows"]
    assert re.match(r"the YAML of environment dev \(7 files\) is 1\.\d MiB, over the 1 MiB limit "
                    r"\(limits\.environmentFilesBytes", dev["problems"][0]["message"])
    with sqlite3.connect(f"file:{daemon.home / 'store.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM objects WHERE name LIKE 'part%'").fetchone() == (0,)


@pytest.fixture
def small_result() -> Iterator[None]:
    """An executor made now keeps 8 bytes of result and 64 bytes of log."""
    before = limits.current()
    limits.configure(limits.Limits(result_bytes=8, log_bytes=64))
    yield
    limits.configure(before)


@pytest.mark.parametrize(("printed", "result"), [
    ("01234567\\n", "01234567"),  # exactly the cap once the final newline is trimmed: whole
    ("0123456789", "23456789"),  # Argo keeps the end
    ("0123456789\\n", "23456789"),
    ("abcdefg\\303\\251", "bcdefg\u00e9"),  # never half a character
    ("x\\303\\251abcdefg", "abcdefg"),  # a cut inside a character drops its tail bytes
])
def test_result_keeps_argos_tail_at_the_byte_boundaries(tmp_path: Path, small_result, printed: str, result: str):
    ex = LocalProcessExecutor(isolation="tmpdir")
    try:
        got = run1(ex, sh(tmp_path, "n", f"printf '{printed}'; printf 'e%.0s' $(seq 100) >&2"))
    finally:
        ex.close()
    assert got.stdout.removesuffix("\n") == result
    log = got.log_path.read_bytes()
    assert len(log) < 64 + 200 and b"[reconciler] log truncated: over the 64 bytes limit" in log


def test_every_limit_is_in_the_daemon_config_schema():
    schema = json.loads((Path(limits.__file__).parent / "spec" / "schemas" / "daemon-config.json").read_text())
    assert set(schema["properties"]["limits"]["properties"]) == set(limits.CONFIG_KEYS.values())


def test_lint_refuses_a_file_over_the_limit_with_its_path_and_size(tmp_path: Path, home: Path, monkeypatch):
    big = tmp_path / "big.yaml"
    big.write_text(template("big") + "# " + "p" * 4096 + "\n")
    monkeypatch.setenv("RECONCILER_MAX_FILE_BYTES", "2Ki")
    proc = run_cli(home, "lint", str(big))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(rf"{re.escape(str(big))}:1: \(file\): the file is 4\.\d KiB, over the 2 KiB limit "
                     r"\(limits\.fileBytes", proc.stdout + proc.stderr)


def test_up_refuses_a_limit_that_is_not_a_size(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch):
    config = write_config(tmp_path / "config.yaml", {"logBytes": "lots"})
    proc = run_cli(home, "up", "--config", str(config), "--listen", "off", timeout=60)
    assert proc.returncode == 2
    assert "limits.logBytes" in proc.stderr and "lots" in proc.stderr
    env = tmp_path / "env.yaml"
    env.write_text("{}")
    monkeypatch.setenv("RECONCILER_MAX_LOG_BYTES", "0")
    proc = run_cli(home, "up", "--config", str(env), "--listen", "off", timeout=60)
    assert proc.returncode == 1
    assert "RECONCILER_MAX_LOG_BYTES: '0' must be at least 1" in proc.stderr

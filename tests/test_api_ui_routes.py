"""What the daemon serves for the web UI, over real HTTP from a real `reconciler up`: `/` redirects to
/ui/, the page comes with its Content-Security-Policy, artifacts download at Argo's path (and nothing
outside the workflow's own), and a CronWorkflow's next fire times."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_api_support import Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("api-daemon")

PRODUCER = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: producer}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "printf 'plain bytes' > /tmp/o.txt"]}
    outputs:
      artifacts:
      - {name: raw, path: /tmp/o.txt, archive: {none: {}}}
      - {name: packed, path: /tmp/o.txt}
"""
CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  timezone: UTC
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      container: {image: alpine, command: [echo, hi]}
"""
SCOPED = "other-team-token-0123"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n- name: other\n  sha256: {hashlib.sha256(SCOPED.encode()).hexdigest()}\n"
                      "  namespaces: [other]\n  verbs: [read]\n")
    d = start_daemon(tmp_path / "home", tmp_path, "--api-tokens", str(tokens))
    yield d
    d.stop()


def test_root_redirects_to_the_ui_served_with_its_policy(daemon: Daemon) -> None:
    root = daemon.client.get("/", token=False)
    assert root.status == 307 and root.headers["location"] == "/ui/"
    page = daemon.client.get("/ui/", token=False)  # the files hold no data: no token needed for them
    assert page.status == 200 and b'<div id="toast"' in page.body
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    script = re.search(rb'src="(/ui/assets/[^"]+\.js)"', page.body).group(1).decode()
    assert daemon.client.get(script, token=False).status == 200
    assert daemon.client.get("/ui/assets/../../api/v1/workflows", token=False).status == 400


def test_artifact_download_at_argos_path(daemon: Daemon) -> None:
    assert daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": PRODUCER}).status == 201
    deadline = time.monotonic() + 60
    while True:
        wf = daemon.client.get("/api/v1/workflows/default/producer").json()
        if wf["status"].get("phase") in ("Succeeded", "Failed", "Error") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    pod = next(n for n in wf["status"]["nodes"].values() if n["type"] == "Pod")
    base = f"/artifact-files/default/workflows/producer/{pod['id']}/outputs"
    raw = daemon.client.get(f"{base}/raw")
    assert raw.status == 200 and raw.body == b"plain bytes"
    assert 'filename="raw"' in raw.headers["content-disposition"]
    packed = daemon.client.get(f"{base}/packed")
    assert packed.status == 200 and packed.body[:2] == b"\x1f\x8b"  # the stored .tgz
    assert daemon.client.get(f"{base}/missing").status == 404
    assert daemon.client.get("/artifact-files/default/workflows/producer/no-such-node/outputs/raw").status == 404
    assert daemon.client.get(f"{base}/raw", token=False).status == 401
    assert daemon.client.get(f"{base}/raw", token=SCOPED).status == 403  # another namespace's token


def test_cron_next_runs(daemon: Daemon) -> None:
    reply = daemon.client.request("POST", "/api/v1/apply/default", {"manifest": CRON})
    assert reply.status == 200, reply.body
    runs = daemon.client.get("/api/v1/cron-workflows/default/nightly/next-runs?count=3").json()["nextRuns"]
    assert len(runs) == 3 and all(re.fullmatch(r"\d{4}-\d\d-\d\dT02:00:00Z", t) for t in runs)
    assert runs == sorted(runs) and len(set(runs)) == 3
    assert daemon.client.get("/api/v1/cron-workflows/default/nightly/next-runs?count=500").status == 422
    assert daemon.client.request("PUT", "/api/v1/cron-workflows/default/nightly/suspend").status == 200
    assert daemon.client.get("/api/v1/cron-workflows/default/nightly/next-runs").json()["nextRuns"] == []
    assert daemon.client.get("/api/v1/cron-workflows/default/absent/next-runs").status == 404

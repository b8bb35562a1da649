"""End to end: a real `reconciler up --repo` subprocess on a temporary git remote, its HTTP API on a
free port, token and webhook secret from the environment. A push to dev reaches the daemon through a
signed GitHub (and a GitLab) webhook; forged ones change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import wait_for
from .gitops_repo import GitRemote, make_remote, template
from .test_api_support import TOKEN, WEBHOOK_SECRET, Daemon, github_signature, start_daemon

pytestmark = pytest.mark.xdist_group("api-e2e")


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Daemon, GitRemote]]:
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    home = tmp_path / "home"
    # An hour between polls: only the webhooks can make a sync happen during the test.
    daemon = start_daemon(home, tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        yield daemon, remote
    finally:
        daemon.stop()


def dev_status(daemon: Daemon) -> dict:
    reply = daemon.client.get("/api/v1/sync/status")
    assert reply.status == 200, reply.body
    return {e["name"]: e for e in reply.json()["items"]}["dev"]



def push_payload(branch: str, sha: str) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "after": sha, "repository": {"name": "workflows"}}).encode()


def test_signed_github_webhook_syncs_the_pushed_branch_and_forged_ones_change_nothing(synced):
    daemon, remote = synced
    client = daemon.client
    ready = client.get("/readyz", token=False)
    assert ready.status == 200 and ready.json() == {"status": "ready"}
    first = dev_status(daemon)
    assert first["phase"] == "Synced" and first["commit"] == remote.remote_head("dev")
    templates = client.get("/api/v1/workflows")  # reads need the token too (no open reads configured)
    assert templates.status == 200

    new = remote.commit("dev", {"workflows/report.yaml": template("report")}, "add report")
    body = push_payload("dev", new)

    forged = client.request("POST", "/api/v1/webhook/github", body, token=False,
                            headers={"X-GitHub-Event": "push", "Content-Type": "application/json",
                                     "X-Hub-Signature-256": github_signature(body, "not-the-secret")})
    assert forged.status == 401, forged.body
    unsigned = client.request("POST", "/api/v1/webhook/github", body, token=False,
                              headers={"X-GitHub-Event": "push"})
    assert unsigned.status == 401
    time.sleep(1.5)  # had a forged call triggered a pass, it would have finished by now
    assert dev_status(daemon)["commit"] == first["commit"]
    history = client.get("/api/v1/sync/history/dev").json()["items"]

    ping = client.request("POST", "/api/v1/webhook/github", b'{"zen": "hi"}', token=False,
                          headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": github_signature(b'{"zen": "hi"}')})
    assert ping.status == 204

    signed = client.request("POST", "/api/v1/webhook/github", body, token=False,
                            headers={"X-GitHub-Event": "push", "Content-Type": "application/json",
                                     "X-Hub-Signature-256": github_signature(body)})
    assert signed.status == 202, signed.body
    assert signed.json() == {"triggered": True, "branch": "dev", "suspended": []}
    assert wait_for(lambda: dev_status(daemon)["commit"] == new), dev_status(daemon)
    assert dev_status(daemon)["phase"] == "Synced"
    newer_history = client.get("/api/v1/sync/history/dev").json()["items"]
    assert len(newer_history) == len(history) + 1 and newer_history[0]["commit"] == new
    assert {c["name"] for c in newer_history[0]["plan"]["changes"]} == {"report"}

    # GitLab: the shared token in X-Gitlab-Token.
    newest = remote.commit("dev", {"workflows/cleanup.yaml": template("cleanup")}, "add cleanup")
    gl_body = json.dumps({"object_kind": "push", "ref": "refs/heads/dev", "after": newest}).encode()
    wrong = client.request("POST", "/api/v1/webhook/gitlab", gl_body, token=False,
                           headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})
    assert wrong.status == 401
    time.sleep(1.0)
    assert dev_status(daemon)["commit"] == new
    right = client.request("POST", "/api/v1/webhook/gitlab", gl_body, token=False,
                           headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": WEBHOOK_SECRET})
    assert right.status == 202
    assert wait_for(lambda: dev_status(daemon)["commit"] == newest)
    tag = client.request("POST", "/api/v1/webhook/gitlab", b'{"object_kind": "tag_push", "ref": "refs/tags/v1"}',
                         token=False, headers={"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": WEBHOOK_SECRET})
    assert tag.status == 204

    # /metrics is open, and parsed with prometheus-client's own parser.
    reply = client.get("/metrics", token=False)
    assert reply.status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(reply.body.decode()) for s in family.samples}
    assert samples[("reconciler_environment_info", (("branch", "dev"), ("commit", newest),
                                                    ("environment", "dev"), ("namespace", "team-dev")))] == 1
    dev = (("environment", "dev"), ("namespace", "team-dev"))
    assert samples[("reconciler_out_of_sync", dev)] == 0
    assert samples[("reconciler_sync_results_total", (*dev, ("phase", "Synced"), ("reason", "Synced")))] >= 3
    assert samples[("reconciler_sync_duration_seconds_count", dev)] >= 3
    assert samples[("reconciler_last_successful_sync_timestamp_seconds", dev)] > time.time() - 60
    assert not [name for name, _ in samples if name.endswith("_created")]
    assert samples[("reconciler_git_fetch_duration_seconds_count", ())] >= 3


def test_sync_endpoint_and_the_cron_workflows_the_sync_applied(synced):
    daemon, remote = synced
    client = daemon.client
    assert client.request("POST", "/api/v1/sync", token=False).status == 401
    assert client.request("POST", "/api/v1/sync").status == 202
    waited = client.request("POST", "/api/v1/sync?wait=true&env=dev")
    assert waited.status == 200, waited.body
    assert [r["name"] for r in waited.json()["items"]] == ["dev"]
    assert client.request("POST", "/api/v1/sync?wait=true&env=nope").status == 404
    assert client.get("/api/v1/sync/history/nope").status == 404
    status = client.get("/api/v1/sync/status").json()
    assert status["syncing"] and status["firstPassDone"] and status["lastError"] == ""
    assert {e["name"]: e["namespace"] for e in status["items"]} == {"dev": "team-dev", "qa": "team-qa",
                                                                    "prod": "team-prod"}
    crons = client.get("/api/v1/cron-workflows?namespace=team-dev")
    assert crons.status == 200 and crons.json() == {"items": []}


def test_daemon_refuses_a_public_address_without_a_token(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["RECONCILER_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "up", "--listen", "0.0.0.0:0"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode != 0
    assert "without a token" in proc.stderr and "RECONCILER_API_TOKEN" in proc.stderr
    assert TOKEN not in proc.stderr

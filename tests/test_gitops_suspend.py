"""Suspending one environment's sync during an incident (`reconciler env suspend/resume`, like `flux
suspend`), and the daemon's log of what sync passes did: a real `reconciler up --repo` on a real git
remote, the real CLI (local and through the API), signed webhooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import wait_for
from .gitops_repo import make_remote, template
from .test_api_cli import cli, ok
from .test_api_support import Daemon, github_signature, start_daemon

pytestmark = pytest.mark.xdist_group("gitops-daemon")



def envs(daemon: Daemon) -> dict[str, dict]:
    reply = daemon.client.get("/api/v1/sync/status")
    assert reply.status == 200, reply.body
    return {e["name"]: e for e in reply.json()["items"]}


def templates(home: Path, namespace: str) -> list[str]:
    return ok(cli(home, "template", "list", "-n", namespace, "-o", "name")).split()


def push(daemon: Daemon, branch: str):
    body = json.dumps({"ref": f"refs/heads/{branch}"}).encode()
    return daemon.client.request("POST", "/api/v1/webhook/github", body, token=False,
                                 headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": github_signature(body)})


def test_a_suspended_environment_holds_through_polls_webhooks_sync_and_a_restart(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    repo = str(remote.bare)
    home, elsewhere = tmp_path / "home", tmp_path / "client"
    daemon = start_daemon(home, tmp_path, "--repo", repo, "--poll-interval", "0.3")
    try:
        assert wait_for(lambda: envs(daemon).get("dev", {}).get("commit") == remote.remote_head("dev"))
        out = ok(cli(elsewhere, "env", "suspend", "dev", "--reason", "incident 42", server=daemon.url))
        assert "environment dev suspended" in out
        dev = envs(daemon)["dev"]
        assert dev["suspended"] and dev["suspendReason"] == "incident 42" and dev["suspendedAt"]

        new = remote.commit("dev", {"workflows/report.yaml": template("report")}, "Add report")
        hook = push(daemon, "dev")
        assert hook.status == 200 and hook.json() == {"triggered": False, "branch": "dev", "suspended": ["dev"]}
        # Polls go on (they note the head), and nothing of the new commit is applied.
        assert wait_for(lambda: envs(daemon)["dev"]["head"] == new)
        passes = daemon.client.get("/api/v1/sync/status").json()["passes"]
        assert wait_for(lambda: daemon.client.get("/api/v1/sync/status").json()["passes"] >= passes + 3)
        dev = envs(daemon)["dev"]
        assert dev["commit"] != new and dev["gitAhead"] and "report" not in templates(home, "team-dev")
        table = ok(cli(elsewhere, "status", server=daemon.url))
        dev_line = next(line for line in table.splitlines() if line.split()[0] == "dev")
        assert "Synced (Suspended)" in dev_line and f"(git ahead: {new[:7]})" in dev_line
        assert "dev: suspended since" in ok(cli(elsewhere, "status", "-o", "wide", server=daemon.url))
        # qa is not suspended: a push to it is served as usual.
        assert push(daemon, "qa").status == 202
        # `reconciler sync` by hand leaves a suspended environment alone too.
        synced = json.loads(ok(cli(home, "sync", "--repo", repo, "--env", "dev", "-o", "json")))
        assert synced[0]["reason"] == "Suspended" and not synced[0]["applied"]
        assert "report" not in templates(home, "team-dev")
    finally:
        daemon.stop()

    # The flag lives in the store: a restarted daemon keeps the environment suspended.
    daemon = start_daemon(home, tmp_path, "--repo", repo, "--poll-interval", "0.3")
    try:
        assert wait_for(lambda: daemon.client.get("/api/v1/sync/status").json()["passes"] >= 2)
        assert envs(daemon)["dev"]["suspended"] and "report" not in templates(home, "team-dev")
        # Resume with the local CLI on the daemon's data directory: the next poll catches up.
        assert "environment dev resumed" in ok(cli(home, "env", "resume", "dev"))
        assert wait_for(lambda: envs(daemon)["dev"]["commit"] == new)
        assert "report" in templates(home, "team-dev") and not envs(daemon)["dev"]["suspended"]
        # Suspend and resume through the API itself; a resume starts a pass.
        api = daemon.client
        reply = api.request("PUT", "/api/v1/sync/environments/qa/suspend", {"reason": "x" * 501})
        assert reply.status == 400 and not envs(daemon)["qa"]["suspended"]
        assert api.request("PUT", "/api/v1/sync/environments/qa/suspend", token=False).status == 401
        assert api.request("PUT", "/api/v1/sync/environments/nope/suspend").status == 404
        assert api.request("PUT", "/api/v1/sync/environments/qa/suspend").json()["suspended"] is True
        assert api.request("PUT", "/api/v1/sync/environments/qa/resume").json()["suspended"] is False
    finally:
        daemon.stop()
    missing = cli(home, "env", "suspend", "staging")
    assert missing.returncode == 1 and "has not been synced yet" in missing.stderr


def test_the_daemon_logs_a_rejected_commit_once_no_change_passes_at_debug_and_warnings(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    home = tmp_path / "home"
    daemon = start_daemon(home, tmp_path, "--repo", str(remote.bare), "--poll-interval", "0.3",
                          "--log-format", "json")
    try:
        assert wait_for(lambda: envs(daemon).get("qa", {}).get("phase") == "Synced")
        bad = remote.commit("qa", {"workflows/broken.yaml": template("broken", extra="    daemon: true\n")})
        remote.commit("dev", {"workflows/latest.yaml": template("latest", image="python:latest")})
        assert wait_for(lambda: envs(daemon)["qa"]["head"] == bad and envs(daemon)["dev"]["warnings"])
        passes = daemon.client.get("/api/v1/sync/status").json()["passes"]
        assert wait_for(lambda: daemon.client.get("/api/v1/sync/status").json()["passes"] >= passes + 5)
        warnings = envs(daemon)["dev"]["warnings"]
    finally:
        daemon.stop()
    lines = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    sync = [line for line in lines if line["logger"] == "reconciler.sync"]
    rejected = [line for line in sync if f"commit {bad[:7]} rejected" in line["message"]]
    assert [line["level"] for line in rejected] == ["error"], "logged once, not on every poll"
    assert "workflows/broken.yaml:17" in rejected[0]["message"] and rejected[0]["environment"] == "qa"
    assert not [line for line in sync if line["level"] == "info" and "no changes" in line["message"]]
    warned = [line for line in sync if line["level"] == "warning" and "image-tag-pinned" in line["message"]]
    assert len(warned) == len(warnings) == 1 and warned[0]["environment"] == "dev"
    assert "workflows/latest.yaml" in warned[0]["message"]

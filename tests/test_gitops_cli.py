"""The GitOps commands as a user runs them: real git repositories, the real CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import REPO, run_cli
from .gitops_repo import make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")


def test_sample_repo_syncs_every_environment_and_shows_in_status(home: Path, tmp_path: Path):
    lint = run_cli(home, "lint", str(REPO / "sample-repo"))
    assert lint.returncode == 0, lint.stderr
    repo = tmp_path / "sample"
    out = run_cli(home, "sample-repo", str(repo), check=True).stdout
    assert "with branches main, qa, dev" in out
    diff = run_cli(home, "diff", "--repo", str(repo), "--env", "dev")
    assert diff.returncode == 1 and "+ WorkflowTemplate analytics-dev/ml-train: new in git" in diff.stdout
    assert run_cli(home, "status", "-o", "json", check=True).stdout.strip() == "[]"  # diff changes nothing
    sync = run_cli(home, "sync", "--repo", str(repo), check=True)
    assert "prod (branch main -> namespace analytics-prod) Synced" in sync.stdout
    envs = json.loads(run_cli(home, "status", "-o", "json", check=True).stdout)
    head = (repo / ".git" / "refs" / "heads" / "main").read_text().strip()
    assert [(e["name"], e["branch"], e["namespace"], e["commit"], e["phase"]) for e in envs] == [
        ("dev", "dev", "analytics-dev", head, "Synced"),  # reconciler.yaml's order, not by name
        ("qa", "qa", "analytics-qa", head, "Synced"),
        ("prod", "main", "analytics-prod", head, "Synced")]
    assert all(e["message"] for e in envs)
    templates = json.loads(run_cli(home, "template", "list", "-n", "analytics-prod", "-o", "json", check=True).stdout)
    assert [t["metadata"]["name"] for t in templates] == ["common-steps", "ml-train"]
    crons = json.loads(run_cli(home, "cron", "list", "-n", "analytics-qa", "-o", "json", check=True).stdout)
    assert [c["metadata"]["name"] for c in crons] == ["etl-nightly"]
    assert run_cli(home, "diff", "--repo", str(repo)).returncode == 0
    table = run_cli(home, "status", check=True).stdout
    assert "analytics-dev" in table and "Synced" in table
    hist = run_cli(home, "history", "--env", "dev", check=True).stdout
    assert "create WorkflowTemplate analytics-dev/common-steps: new in git" in hist


def test_sync_exits_non_zero_when_an_environment_fails_and_status_names_file_and_line(home, tmp_path, monkeypatch):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    monkeypatch.setenv("RECONCILER_REPO", str(remote.bare))  # run_cli passes the environment on
    run_cli(home, "sync", check=True)
    remote.commit("qa", {"workflows/etl.yaml": template("etl", extra="    daemon: true\n")})
    proc = run_cli(home, "sync")
    assert proc.returncode == 1
    assert "workflows/etl.yaml:17: spec.templates[0].daemon: unsupported field" in proc.stderr
    qa = next(e for e in json.loads(run_cli(home, "status", "-o", "json").stdout) if e["name"] == "qa")
    assert qa["phase"] == "Failed" and "workflows/etl.yaml:17" in qa["message"]
    assert qa["commit"] != remote.remote_head("qa")
    assert run_cli(home, "sync", "--env", "dev").returncode == 0
    assert "no environment 'nope'" in run_cli(home, "sync", "--env", "nope").stderr


def test_promote_fast_forwards_and_refuses_otherwise(home, tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    repo = str(remote.bare)
    run_cli(home, "sync", "--repo", repo, check=True)
    sha = remote.commit("dev", {"workflows/report.yaml": template("report")})
    assert run_cli(home, "diff", "--repo", repo, "--env", "dev").returncode == 1
    dev = next(e for e in json.loads(run_cli(home, "status", "-o", "json").stdout) if e["name"] == "dev")
    assert dev["phase"] == "OutOfSync" and "1 to create" in dev["message"]
    proc = run_cli(home, "promote", "dev", "qa", "--repo", repo, check=True)
    assert "promoted dev -> qa: qa" in proc.stdout and remote.remote_head("qa") == sha
    run_cli(home, "sync", "--repo", repo, check=True)
    qa = json.loads(run_cli(home, "template", "list", "-n", "team-qa", "-o", "json").stdout)
    assert [t["metadata"]["name"] for t in qa] == ["etl", "report"]
    assert "nothing to promote" in run_cli(home, "promote", "dev", "qa", "--repo", repo, check=True).stdout
    # prod (main) has a hotfix dev lacks: promoting dev -> prod is not a fast-forward
    hotfix = remote.commit("main", {"workflows/hotfix.yaml": template("hotfix")})
    proc = run_cli(home, "promote", "dev", "prod", "--repo", repo)
    assert proc.returncode == 1 and "not a fast-forward" in proc.stderr and "merge main into dev" in proc.stderr
    assert remote.remote_head("main") == hotfix
    assert "no repository" in run_cli(home, "sync").stderr


def test_status_and_history_before_any_sync(home):
    assert "no environments synced yet" in run_cli(home, "status", check=True).stdout
    proc = run_cli(home, "history", "--env", "dev")
    assert proc.returncode == 1 and "has not been synced yet" in proc.stderr

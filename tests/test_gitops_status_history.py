"""`status` and `history` as a person reads them: real git repositories, the real CLI in a subprocess."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .conftest import run_cli
from .gitops_repo import make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")


def workflow(size: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata:
          generateName: load-
        spec:
          entrypoint: main
          arguments:
            parameters:
            - name: rows
              value: "{size}"
          templates:
          - name: main
            container:
              image: python:3.12-slim
              command: [echo, "{{{{workflow.parameters.rows}}}}"]
              resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}
        """)


def status_json(home: Path) -> dict[str, dict]:
    proc = run_cli(home, "status", "-o", "json")
    return {e["name"]: e for e in json.loads(proc.stdout)}


def test_history_records_changes_only_with_subject_author_and_a_diff_against_the_previous_run(home, tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl"), "workflows/load.yaml": workflow("10")})
    repo = str(remote.bare)
    for _ in range(3):
        run_cli(home, "sync", "--repo", repo, "--env", "dev", check=True)
    entries = json.loads(run_cli(home, "history", "--env", "dev", "-o", "json", check=True).stdout)
    assert len(entries) == 1, "a pass that changed nothing is counted, not recorded"
    assert entries[0]["unchangedPasses"] == 2 and entries[0]["subject"] == "initial" and entries[0]["author"] == "t"

    remote.commit("dev", {"workflows/load.yaml": workflow("20")}, "Load twice as many rows")
    run_cli(home, "sync", "--repo", repo, "--env", "dev", check=True)
    run_cli(home, "sync", "--repo", repo, "--env", "dev", check=True)
    newest, first = json.loads(run_cli(home, "history", "--env", "dev", "-o", "json", check=True).stdout)
    assert (newest["subject"], newest["author"], newest["unchangedPasses"]) == ("Load twice as many rows", "t", 1)
    (change,) = newest["plan"]["changes"]
    old_run = next(c["name"] for c in first["plan"]["changes"] if c["kind"] == "Workflow")
    assert change["kind"] == "Workflow" and change["action"] == "create"
    assert change["reason"] == f"new workflow content: runs once (previous run {old_run})"
    # A diff against what the file ran last: the one changed value, not the whole object as new.
    assert "-      value: '10'" in change["diff"] and "+      value: '20'" in change["diff"]
    assert "+  entrypoint: main" not in change["diff"]
    assert change["diff"].startswith(f"--- live/Workflow/{old_run}\n+++ git/Workflow/{change['name']}\n")

    text = run_cli(home, "history", "--env", "dev", check=True).stdout
    assert "commit " in text and "Load twice as many rows (t)" in text
    assert "1 passes without changes since" in text and "2 passes without changes since" in text


def test_status_order_last_change_git_ahead_cut_messages_warnings_and_exit_code(home, tmp_path):
    # dev is not production: an unpinned image is a warning there, applied anyway.
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    repo = str(remote.bare)
    remote.commit("dev", {"workflows/latest.yaml": template("latest", image="python:latest")}, "Use latest python")
    run_cli(home, "sync", "--repo", repo, check=True)
    run_cli(home, "sync", "--repo", repo, check=True)  # a pass with no change keeps the last change visible
    envs = status_json(home)
    assert list(envs) == ["dev", "qa", "prod"]  # reconciler.yaml's order
    dev = envs["dev"]
    assert dev["lastChange"]["subject"] == "Use latest python" and dev["lastChange"]["summary"].startswith("4 created")
    assert [w["file"] for w in dev["warnings"]] == ["workflows/latest.yaml"]
    assert "policy image-tag-pinned (warn)" in dev["warnings"][0]["message"]
    table = run_cli(home, "status", check=True).stdout
    dev_line = next(line for line in table.splitlines() if line.split()[0] == "dev")
    assert "Use latest python" in dev_line and " 1 " in dev_line  # last change and one warning
    wide = run_cli(home, "status", "-o", "wide", check=True).stdout
    assert "dev: warning: workflows/latest.yaml:" in wide and "policy image-tag-pinned (warn)" in wide
    hist = run_cli(home, "history", "--env", "dev", check=True).stdout
    assert "warning: workflows/latest.yaml:" in hist

    # qa breaks on many files at once: a long message, git ahead of what qa runs, exit 1.
    broken = {f"workflows/broken-{i}.yaml": template(f"broken-{i}", extra="    daemon: true\n") for i in range(6)}
    bad = remote.commit("qa", broken, "Break qa")
    assert run_cli(home, "sync", "--repo", repo).returncode == 1
    qa = status_json(home)["qa"]
    assert qa["phase"] == "Failed" and qa["gitAhead"] and qa["head"] == bad and len(qa["message"]) > 200
    proc = run_cli(home, "status")
    assert proc.returncode == 1
    qa_line = next(line for line in proc.stdout.splitlines() if line.split()[0] == "qa")
    assert f"(git ahead: {bad[:7]})" in qa_line
    assert "…" in qa_line and qa["message"] not in proc.stdout  # cut in the table
    wide = run_cli(home, "status", "-o", "wide")
    assert wide.returncode == 1 and qa["message"] in " ".join(wide.stdout.split())
    assert run_cli(home, "status", "--env", "dev").returncode == 0
    assert run_cli(home, "status", "--env", "qa", "-o", "json").returncode == 1

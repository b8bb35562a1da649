"""promote, rollback, check and lint as a team uses them: the real CLI on real git repositories.

Each command builds the target environment from the commit it would put there (overrides and
policies included) and refuses, naming file, line and rule, before anything is pushed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli
from .gitops_repo import GIT_ENV, make_remote, template, workflow

pytestmark = pytest.mark.xdist_group("gitops")

LATEST = "python:latest"  # allowed (warn) outside production, denied in prod by image-tag-pinned

@pytest.fixture
def remote(tmp_path: Path):
    return make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})


def branches(remote) -> set[str]:
    return set(remote.git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=remote.bare).split())


def image_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "image:" in line)


def test_promote_refuses_a_target_that_is_not_an_environment(home, remote):
    sha = remote.commit("dev", {"workflows/report.yaml": template("report")})
    before = branches(remote)
    proc = run_cli(home, "promote", "dev", "prdo", "--repo", str(remote.bare))
    assert proc.returncode == 1
    assert "prdo is not an environment of reconciler.yaml" in proc.stderr and "prod (branch main)" in proc.stderr
    assert branches(remote) == before  # no branch prdo created
    # A source that is neither an environment nor a branch is refused too.
    proc = run_cli(home, "promote", "deev", "qa", "--repo", str(remote.bare))
    assert proc.returncode == 1 and "deev is neither an environment nor a branch" in proc.stderr
    # An environment's branch names that environment: main is prod's, and prod's checks ran on it.
    proc = run_cli(home, "promote", "dev", "main", "--repo", str(remote.bare), check=True)
    assert "promoted dev -> prod: main" in proc.stdout and remote.remote_head("main") == sha


def test_promote_runs_the_targets_policies_before_pushing(home, remote):
    bad = template("etl", image=LATEST)
    sha = remote.commit("dev", {"workflows/etl.yaml": bad}, "use the latest image")
    prod_before = remote.remote_head("main")
    proc = run_cli(home, "promote", "dev", "prod", "--repo", str(remote.bare))
    assert proc.returncode == 1
    assert (f"workflows/etl.yaml:{image_line(bad)}: spec.templates[0].container.image: policy image-tag-pinned "
            "(deny)") in proc.stderr
    assert "fails environment prod's checks" in proc.stderr and "rules: image-tag-pinned" in proc.stderr
    assert "nothing was pushed" in proc.stderr and remote.remote_head("main") == prod_before
    # The same commit passes qa, where the rule only warns: pushed, with the warning shown.
    proc = run_cli(home, "promote", "dev", "qa", "--repo", str(remote.bare), check=True)
    assert "policy image-tag-pinned (warn)" in proc.stderr and remote.remote_head("qa") == sha


def test_promote_dry_run_prints_the_diff_per_object_and_pushes_nothing(home, remote):
    qa_before = remote.remote_head("qa")
    sha = remote.commit("dev", {"workflows/etl.yaml": template("etl", message="bye"),
                                "workflows/report.yaml": template("report")})
    proc = run_cli(home, "promote", "dev", "qa", "--repo", str(remote.bare), "--dry-run", check=True)
    out = proc.stdout
    assert "plan for qa (namespace team-qa): 1 to create, 1 to update, 0 to delete" in out
    assert "~ WorkflowTemplate team-qa/etl: changed in git (workflows/etl.yaml)" in out
    assert "+ WorkflowTemplate team-qa/report: new in git (workflows/report.yaml)" in out
    assert f"--- qa@{qa_before[:7]}/WorkflowTemplate/etl" in out and f"+++ {sha[:7]}/WorkflowTemplate/etl" in out
    assert "-      - hello" in out and "+      - bye" in out
    assert f"would promote dev -> qa: qa {qa_before[:7]} -> {sha[:7]}; nothing pushed" in out
    assert remote.remote_head("qa") == qa_before


def test_check_builds_a_feature_branch_with_the_environments_overrides_and_policies(home, remote, tmp_path):
    bad = template("etl", image=LATEST)
    remote.commit("feature", {"workflows/etl.yaml": bad}, base="dev")
    remote.commit("sized", {"workflows/sized.yaml": workflow()}, base="dev")
    repo = str(remote.bare)
    # dev: the image only warns.
    proc = run_cli(home, "check", "--env", "dev", "--ref", "feature", "--repo", repo)
    assert proc.returncode == 0, proc.stderr
    assert "policy image-tag-pinned (warn)" in proc.stderr and "check dev at feature" in proc.stdout
    assert "passes" in proc.stdout
    # prod: denied by its policy, with file, line and rule.
    proc = run_cli(home, "check", "--env", "prod", "--ref", "feature", "--repo", repo)
    assert proc.returncode == 1 and "FAILS: 1 error(s)" in proc.stdout
    assert f"workflows/etl.yaml:{image_line(bad)}: spec.templates[0].container.image: policy image-tag-pinned " \
           "(deny)" in proc.stderr
    # A Workflow whose `size` has no value: dev's override gives it one; qa has none, so it cannot run there.
    assert run_cli(home, "check", "--env", "dev", "--ref", "sized", "--repo", repo).returncode == 0
    proc = run_cli(home, "check", "--env", "qa", "--ref", "sized", "--repo", repo)
    assert proc.returncode == 1
    assert "workflows/sized.yaml:8: spec.arguments.parameters[0]: workflow parameter size has no value" in proc.stderr
    report = json.loads(run_cli(home, "check", "--env", "prod", "--ref", "feature", "--repo", repo, "-o", "json").stdout)
    assert report["ok"] is False and [(p["file"], p["line"]) for p in report["problems"]] == [
        ("workflows/etl.yaml", image_line(bad))]
    # What cannot be checked is exit 2, not a pass.
    assert run_cli(home, "check", "--env", "nope", "--ref", "feature", "--repo", repo).returncode == 2
    proc = run_cli(home, "check", "--env", "prod", "--ref", "no-such-branch", "--repo", repo)
    assert proc.returncode == 2 and "no branch, tag or commit no-such-branch" in proc.stderr
    # A ref is never an option or a refspec to git.
    marker = tmp_path / "pwned"
    for ref in (f"--upload-pack=touch {marker}", f"main:refs/heads/{marker.name}"):
        proc = run_cli(home, "check", "--env", "prod", f"--ref={ref}", "--repo", repo)
        assert proc.returncode == 2 and "no branch, tag or commit" in proc.stderr
    assert not marker.exists() and marker.name not in branches(remote)


def test_check_in_a_shallow_ci_checkout_with_ref_head(home, remote, tmp_path: Path):
    # What CI has: a shallow clone of the pull request's branch, HEAD detached on a commit of its own.
    remote.commit("feature", {"workflows/etl.yaml": template("etl", image=LATEST)}, base="dev")
    ci = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{remote.bare}", str(ci)],
                   check=True, env=GIT_ENV)
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=ci, check=True, env=GIT_ENV)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "merge commit"], cwd=ci, check=True, env=GIT_ENV)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ci, capture_output=True, text=True, check=True).stdout
    env = dict(os.environ, RECONCILER_HOME=str(home))
    env.pop("RECONCILER_REPO", None)
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "check", "--env", "prod", "--ref", "HEAD"],
                          cwd=ci, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"check prod at HEAD ({head[:7]}): FAILS" in proc.stdout and "policy image-tag-pinned (deny)" in proc.stderr


def test_lint_runs_the_repositorys_policies_per_environment(home, remote):
    bad = template("etl", image=LATEST)
    (remote.work / "workflows" / "etl.yaml").write_text(bad)
    target = str(remote.work / "workflows")
    proc = run_cli(home, "lint", target)
    assert proc.returncode == 2
    line = f"etl.yaml:{image_line(bad)}: spec.templates[0].container.image: policy image-tag-pinned"
    assert f"{line} (deny): " in proc.stderr and "(environment prod)" in proc.stderr
    assert f"warning: {remote.work}/workflows/{line} (warn)" in proc.stderr and "(environments dev, qa)" in proc.stderr
    dev = run_cli(home, "lint", target, "--env", "dev")
    assert dev.returncode == 0 and "(deny)" not in dev.stderr and "(environment dev)" in dev.stderr
    alone = run_cli(home, "lint", target, "--no-policies")
    assert alone.returncode == 0 and "policy" not in alone.stderr
    assert run_cli(home, "lint", target, "--env", "nope").returncode == 2
    # A reconciler.yaml that names a missing policy folder fails every build: lint says so.
    (remote.work / "reconciler.yaml").write_text((remote.work / "reconciler.yaml").read_text()
                                                 + "policies: {files: [no-such-folder]}\n")
    proc = run_cli(home, "lint", target, "--env", "dev")
    assert proc.returncode == 2 and "policy file or folder no-such-folder not found" in proc.stderr


def test_rollback_restores_an_earlier_commit_as_a_new_commit(home, remote):
    repo = str(remote.bare)
    good = remote.remote_head("main")
    remote.commit("main", {"workflows/etl.yaml": template("etl", message="second")}, "second")
    third = remote.commit("main", {"workflows/report.yaml": template("report")}, "third")
    run_cli(home, "sync", "--repo", repo, "--env", "prod", check=True)
    dry = run_cli(home, "rollback", "prod", good, "--repo", repo, "--dry-run", check=True)
    assert "0 to create, 1 to update, 1 to delete" in dry.stdout and "+      - hello" in dry.stdout
    assert "- WorkflowTemplate team-prod/report: file removed from git (prune)" in dry.stdout
    assert remote.remote_head("main") == third
    proc = run_cli(home, "rollback", "prod", good[:10], "--repo", repo, check=True)
    assert f"rolled back prod: main {third[:7]} ->" in proc.stdout
    head = remote.remote_head("main")
    # Append-only: a new commit after the old head, holding the earlier commit's files.
    assert remote.git("rev-parse", f"{head}^", cwd=remote.bare) == third
    assert remote.git("rev-parse", f"{head}^{{tree}}", cwd=remote.bare) == \
        remote.git("rev-parse", f"{good}^{{tree}}", cwd=remote.bare)
    assert f"Roll back prod to {good[:7]}" in remote.git("log", "-1", "--format=%s", head, cwd=remote.bare)
    run_cli(home, "sync", "--repo", repo, "--env", "prod", check=True)
    live = json.loads(run_cli(home, "template", "list", "-n", "team-prod", "-o", "json", check=True).stdout)
    assert [(t["metadata"]["name"], t["spec"]["templates"][0]["container"]["command"]) for t in live] == \
        [("etl", ["echo", "hello"])]


def test_rollback_refuses_what_is_not_history_or_fails_policies(home, remote):
    repo = str(remote.bare)
    dev_only = remote.commit("dev", {"workflows/report.yaml": template("report")})
    bad = remote.commit("main", {"workflows/etl.yaml": template("etl", image=LATEST)}, "bad image")
    fixed = remote.commit("main", {"workflows/etl.yaml": template("etl", message="fixed")}, "fixed")
    proc = run_cli(home, "rollback", "prod", dev_only, "--repo", repo)
    assert proc.returncode == 1 and "not in the history of branch main" in proc.stderr
    proc = run_cli(home, "rollback", "prod", bad, "--repo", repo)
    assert proc.returncode == 1 and "policy image-tag-pinned (deny)" in proc.stderr
    assert "nothing was pushed" in proc.stderr
    proc = run_cli(home, "rollback", "prdo", bad, "--repo", repo)
    assert proc.returncode == 1 and "prdo is not an environment" in proc.stderr
    assert run_cli(home, "rollback", "prod", "0123456789abcdef", "--repo", repo).returncode == 1
    assert remote.remote_head("main") == fixed

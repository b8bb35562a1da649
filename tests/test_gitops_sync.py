"""End-to-end GitOps sync on real git repositories: a bare remote and a clone that pushes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.store import open_store
from reconciler.store.errors import NotFound
from reconciler.sync import Reconciler
from reconciler.sync.model import CONTENT_HASH, ENVIRONMENT_LABEL, MANAGED_BY, SOURCE_COMMIT, SOURCE_PATH

from .gitops_repo import CONFIG, cron, make_remote, template, workflow

pytestmark = pytest.mark.xdist_group("gitops")


@pytest.fixture
def store(tmp_path: Path):
    with open_store(tmp_path / "home" / "store.db") as s:
        yield s


@pytest.fixture
def remote(tmp_path: Path):
    return make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl"),
                                          "workflows/nightly.yaml": cron("nightly")})


def reconciler(store, remote, tmp_path: Path) -> Reconciler:
    return Reconciler(store, str(remote.bare), tmp_path / "home")


def results(rec: Reconciler, env: str | None = None) -> dict:
    return {r.environment: r for r in rec.run_pass(env)}


def names(store, kind: str, ns: str) -> list[str]:
    return [o["metadata"]["name"] for o in store.list(kind, ns)]


def env_status(store, env: str) -> dict:
    return store.get("Environment", "reconciler-system", env)["status"]


def test_first_sync_deploys_each_branch_to_its_namespace_with_labels(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    res = results(rec)
    assert {e: r.phase for e, r in res.items()} == {"dev": "Synced", "qa": "Synced", "prod": "Synced"}
    for ns in ("team-dev", "team-qa", "team-prod"):
        assert names(store, "WorkflowTemplate", ns) == ["etl"]
        assert names(store, "CronWorkflow", ns) == ["nightly"]
    obj = store.get("WorkflowTemplate", "team-dev", "etl")
    meta = obj["metadata"]
    assert meta["labels"][MANAGED_BY] == "reconciler" and meta["labels"][ENVIRONMENT_LABEL] == "dev"
    assert meta["annotations"][SOURCE_COMMIT] == remote.remote_head("dev")
    assert meta["annotations"][SOURCE_PATH] == "workflows/etl.yaml"
    assert len(meta["annotations"][CONTENT_HASH]) == 16
    # Environment overrides reach declared parameters only; limits become ConfigMaps.
    assert obj["spec"]["arguments"]["parameters"] == [{"name": "size", "value": "small"}]
    assert store.get("WorkflowTemplate", "team-qa", "etl")["spec"]["arguments"]["parameters"][0]["value"] == "big"
    assert store.get("ConfigMap", "team-dev", "reconciler-limits")["data"] == {"maxRunningWorkflows": "3"}
    assert store.get("ConfigMap", "team-dev", "db-locks")["data"] == {"warehouse": "1"}
    assert names(store, "ConfigMap", "team-qa") == []
    # A second pass with nothing new in git changes nothing.
    again = results(rec)
    assert all(r.plan.empty and r.phase == "Synced" for r in again.values())


def test_merge_to_dev_applies_to_dev_only_and_promote_applies_to_qa(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    sha = remote.commit("dev", {"workflows/report.yaml": template("report")}, "add report")
    res = results(rec)
    assert res["dev"].commit == sha and [c.line() for c in res["dev"].plan.changes] == [
        "+ WorkflowTemplate team-dev/report: new in git (workflows/report.yaml)"]
    assert res["qa"].plan.empty and res["prod"].plan.empty
    assert names(store, "WorkflowTemplate", "team-dev") == ["etl", "report"]
    assert names(store, "WorkflowTemplate", "team-qa") == ["etl"]
    # promote dev -> qa is a fast-forward of qa to dev's commit
    remote.git("push", "-q", "origin", "origin/dev:refs/heads/qa")
    res = results(rec)
    assert res["qa"].commit == sha
    assert names(store, "WorkflowTemplate", "team-qa") == ["etl", "report"]
    assert names(store, "WorkflowTemplate", "team-prod") == ["etl"]


def test_update_shows_a_readable_diff(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    remote.commit("dev", {"workflows/etl.yaml": template("etl", message="bonjour")})
    change = results(rec, "dev")["dev"].plan.changes[0]
    assert (change.action, change.reason, change.drift) == ("update", "changed in git", False)
    assert "\n-      - hello\n+      - bonjour\n" in change.diff
    history = env_status(store, "dev")["history"]
    assert history[-1]["plan"]["changes"][0]["diff"] == change.diff


def test_bad_file_keeps_environment_at_last_good_commit_while_others_sync(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    good = results(rec)["dev"].commit
    bad = template("broken", extra="    daemon: true\n")
    remote.commit("dev", {"workflows/broken.yaml": bad, "workflows/report.yaml": template("report")})
    qa_sha = remote.commit("qa", {"workflows/qa-only.yaml": template("qa-only")})
    res = results(rec)
    dev = res["dev"]
    assert dev.phase == "Failed" and dev.reason == "ValidationFailed" and dev.commit == good
    assert "workflows/broken.yaml:17: spec.templates[0].daemon: unsupported field" in dev.message
    assert f"staying at last good commit {good[:7]}" in dev.message
    # all-or-nothing: the good file of the same commit is not applied either
    assert names(store, "WorkflowTemplate", "team-dev") == ["etl"]
    assert res["qa"].phase == "Synced" and res["qa"].commit == qa_sha
    status = env_status(store, "dev")
    assert status["phase"] == "Failed" and status["appliedCommit"] == good
    assert status["problems"][0]["file"] == "workflows/broken.yaml" and status["problems"][0]["line"] == 17
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ValidationFailed"
    # fixing the file applies everything
    fixed = remote.commit("dev", {"workflows/broken.yaml": template("broken")})
    dev = results(rec, "dev")["dev"]
    assert dev.phase == "Synced" and dev.commit == fixed
    assert names(store, "WorkflowTemplate", "team-dev") == ["broken", "etl", "report"]


def test_malformed_yaml_and_unsupported_kind_fail_with_file_and_line(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    remote.commit("dev", {"workflows/oops.yaml": "kind: WorkflowTemplate\nmetadata: [\n"})
    dev = results(rec, "dev")["dev"]
    assert dev.failed and dev.problems[0].filename == "workflows/oops.yaml" and "malformed YAML" in dev.message
    remote.commit("dev", {"workflows/oops.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"})
    dev = results(rec, "dev")["dev"]
    assert dev.failed and "workflows/oops.yaml:2: kind: unsupported kind Secret" in dev.message


def test_prune_deletes_managed_objects_whose_file_is_gone_but_never_unmanaged_ones(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    unmanaged = store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                              "metadata": {"name": "hand-made", "namespace": "team-dev"}, "spec": {"templates": []}})
    remote.commit("dev", {"workflows/nightly.yaml": None}, "drop nightly")
    dev = results(rec, "dev")["dev"]
    assert [c.line() for c in dev.plan.changes] == [
        "- CronWorkflow team-dev/nightly: file removed from git (prune) (workflows/nightly.yaml)"]
    assert names(store, "CronWorkflow", "team-dev") == []
    assert names(store, "CronWorkflow", "team-qa") == ["nightly"]
    assert store.get("WorkflowTemplate", "team-dev", "hand-made") == unmanaged


def test_desired_object_in_the_way_of_an_unmanaged_one_is_a_conflict(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    theirs = store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                           "metadata": {"name": "report", "namespace": "team-dev"}, "spec": {"templates": []}})
    remote.commit("dev", {"workflows/report.yaml": template("report")})
    dev = results(rec, "dev")["dev"]
    assert dev.failed and dev.reason == "Conflict"
    assert "not managed by the reconciler" in dev.message and "workflows/report.yaml:3" in dev.message
    assert store.get("WorkflowTemplate", "team-dev", "report") == theirs


def test_self_heal_restores_edited_and_deleted_objects_and_counts_drift(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    live = store.get("WorkflowTemplate", "team-dev", "etl")
    live["spec"]["templates"][0]["container"]["image"] = "evil:latest"
    store.update(live)
    store.delete("CronWorkflow", "team-dev", "nightly")
    dev = results(rec, "dev")["dev"]
    reasons = sorted((c.action, c.kind, c.reason, c.drift) for c in dev.plan.changes)
    assert reasons == [("create", "CronWorkflow", "deleted out of band", True),
                       ("update", "WorkflowTemplate", "edited out of band", True)]
    assert "evil:latest" in dev.plan.changes[-1].diff or "evil:latest" in dev.plan.changes[0].diff
    assert store.get("WorkflowTemplate", "team-dev", "etl")["spec"]["templates"][0]["container"]["image"] == \
        "python:3.12-slim"
    assert names(store, "CronWorkflow", "team-dev") == ["nightly"]
    status = env_status(store, "dev")
    assert status["driftCount"] == 2 and status["history"][-1]["drift"] == 2
    assert "2 drifted object(s) corrected" in dev.message
    # status written by others (the scheduler) is not drift
    store.patch("CronWorkflow", "team-dev", "nightly", {"status": {"lastScheduledTime": "2026-01-01T02:00:00Z"}})
    assert results(rec, "dev")["dev"].plan.empty


def test_policies_deny_in_prod_but_only_warn_in_dev(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    loose = template("loose", image="python", limits=False)
    remote.commit("dev", {"workflows/loose.yaml": loose})
    remote.commit("main", {"workflows/loose.yaml": loose})
    res = results(rec)
    assert res["dev"].phase == "Synced" and "loose" in names(store, "WorkflowTemplate", "team-dev")
    assert any("policy image-tag-pinned (warn)" in w.message for w in res["dev"].warnings)
    prod = res["prod"]
    assert prod.phase == "Failed" and prod.reason == "PolicyDenied"
    messages = [str(p) for p in prod.problems]
    assert any(m.startswith("workflows/loose.yaml:14: spec.templates[0].container.image: policy image-tag-pinned")
               for m in messages)
    assert any("resource-limits-required" in m for m in messages)
    assert names(store, "WorkflowTemplate", "team-prod") == ["etl"]


def test_policies_that_deny_everywhere(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    host = template("host", extra="  volumes: [{name: root, hostPath: {path: /}}]\n")
    remote.commit("dev", {"workflows/host.yaml": host})
    dev = results(rec, "dev")["dev"]
    assert dev.reason == "PolicyDenied" and "no-host-path" in dev.message
    secret = template("host", extra="      env: [{name: DB_PASSWORD, value: hunter2}]\n")
    remote.commit("dev", {"workflows/host.yaml": secret})
    dev = results(rec, "dev")["dev"]
    assert "no-plaintext-secrets" in dev.message and "env[0].value" in dev.message
    other_ns = template("host").replace("  name: host\n", "  name: host\n  namespace: team-prod\n")
    remote.commit("dev", {"workflows/host.yaml": other_ns})
    dev = results(rec, "dev")["dev"]
    assert "own-namespace" in dev.message and "must live in namespace team-dev" in dev.message
    assert names(store, "WorkflowTemplate", "team-prod") == ["etl"]


def test_unreachable_remote_keeps_last_good_state_and_still_self_heals(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    good = results(rec)["dev"].commit
    moved = remote.bare.with_name("gone.git")
    shutil.move(remote.bare, moved)
    store.delete("WorkflowTemplate", "team-dev", "etl")
    dev = results(rec, "dev")["dev"]
    assert dev.phase == "Failed" and dev.reason == "FetchFailed" and dev.commit == good
    assert "fetch" in dev.message and f"staying at last good commit {good[:7]}" in dev.message
    assert names(store, "WorkflowTemplate", "team-dev") == ["etl"]  # healed from the local copy
    source = next(c for c in env_status(store, "dev")["conditions"] if c["type"] == "SourceAvailable")
    assert source["status"] == "False" and source["reason"] == "FetchFailed"
    shutil.move(moved, remote.bare)
    assert results(rec, "dev")["dev"].phase == "Synced"


def test_force_pushed_branch_is_not_followed_until_accepted(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    remote.commit("dev", {"workflows/a.yaml": template("a")})
    applied = results(rec, "dev")["dev"].commit
    remote.git("checkout", "-q", "dev")
    remote.git("reset", "-q", "--hard", "main")
    remote.commit("dev", {"workflows/b.yaml": template("b")}, push=False)
    remote.git("push", "-q", "--force", "origin", "dev")
    dev = results(rec, "dev")["dev"]
    assert dev.reason == "FetchFailed" and "rewritten (force-push)" in dev.message and dev.commit == applied
    assert names(store, "WorkflowTemplate", "team-dev") == ["a", "etl"]
    dev = {r.environment: r for r in rec.run_pass("dev", accept_rewrites=True)}["dev"]
    assert dev.phase == "Synced" and names(store, "WorkflowTemplate", "team-dev") == ["b", "etl"]


WORKFLOW = workflow("SIZE")


def test_workflow_file_runs_once_per_content(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    remote.commit("qa", {"workflows/backfill.yaml": WORKFLOW.replace("SIZE", "1")})
    results(rec, "qa")
    runs = store.list("Workflow", "team-qa")
    assert len(runs) == 1 and runs[0]["metadata"]["name"].startswith("backfill-")
    assert "phase" not in (runs[0].get("status") or {})  # the runner starts Workflows without a phase
    remote.commit("qa", {"workflows/other.yaml": template("other")})
    assert results(rec, "qa")["qa"].phase == "Synced"
    assert len(store.list("Workflow", "team-qa")) == 1  # an unrelated commit does not rerun it
    store.delete("Workflow", "team-qa", runs[0]["metadata"]["name"])
    results(rec, "qa")
    assert store.list("Workflow", "team-qa") == []  # a deleted run is not started again
    remote.commit("qa", {"workflows/backfill.yaml": WORKFLOW.replace("SIZE", "2")})
    results(rec, "qa")
    assert len(store.list("Workflow", "team-qa")) == 1
    remote.commit("qa", {"workflows/backfill.yaml": None})
    assert results(rec, "qa")["qa"].plan.empty  # runs are history: removing the file keeps them
    assert len(store.list("Workflow", "team-qa")) == 1


def test_environment_settings_come_from_the_branch_and_a_broken_config_fails_only_it(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    remote.commit("dev", {"reconciler.yaml": CONFIG.replace("maxRunningWorkflows: 3", "maxRunningWorkflows: 8")})
    assert results(rec, "dev")["dev"].phase == "Synced"
    assert store.get("ConfigMap", "team-dev", "reconciler-limits")["data"] == {"maxRunningWorkflows": "8"}
    remote.commit("dev", {"reconciler.yaml": CONFIG.replace("maxRunningWorkflows: 8", "maxRunningWorkflows: many")
                          .replace("maxRunningWorkflows: 3", "maxRunningWorkflows: many")})
    res = results(rec)
    assert res["dev"].failed and "reconciler.yaml:10: environments.dev.limits.maxRunningWorkflows" in res["dev"].message
    assert res["qa"].phase == "Synced"


def test_a_cleared_store_is_rebuilt_and_pruned_by_labels(store, remote, tmp_path):
    rec = reconciler(store, remote, tmp_path)
    results(rec)
    store.delete("Environment", "reconciler-system", "dev")  # history lost: labels still tell what is ours
    remote.commit("dev", {"workflows/nightly.yaml": None})
    results(rec, "dev")
    assert names(store, "CronWorkflow", "team-dev") == []
    with pytest.raises(NotFound):
        store.get("CronWorkflow", "team-dev", "nightly")

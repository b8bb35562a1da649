"""Objects git manages and objects a person manages, as a user meets them through the real CLI: `apply -n`
resolving references where the objects go, `apply`/`delete` refusing git-managed objects unless --force,
adoption of an object created by hand, `template get|delete`, `cron create|delete`, and a cron suspension
that survives sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli
from .gitops_repo import cron, make_remote, template
from .security.test_api_secrets import DEV_TOKEN, alive, scoped
from .test_api_support import Client

__all__ = ["scoped"]  # the fixture (a daemon with a token limited to team-dev), used by name

pytestmark = pytest.mark.xdist_group("gitops")

GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greet}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [echo, hi]}
"""

USES_GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      steps:
      - - name: a
          templateRef: {name: greet, template: main}
"""

SUBMIT_GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: greet-}
spec:
  workflowTemplateRef: {name: greet}
"""


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_apply_and_submit_with_n_resolve_template_refs_in_that_namespace(home, tmp_path):
    greet, nightly = write(tmp_path / "greet.yaml", GREET), write(tmp_path / "nightly.yaml", USES_GREET)
    run_cli(home, "apply", "-n", "team", greet, check=True)
    applied = run_cli(home, "apply", "-n", "team", nightly)
    assert (applied.returncode, applied.stdout) == (0, "cronworkflow/nightly created\n"), applied.stderr
    submitted = run_cli(home, "submit", "-n", "team", write(tmp_path / "wf.yaml", SUBMIT_GREET), "-o", "name")
    assert submitted.returncode == 0 and submitted.stdout.startswith("greet-"), submitted.stderr
    # elsewhere the template does not exist: still an error naming file and line
    other = run_cli(home, "apply", "-n", "other", nightly)
    assert other.returncode == 2 and f"{nightly}:12: " in other.stderr and "unknown WorkflowTemplate greet" in \
        other.stderr
    assert "nightly" not in run_cli(home, "cron", "list", "-n", "other", "-o", "name").stdout


def _json(home: Path, *args: str) -> object:
    return json.loads(run_cli(home, *args, "-o", "json", check=True).stdout)


def _status(home: Path) -> dict[str, dict]:
    """`status -o json` by environment (it exits 1 while an environment is Failed)."""
    return {e["name"]: e for e in json.loads(run_cli(home, "status", "-o", "json").stdout)}


def _message(home: Path, namespace: str, name: str = "etl") -> str:
    tmpl = _json(home, "template", "get", name, "-n", namespace)
    return tmpl["spec"]["templates"][0]["container"]["command"][1]


def test_apply_and_delete_refuse_git_managed_objects_unless_forced_and_sync_restores_them(home, tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl"),
                                            "workflows/nightly.yaml": cron("nightly")})
    repo = str(remote.bare)
    run_cli(home, "sync", "--repo", repo, check=True)
    edited = write(tmp_path / "etl.yaml", template("etl", message="by hand"))
    where = "is managed by git (environment dev, file workflows/etl.yaml)"

    refused = run_cli(home, "apply", "-n", "team-dev", edited)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"{edited}:4: metadata.name: WorkflowTemplate team-dev/etl {where}")
    assert "--force" in refused.stderr
    for args in (("template", "delete", "etl"), ("cron", "delete", "nightly")):
        proc = run_cli(home, *args, "-n", "team-dev")
        assert proc.returncode == 1 and "is managed by git (environment dev, file workflows/" in proc.stderr, args
    assert _message(home, "team-dev") == "hello"
    assert [c["metadata"]["name"] for c in _json(home, "cron", "list", "-n", "team-dev")] == ["nightly"]

    forced = run_cli(home, "apply", "-n", "team-dev", edited, "--force")
    assert forced.stdout == "workflowtemplate/etl configured\n", forced.stderr
    assert "the next sync of dev restores it" in forced.stderr
    assert _message(home, "team-dev") == "by hand"
    shown = run_cli(home, "template", "get", "etl", "-n", "team-dev", check=True).stdout
    assert "Managed by:" in shown and "environment dev, file workflows/etl.yaml" in shown
    deleted = run_cli(home, "cron", "delete", "nightly", "-n", "team-dev", "--force")
    assert deleted.stdout == "CronWorkflow 'nightly' deleted\n" and "restores it" in deleted.stderr

    sync = run_cli(home, "sync", "--repo", repo, "--env", "dev")
    assert sync.returncode == 0, sync.stderr
    assert _message(home, "team-dev") == "hello"  # the edit was drift: put back, still managed
    assert [c["metadata"]["name"] for c in _json(home, "cron", "list", "-n", "team-dev")] == ["nightly"]
    dev = _status(home)["dev"]
    assert dev["phase"] == "Synced" and dev["driftCount"] == 2


def test_an_object_made_by_hand_in_a_files_place_fails_the_environment_with_how_to_adopt_it(home, tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    repo = str(remote.bare)
    by_hand = write(tmp_path / "etl.yaml", template("etl", message="by hand"))
    for ns in ("team-dev", "team-qa"):
        run_cli(home, "apply", "-n", ns, by_hand, check=True)
    sync = run_cli(home, "sync", "--repo", repo)
    assert sync.returncode == 1
    envs = _status(home)
    for env in ("dev", "qa"):
        assert envs[env]["phase"] == "Failed" and envs[env]["reason"] == "Conflict"
        message = envs[env]["message"]
        assert f"reconciler.io/managed-by=reconciler and reconciler.io/environment={env}" in message
        assert "docs/GITOPS.md" in message and "workflows/etl.yaml" in message
    assert _message(home, "team-dev") == "by hand"  # never touched

    # dev: adopt it by applying it with the two labels; qa: delete it (not managed, so no --force)
    labelled = template("etl", message="by hand").replace(
        "  name: etl\n", "  name: etl\n  labels: {reconciler.io/managed-by: reconciler, reconciler.io/environment: dev}\n")
    run_cli(home, "apply", "-n", "team-dev", write(tmp_path / "adopt.yaml", labelled), check=True)
    assert run_cli(home, "template", "delete", "etl", "-n", "team-qa", check=True).stdout == \
        "WorkflowTemplate 'etl' deleted\n"
    run_cli(home, "sync", "--repo", repo, check=True)
    envs = _status(home)
    assert envs["dev"]["phase"] == envs["qa"]["phase"] == "Synced"
    for ns in ("team-dev", "team-qa"):
        assert _message(home, ns) == "hello"
        assert "file workflows/etl.yaml" in run_cli(home, "template", "get", "etl", "-n", ns, check=True).stdout


def test_template_get_delete_and_cron_create_delete(home, tmp_path):
    run_cli(home, "apply", write(tmp_path / "greet.yaml", GREET), check=True)
    shown = run_cli(home, "template", "get", "greet", check=True).stdout
    assert [line.split()[:2] for line in shown.splitlines()[:2]] == [["Name:", "greet"], ["Namespace:", "default"]]
    assert "Entrypoint:  main" in shown and "Managed by" not in shown
    assert _json(home, "template", "get", "greet")["metadata"]["name"] == "greet"
    assert run_cli(home, "template", "get", "greet", "-o", "yaml", check=True).stdout.startswith("apiVersion:")
    missing = run_cli(home, "template", "get", "nope")
    assert missing.returncode == 1 and missing.stderr == "workflowtemplate 'nope' not found in namespace default\n"
    assert run_cli(home, "template", "delete", "greet", check=True).stdout == "WorkflowTemplate 'greet' deleted\n"
    assert _json(home, "template", "list") == []
    assert run_cli(home, "template", "delete", "greet").returncode == 1

    cluster = write(tmp_path / "cluster.yaml", GREET.replace("kind: WorkflowTemplate", "kind: ClusterWorkflowTemplate"))
    run_cli(home, "apply", cluster, check=True)
    assert _json(home, "template", "get", "greet", "--cluster")["kind"] == "ClusterWorkflowTemplate"
    assert run_cli(home, "template", "delete", "greet", "--cluster", check=True).stdout == \
        "ClusterWorkflowTemplate 'greet' deleted\n"

    nightly = write(tmp_path / "nightly.yaml", cron("nightly"))
    created = run_cli(home, "cron", "create", nightly, "-n", "team", check=True).stdout
    assert created.splitlines()[0].split() == ["Name:", "nightly"] and "Schedule:" in created
    again = run_cli(home, "cron", "create", nightly, "-n", "team")
    assert again.returncode == 1 and "cronworkflow 'nightly' already exists in namespace team" in again.stderr
    wrong = run_cli(home, "cron", "create", write(tmp_path / "t.yaml", GREET), "-n", "team")
    assert wrong.returncode == 2 and "t.yaml:2: kind: cron create takes CronWorkflow" in wrong.stderr
    assert run_cli(home, "cron", "delete", "nightly", "-n", "team", check=True).stdout == \
        "CronWorkflow 'nightly' deleted\n"
    assert _json(home, "cron", "list", "-n", "team") == []
    gone = run_cli(home, "cron", "delete", "nightly", "-n", "team")
    assert gone.returncode == 1 and "cronworkflow 'nightly' not found in namespace team" in gone.stderr


def test_cron_suspend_of_a_managed_cron_holds_across_syncs_until_resumed(home, tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/nightly.yaml": cron("nightly")})
    repo = str(remote.bare)
    run_cli(home, "sync", "--repo", repo, check=True)

    def live() -> dict:
        return _json(home, "cron", "get", "nightly", "-n", "team-dev")

    suspended = run_cli(home, "cron", "suspend", "nightly", "-n", "team-dev", check=True)
    assert suspended.stdout == "CronWorkflow 'nightly' suspended\n"
    assert "managed by git (environment dev, file workflows/nightly.yaml)" in suspended.stderr
    assert "stays suspended across syncs until `reconciler cron resume nightly`" in suspended.stderr
    run_cli(home, "sync", "--repo", repo, check=True)
    assert live()["spec"]["suspend"] is True
    listed = run_cli(home, "cron", "list", "-n", "team-dev", check=True).stdout
    assert "true (override)" in listed
    assert "true (override)" in run_cli(home, "cron", "get", "nightly", "-n", "team-dev", check=True).stdout
    # a change in git is applied, and the cron stays suspended
    remote.commit("dev", {"workflows/nightly.yaml": cron("nightly", schedule="0 3 * * *")})
    run_cli(home, "sync", "--repo", repo, check=True)
    assert (live()["spec"]["schedule"], live()["spec"]["suspend"]) == ("0 3 * * *", True)
    (change,) = _json(home, "history", "--env", "dev")[0]["plan"]["changes"]  # newest first
    assert (change["action"], change["reason"], change["drift"]) == ("update", "changed in git", False)

    resumed = run_cli(home, "cron", "resume", "nightly", "-n", "team-dev", check=True)
    assert "git's spec.suspend applies again" in resumed.stderr
    run_cli(home, "sync", "--repo", repo, check=True)
    assert not live()["spec"].get("suspend")
    assert "reconciler.io/suspend-override" not in live()["metadata"].get("annotations", {})
    assert "false" in run_cli(home, "cron", "list", "-n", "team-dev", check=True).stdout

    # a cron nobody syncs: suspended, with nothing to say about git
    run_cli(home, "cron", "create", write(tmp_path / "mine.yaml", cron("mine")), check=True)
    mine = run_cli(home, "cron", "suspend", "mine", check=True)
    assert (mine.stdout, mine.stderr) == ("CronWorkflow 'mine' suspended\n", "")


def test_the_new_object_routes_keep_a_scoped_token_in_its_namespaces(scoped):
    daemon, _ = scoped
    admin, dev = daemon.client, Client(daemon.port, token=DEV_TOKEN)
    assert admin.request("POST", "/api/v1/apply/team-prod", {"manifest": cron("nightly")}).status == 200
    assert admin.request("POST", "/api/v1/apply/team-prod", {"manifest": template("shared").replace(
        "kind: WorkflowTemplate", "kind: ClusterWorkflowTemplate")}).status == 200
    prod_run = admin.request("POST", "/api/v1/workflows/team-prod", {"from": "workflowtemplate/etl"})
    assert prod_run.status == 201, prod_run.body
    run_name = prod_run.json()["items"][0]["metadata"]["name"]

    refused = [
        dev.request("DELETE", "/api/v1/workflow-templates/team-prod/etl?force=true"),
        dev.request("DELETE", "/api/v1/cron-workflows/team-prod/nightly?force=true"),
        dev.request("DELETE", "/api/v1/cluster-workflow-templates/shared"),
        dev.request("PUT", "/api/v1/cron-workflows/team-prod/nightly/suspend"),
        dev.request("POST", "/api/v1/cron-workflows/team-prod", {"manifest": cron("other")}),
        # into dev's door, aimed at prod by the document's own namespace
        dev.request("POST", "/api/v1/cron-workflows/team-dev",
                    {"manifest": cron("sneaky").replace("name: sneaky", "name: sneaky\n  namespace: team-prod")}),
        dev.request("POST", "/api/v1/workflows/team-prod", {"from": "workflowtemplate/etl"}),
        dev.get("/api/v1/workflow-templates/team-prod/etl"),
        dev.get("/api/v1/workflows/team-prod?phase=Pending,Running,Succeeded&nodes=true"),
    ]
    assert [r.status for r in refused] == [403] * len(refused), [(r.status, r.body[:160]) for r in refused]
    assert admin.get("/api/v1/workflow-templates/team-prod/etl").status == 200
    assert admin.get("/api/v1/cluster-workflow-templates/shared").status == 200
    crons = admin.get("/api/v1/cron-workflows").json()["items"]
    assert [(c["metadata"]["namespace"], c["metadata"]["name"], bool(c["spec"].get("suspend"))) for c in crons] == \
        [("team-prod", "nightly", False)]
    # a name taken in prod is not revealed to the dev token's 404; the admin's says where it is
    missing = dev.get(f"/api/v1/workflows/team-dev/{run_name}")
    assert missing.status == 404 and "team-prod" not in missing.json()["message"]
    assert "namespace team-prod has one" in admin.get(f"/api/v1/workflows/team-dev/{run_name}").json()["message"]
    wide = dev.get("/api/v1/workflows?nodes=true").json()["items"]
    assert {w["metadata"]["namespace"] for w in wide} <= {"team-dev"}
    assert alive(daemon)

"""The commands the CLI's remote mode gained (`cron get|suspend|resume`, `template list`, `semaphore
list|set`, `apply`, `diff`): each through a real `reconciler up --repo` subprocess's API prints what the
same command prints locally on the daemon's data directory, and a write through the API is seen
locally. Local and remote runs of a pair go side by side to keep the file quick."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import remote as remote_cli
from reconciler.config import store_path
from reconciler.store import open_store

from .gitops_repo import GitRemote, make_remote, template
from .test_api_cli import CRON, cli, ok
from .test_api_support import Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("api-parity")



def manifest(kind: str, name: str) -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: {kind}
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {{image: alpine:3, command: [echo, hi]}}
"""


OBJECTS = "---\n".join([manifest("WorkflowTemplate", "greet"), manifest("ClusterWorkflowTemplate", "shared-greet"),
                        CRON])

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: limits}
data: {warehouse: "2"}
"""

# an unsupported field on line 8, a kind apply does not take on line 12
BAD = manifest("WorkflowTemplate", "bad").replace("  - name: main\n", "  - name: main\n    daemon: true\n") + \
    "---\n" + manifest("Workflow", "wf")

# AGE / NEXT RUN / LAST RUN columns and "(... ago)": the two runs happen a moment apart.
DURATION = re.compile(r"\b\d+(\.\d)?s\b|\b\d+m\d+s\b|\b\d+h\d+m\b")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[tuple[Daemon, GitRemote, Path]]:
    tmp = tmp_path_factory.mktemp("api-parity")
    git = make_remote(tmp / "git", {"workflows/etl.yaml": template("etl")})
    home = tmp / "home"
    home.mkdir()
    # An hour between polls: nothing syncs during the tests unless asked to.
    daemon = start_daemon(home, tmp, "--repo", str(git.bare), "--poll-interval", "3600")
    try:
        yield daemon, git, tmp
    finally:
        daemon.stop()


def pair(daemon: Daemon, elsewhere: Path, *args: str) -> tuple:
    """The same command through the API (from an empty data directory) and locally, side by side
    (but `diff` one after the other: both fetch into the daemon's copy of the repository)."""
    if args[0] == "diff":
        return cli(elsewhere, *args, server=daemon.url), cli(daemon.home, *args)
    with ThreadPoolExecutor(2) as pool:
        remote = pool.submit(cli, elsewhere, *args, server=daemon.url)
        local = pool.submit(cli, daemon.home, *args)
        return remote.result(), local.result()


def same_json(daemon: Daemon, elsewhere: Path, *args: str) -> object:
    remote, local = pair(daemon, elsewhere, *args, "-o", "json")
    assert json.loads(ok(remote)) == json.loads(ok(local))
    return json.loads(remote.stdout)


def same_text(daemon: Daemon, elsewhere: Path, *args: str, code: int = 0) -> str:
    remote, local = pair(daemon, elsewhere, *args)
    assert (remote.returncode, local.returncode) == (code, code), f"{remote.stderr}\n{local.stderr}"

    def norm(text: str) -> list[list[str]]:
        return [DURATION.sub("<t>", line).split() for line in text.splitlines()]

    assert norm(remote.stdout) == norm(local.stdout) and remote.stderr == local.stderr
    return remote.stdout


def same_failure(daemon: Daemon, elsewhere: Path, *args: str, code: int) -> str:
    remote, local = pair(daemon, elsewhere, *args)
    assert (remote.returncode, remote.stderr, remote.stdout) == (code, local.stderr, local.stdout) and local.stderr
    assert local.returncode == code and "Traceback" not in remote.stderr
    return remote.stderr


def test_apply_templates_cron_through_the_api_match_local(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-apply"
    objects, configmap = tmp / "objects.yaml", tmp / "limits.yaml"
    objects.write_text(OBJECTS)
    configmap.write_text(CONFIGMAP)
    applied = ok(cli(elsewhere, "apply", str(objects), str(configmap), server=daemon.url))
    assert applied.splitlines() == ["workflowtemplate/greet created", "clusterworkflowtemplate/shared-greet created",
                                    "cronworkflow/nightly created", "configmap/limits created"]
    assert not (elsewhere / "store.db").exists()
    # seen locally; applying again says the same either way
    assert [t["metadata"]["name"] for t in json.loads(ok(cli(daemon.home, "template", "list", "-o", "json")))] == \
        ["greet"]
    again = same_text(daemon, elsewhere, "apply", str(objects), str(configmap))
    assert again.splitlines() == [line.replace("created", "unchanged") for line in applied.splitlines()]

    for args in (("template", "list"), ("template", "list", "--cluster"), ("template", "list", "-n", "team-dev"),
                 ("cron", "get", "nightly")):
        same_json(daemon, elsewhere, *args)
        same_text(daemon, elsewhere, *args)
    assert same_json(daemon, elsewhere, "template", "list", "-n", "team-dev")[0]["metadata"]["name"] == "etl"
    assert "shared-greet" in same_text(daemon, elsewhere, "template", "list", "--cluster", "-o", "name")
    assert same_text(daemon, elsewhere, "cron", "get", "nightly", "-o", "yaml").startswith("apiVersion:")
    same_failure(daemon, elsewhere, "cron", "get", "nope", code=1)

    bad = tmp / "bad.yaml"
    bad.write_text(BAD)
    problems = same_failure(daemon, elsewhere, "apply", str(bad), str(objects), code=2)
    assert f"{bad}:8: spec.templates[0].daemon:" in problems and f"{bad}:12: kind: apply takes" in problems
    assert same_failure(daemon, elsewhere, "apply", str(tmp / "missing.yaml"), code=2).startswith(
        f"{tmp / 'missing.yaml'}:1: (file): cannot read file")
    assert "bad" not in ok(cli(daemon.home, "template", "list", "-o", "name")).split()  # all or nothing


def test_cron_suspend_and_resume_through_the_api_are_seen_locally(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-cron"
    cron = tmp / "cron.yaml"
    cron.write_text(CRON.replace("nightly", "hourly"))
    ok(cli(daemon.home, "apply", str(cron), "-n", "team-qa"))

    def suspended() -> bool:
        return bool(json.loads(ok(cli(daemon.home, "cron", "get", "hourly", "-n", "team-qa", "-o", "json")))
                    ["spec"].get("suspend"))

    out = ok(cli(elsewhere, "cron", "suspend", "hourly", "-n", "team-qa", server=daemon.url))
    assert out == "CronWorkflow 'hourly' suspended\n" and suspended()
    same_json(daemon, elsewhere, "cron", "list", "-n", "team-qa")
    out = ok(cli(elsewhere, "cron", "resume", "hourly", "-n", "team-qa", server=daemon.url))
    assert out == "CronWorkflow 'hourly' resumed\n" and not suspended()
    # the first unknown name ends it, with the local message and exit code
    same_failure(daemon, elsewhere, "cron", "resume", "nope", "hourly", "-n", "team-qa", code=1)


def test_semaphores_through_the_api_match_local(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-sem"
    with open_store(store_path(daemon.home)) as store:  # what a runner leaves: a Lock with its holders
        store.create({"apiVersion": "reconciler.io/v1", "kind": "Lock",
                      "metadata": {"name": "semaphore.limits.warehouse", "namespace": "team-prod"},
                      "spec": {"description": "semaphore limits/warehouse"},
                      "status": {"holders": ["team-prod/etl-abc12/etl-abc12-1"], "size": 2}})
    assert same_json(daemon, elsewhere, "semaphore", "list", "-n", "team-prod")[0]["status"]["size"] == 2
    assert "team-prod/etl-abc12/etl-abc12-1" in same_text(daemon, elsewhere, "semaphore", "list", "-n", "team-prod")
    assert same_json(daemon, elsewhere, "semaphore", "list") == []

    out = ok(cli(elsewhere, "semaphore", "set", "db-locks/warehouse", "3", "-n", "team-prod", server=daemon.url))
    assert out == "semaphore db-locks/warehouse size 3\n"
    with open_store(store_path(daemon.home)) as store:
        assert store.get("ConfigMap", "team-prod", "db-locks")["data"] == {"warehouse": "3"}
    same_failure(daemon, elsewhere, "semaphore", "set", "no-key", "3", code=2)


def test_diff_through_the_api_shows_the_pending_plan_and_applies_nothing(setup):
    daemon, git, tmp = setup
    elsewhere = tmp / "client-diff"
    before = json.loads(ok(cli(daemon.home, "status", "-o", "json")))
    dev_commit = next(e for e in before if e["name"] == "dev")["commit"]
    assert dev_commit == git.remote_head("dev")
    new = git.commit("dev", {"workflows/report.yaml": template("report")}, "add report")

    remote, local = pair(daemon, elsewhere, "diff", "--env", "dev", "-o", "json", "--repo", str(git.bare))
    assert remote.returncode == local.returncode == 1, remote.stderr + local.stderr
    results = json.loads(remote.stdout)
    assert results == json.loads(local.stdout)
    (dev,) = results
    assert dev["phase"] == "OutOfSync" and dev["head"] == new and not dev["applied"]
    assert [(c["action"], c["kind"], c["name"]) for c in dev["plan"]["changes"]] == \
        [("create", "WorkflowTemplate", "report")]
    text = same_text(daemon, elsewhere, "diff", "--env", "dev", "--repo", str(git.bare), code=1)
    assert "+ WorkflowTemplate team-dev/report: new in git (workflows/report.yaml)" in text and "+      - hello" in text
    same_text(daemon, elsewhere, "diff", "--env", "qa", "--repo", str(git.bare))  # in sync: exit 0

    # nothing applied: no new template, dev still at its commit
    assert "report" not in ok(cli(daemon.home, "template", "list", "-n", "team-dev", "-o", "name")).split()
    after = {e["name"]: e for e in json.loads(ok(cli(daemon.home, "status", "-o", "json")))}
    assert after["dev"]["commit"] == dev_commit
    assert "no environment 'nope'" in same_failure(daemon, elsewhere, "diff", "--env", "nope",
                                                   "--repo", str(git.bare), code=2)


def test_a_wrong_token_is_a_clear_error_and_writes_nothing(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-token"
    intruder = tmp / "intruder.yaml"
    intruder.write_text(manifest("WorkflowTemplate", "intruder"))
    for args in (("apply", str(intruder)), ("semaphore", "set", "x/y", "1"), ("cron", "suspend", "nightly"),
                 ("template", "list"), ("diff",)):
        wrong = cli(elsewhere, *args, server=daemon.url, token="wrong")
        assert wrong.returncode == 1, (args, wrong.stderr)
        assert "invalid bearer token" in wrong.stderr and "RECONCILER_API_TOKEN" in wrong.stderr
        assert "Traceback" not in wrong.stderr and wrong.stdout == ""
    assert "intruder" not in ok(cli(daemon.home, "template", "list", "-o", "name")).split()


def test_a_command_without_a_remote_form_refuses_with_server():
    @click.group()
    @click.option("--server")
    def group(server: str | None) -> None:
        pass

    @group.command()
    def frobnicate() -> None:
        click.echo("acted locally")

    remote_cli.route(group)
    assert CliRunner().invoke(group, ["frobnicate"]).output == "acted locally\n"
    refused = CliRunner().invoke(group, ["--server", "http://127.0.0.1:1", "frobnicate"])
    assert refused.exit_code == 2 and "`reconciler frobnicate` has no remote form" in refused.output


def test_the_new_endpoints_check_names_bodies_and_tokens(setup):
    daemon, _, _ = setup
    client = daemon.client
    assert client.get("/api/v1/cron-workflows/Bad_NS/x").status == 400
    missing = client.get("/api/v1/cron-workflows/default/nope")
    assert (missing.status, missing.json()) == (404, {"code": 404, "message": "cronworkflow 'nope' not found in "
                                                      "namespace default", "problems": []})
    assert client.request("PUT", "/api/v1/cron-workflows/default/nightly/suspend", token=False).status == 401
    assert client.get("/api/v1/semaphores", token=False).status == 401
    for body in ({"ref": "a/b"}, {"ref": "a/b", "size": True}, {"ref": 3, "size": 1}, [1]):
        assert client.request("PUT", "/api/v1/semaphores/default", body).status == 400, body
    assert client.request("PUT", "/api/v1/semaphores/default", {"ref": "a/b", "size": -1}).status == 400
    invalid = client.request("POST", "/api/v1/apply/default", {"manifest": BAD, "filename": "bad.yaml"})
    assert invalid.status == 400 and invalid.json()["problems"][0].startswith("bad.yaml:8: spec.templates[0].daemon:")
    assert client.request("POST", "/api/v1/apply/default", {"manifests": []}).status == 400
    assert client.request("POST", "/api/v1/apply/default", {"manifest": 3}).status == 400
    assert client.request("POST", "/api/v1/apply/default", {"manifest": CONFIGMAP},
                          token="wrong").status == 401
    applied = client.request("POST", "/api/v1/apply/default", {"manifest": CONFIGMAP.replace("limits", "more")})
    assert (applied.status, applied.json()) == (200, {"items": ["configmap/more created"], "warnings": []})
    assert client.get("/api/v1/sync/diff?env=Not_A_Name").status == 400


def test_template_get_delete_and_cron_create_delete_through_the_api_match_local(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-objects"
    greet, cron = tmp / "greet-x.yaml", tmp / "weekly.yaml"
    greet.write_text(manifest("WorkflowTemplate", "greet-x") + "---\n" +
                     manifest("ClusterWorkflowTemplate", "shared-x"))
    cron.write_text(CRON.replace("nightly", "weekly"))
    ok(cli(daemon.home, "apply", str(greet), "-n", "team-x"))
    for args in (("template", "get", "greet-x", "-n", "team-x"), ("template", "get", "shared-x", "--cluster")):
        assert same_json(daemon, elsewhere, *args)["metadata"]["name"] in ("greet-x", "shared-x")
        same_text(daemon, elsewhere, *args)
    assert "Managed by:  git: environment dev, file workflows/etl.yaml" in \
        same_text(daemon, elsewhere, "template", "get", "etl", "-n", "team-dev")
    same_failure(daemon, elsewhere, "template", "get", "nope", "-n", "team-x", code=1)

    created = ok(cli(elsewhere, "cron", "create", str(cron), "-n", "team-x", server=daemon.url))
    assert created.splitlines()[0].split() == ["Name:", "weekly"] and not (elsewhere / "store.db").exists()
    assert "already exists" in same_failure(daemon, elsewhere, "cron", "create", str(cron), "-n", "team-x", code=1)
    assert ok(cli(elsewhere, "cron", "delete", "weekly", "-n", "team-x", server=daemon.url)) == \
        "CronWorkflow 'weekly' deleted\n"
    assert ok(cli(elsewhere, "template", "delete", "greet-x", "-n", "team-x", server=daemon.url)) == \
        "WorkflowTemplate 'greet-x' deleted\n"
    assert ok(cli(elsewhere, "template", "delete", "shared-x", "--cluster", server=daemon.url)) == \
        "ClusterWorkflowTemplate 'shared-x' deleted\n"
    assert json.loads(ok(cli(daemon.home, "template", "list", "-n", "team-x", "-o", "json"))) == []
    same_failure(daemon, elsewhere, "cron", "delete", "weekly", "-n", "team-x", code=1)
    same_failure(daemon, elsewhere, "template", "delete", "greet-x", "-n", "team-x", code=1)


def test_git_managed_objects_are_refused_through_the_api_as_locally_until_forced(setup):
    daemon, git, tmp = setup
    elsewhere = tmp / "client-managed"
    edited = tmp / "etl-edit.yaml"
    edited.write_text(template("etl", message="by hand"))
    refused = same_failure(daemon, elsewhere, "apply", str(edited), "-n", "team-prod", code=1)
    assert "WorkflowTemplate team-prod/etl is managed by git (environment prod, file workflows/etl.yaml)" in refused
    assert "managed by git (environment prod" in same_failure(daemon, elsewhere, "template", "delete", "etl",
                                                               "-n", "team-prod", code=1)
    forced = cli(elsewhere, "template", "delete", "etl", "-n", "team-prod", "--force", server=daemon.url)
    assert forced.stdout == "WorkflowTemplate 'etl' deleted\n" and "the next sync of prod restores it" in forced.stderr
    assert "etl" not in ok(cli(daemon.home, "template", "list", "-n", "team-prod", "-o", "name")).split()
    ok(cli(elsewhere, "sync", "--env", "prod", server=daemon.url))
    assert "etl" in ok(cli(daemon.home, "template", "list", "-n", "team-prod", "-o", "name")).split()
    client = daemon.client
    assert client.request("DELETE", "/api/v1/cron-workflows/team-prod/nope").status == 404
    assert client.request("DELETE", "/api/v1/workflow-templates/team-prod/etl").status == 409
    assert client.request("DELETE", "/api/v1/workflow-templates/team-prod/etl", token=False).status == 401
    assert client.request("POST", "/api/v1/apply/team-prod", {"manifest": CONFIGMAP, "force": "yes"}).status == 400
    assert client.request("POST", "/api/v1/cron-workflows/team-prod", {"manifests": []}).status == 400


def test_list_get_and_submit_from_through_the_api_match_local(setup):
    daemon, _, tmp = setup
    elsewhere = tmp / "client-views"
    objects = tmp / "views.yaml"
    objects.write_text(manifest("WorkflowTemplate", "greet-v") + "---\n" + CRON.replace("nightly", "views-cron"))
    ok(cli(daemon.home, "apply", str(objects), "-n", "team-v"))
    run = json.loads(ok(cli(elsewhere, "submit", "--from", "workflowtemplate/greet-v", "-p", "who=api", "-n", "team-v",
                            "--wait", "-o", "json", server=daemon.url)))
    assert run["status"]["phase"] == "Succeeded" and run["spec"]["workflowTemplateRef"] == {"name": "greet-v"}
    cron_run = ok(cli(elsewhere, "submit", "--from", "cronwf/views-cron", "-n", "team-v", "--wait", "-o", "name",
                      server=daemon.url)).split()[0]
    assert cron_run.startswith("views-cron-")

    assert same_json(daemon, elsewhere, "list", "-n", "team-v", "--status", "Succeeded", "-l",
                     "workflows.argoproj.io/cron-workflow")[0]["metadata"]["name"] == cron_run
    assert same_json(daemon, elsewhere, "list", "-n", "team-v", "--status", "Failed") == []
    wide = same_text(daemon, elsewhere, "list", "-n", "team-v", "-o", "wide")
    assert "P/R/C" in wide and "who=api" in wide
    assert same_text(daemon, elsewhere, "get", "@latest", "-n", "team-v").split()[1] == cron_run
    assert "ARTIFACTS" in same_text(daemon, elsewhere, "get", "@latest", "-n", "team-v", "-o", "wide")
    assert same_text(daemon, elsewhere, "get", cron_run, "-n", "team-v", "-o", "yaml").startswith(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:")
    assert "namespace team-v has one (-n team-v)" in same_failure(daemon, elsewhere, "get", cron_run, code=1)
    assert "no workflows in namespace nobody" in same_failure(daemon, elsewhere, "get", "@latest", "-n", "nobody",
                                                              code=1)
    same_failure(daemon, elsewhere, "list", "--status", "Done", code=2)
    same_failure(daemon, elsewhere, "submit", "--from", "cronwf/nope", "-n", "team-v", code=1)
    client = daemon.client
    assert client.get("/api/v1/workflows?labelSelector=%3Dx").status == 400
    assert client.request("POST", "/api/v1/workflows/team-v", {"from": 3}).status == 400

"""What `list`, `get`, `submit --from` and `lint` show, as argo's CLI shows it, through the real CLI and a
real `reconciler up` running the workflows: `Running (Suspended)`, memoized nodes, `get @latest`, a
workflow in another namespace, `list --status` / `-l`, `-o wide`, `-o yaml` key order, and files
counted by lint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_durable_controls import daemon, node_phase, phase_is, submit, wait_for

pytestmark = pytest.mark.xdist_group("daemon")

__all__ = ["daemon"]  # the fixture, used by name

SLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: slow-
  labels: {team: a}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sleep, "300"]}
"""

HELLO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-
  labels: {team: b}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    inputs: {parameters: [{name: who}]}
    container: {image: alpine:3, command: [echo, "hello {{inputs.parameters.who}}"]}
"""

FAILS = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fails-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sh, -c, "exit 3"]}
"""

APPROVAL = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: approval-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: approve
        template: approve
  - name: approve
    suspend: {}
"""

MEMO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: memo-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: first
        template: hello
  - name: hello
    memoize:
      key: "greeting"
      cache: {configMap: {name: memo-cache}}
    outputs:
      artifacts: [{name: out, path: /tmp/out.txt}]
    container: {image: alpine:3, command: [sh, -c, "echo hi > /tmp/out.txt; echo hi"]}
"""

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greet}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    inputs: {parameters: [{name: who}]}
    container: {image: alpine:3, command: [echo, "hello {{inputs.parameters.who}}"]}
"""

CRON = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  workflowSpec:
    entrypoint: main
    arguments: {parameters: [{name: day, value: today}]}
    templates:
    - name: main
      inputs: {parameters: [{name: day}]}
      container: {image: alpine:3, command: [echo, "day {{inputs.parameters.day}}"]}
"""


def rows(text: str) -> dict[str, list[str]]:
    """A listing's lines by the name in their first column."""
    return {line.split()[0]: line.split() for line in text.splitlines()[1:] if line.strip()}


def test_list_shows_running_suspended_and_filters_by_status_and_labels(daemon, home, tmp_path):
    slow = submit(home, tmp_path, SLOW)
    hello = submit(home, tmp_path, HELLO)
    fails = submit(home, tmp_path, FAILS)
    wait_for(home, slow, phase_is("Running"))
    wait_for(home, hello, phase_is("Succeeded"))
    wait_for(home, fails, phase_is("Failed"))
    run_cli(home, "suspend", slow, check=True)

    listed = rows(run_cli(home, "list", check=True).stdout)
    assert listed[slow][2:4] == ["Running", "(Suspended)"] and listed[hello][2] == "Succeeded"
    assert "Status:     Running (Suspended)" in run_cli(home, "get", slow, check=True).stdout

    def names(*args: str) -> list[str]:
        return run_cli(home, "list", "-o", "name", *args, check=True).stdout.split()

    assert names("--status", "Running") == [slow]
    assert names("--status", "succeeded,Failed") == [fails, hello]  # newest first
    assert names("-l", "team=b") == [hello]
    assert names("-l", "team") == [hello, slow]
    assert names("-l", "!team", "--status", "Failed") == [fails]
    assert names("-l", "team!=b") == [fails, slow]
    bad = run_cli(home, "list", "--status", "Done")
    assert bad.returncode == 2 and "--status 'Done': expected one or more of Pending, Running" in bad.stderr
    assert run_cli(home, "list", "-l", "=x").returncode == 2

    wide = run_cli(home, "list", "-o", "wide", check=True).stdout
    assert wide.splitlines()[0].split()[-2:] == ["P/R/C", "PARAMETERS"]
    assert rows(wide)[hello][-2:] == ["0/0/1", "who=world"] and rows(wide)[slow][-1] == "0/1/0"
    assert "P/R/C" not in run_cli(home, "list", check=True).stdout

    run_cli(home, "terminate", slow, check=True)
    wait_for(home, slow, phase_is("Failed"))
    assert "Status:     Failed (Terminated)" in run_cli(home, "get", slow, check=True).stdout


def test_a_waiting_suspend_node_shows_running_suspended_in_get(daemon, home, tmp_path):
    name = submit(home, tmp_path, APPROVAL)
    wait_for(home, name, node_phase("approve", "Running"))
    shown = run_cli(home, "get", name, check=True).stdout
    assert "Status:     Running (Suspended)" in shown and "ǁ approve" in shown
    run_cli(home, "resume", name, check=True)
    wait_for(home, name, phase_is("Succeeded"))
    assert "Status:     Succeeded" in run_cli(home, "get", name, check=True).stdout


def test_get_latest_memoized_wide_yaml_and_another_namespace(daemon, home, tmp_path):
    first = submit(home, tmp_path, MEMO, "-n", "team")
    _wait_ns(home, first, "team")
    second = submit(home, tmp_path, MEMO, "-n", "team")
    _wait_ns(home, second, "team")

    latest = run_cli(home, "get", "@latest", "-n", "team", check=True).stdout
    assert latest.splitlines()[0].split() == ["Name:", second]
    assert "first (memoized)" in latest
    assert "(memoized)" not in run_cli(home, "get", first, "-n", "team", check=True).stdout
    empty = run_cli(home, "get", "@latest", "-n", "nobody")
    assert (empty.returncode, empty.stderr) == (1, "no workflows in namespace nobody\n")

    elsewhere = run_cli(home, "get", first)
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == f"workflow '{first}' not found in namespace default; namespace team has one (-n team)\n"

    wide = run_cli(home, "get", first, "-n", "team", "-o", "wide", check=True).stdout
    header = next(line for line in wide.splitlines() if line.strip().startswith("STEP"))
    assert header.split() == ["STEP", "TEMPLATE", "PODNAME", "DURATION", "ARTIFACTS", "MESSAGE", "EXITCODE"]
    row = next(line for line in wide.splitlines() if "first" in line).split()
    assert row[-2:] == ["out", "0"]
    plain = run_cli(home, "get", first, "-n", "team", check=True).stdout
    assert "ARTIFACTS" not in plain and "EXITCODE" not in plain

    as_yaml = run_cli(home, "get", first, "-n", "team", "-o", "yaml", check=True).stdout
    top = [line.split(":")[0] for line in as_yaml.splitlines() if line and not line.startswith((" ", "-"))]
    assert top == ["apiVersion", "kind", "metadata", "spec", "status"]
    as_json = json.loads(run_cli(home, "get", first, "-n", "team", "-o", "json", check=True).stdout)
    assert list(as_json)[:5] == ["apiVersion", "kind", "metadata", "spec", "status"]


def _wait_ns(home: Path, name: str, namespace: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        wf = json.loads(run_cli(home, "get", name, "-n", namespace, "-o", "json", check=True).stdout)
        if (wf.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error"):
            return wf
        assert time.monotonic() < deadline, wf.get("status")
        time.sleep(0.2)


def test_submit_from_a_template_or_a_cron_workflow_with_parameters(home, tmp_path):
    (tmp_path / "objects.yaml").write_text(TEMPLATE + "---\n" + CRON)
    run_cli(home, "apply", str(tmp_path / "objects.yaml"), "-n", "team", check=True)

    run = run_cli(home, "submit", "--from", "workflowtemplate/greet", "-p", "who=you", "-n", "team", "--wait",
                  "-o", "json")
    assert run.returncode == 0, run.stderr
    wf = json.loads(run.stdout)
    assert wf["metadata"]["name"].startswith("greet-") and wf["status"]["phase"] == "Succeeded"
    assert wf["spec"]["workflowTemplateRef"] == {"name": "greet"}
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "greet"
    assert run_cli(home, "logs", wf["metadata"]["name"], "-n", "team", check=True).stdout.strip().endswith("hello you")

    name = run_cli(home, "submit", "--from", "cronwf/nightly", "-p", "day=monday", "-n", "team", "--wait",
                   "-o", "name", check=True).stdout.split()[0]
    assert name.startswith("nightly-")
    from_cron = json.loads(run_cli(home, "get", name, "-n", "team", "-o", "json", check=True).stdout)
    assert from_cron["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] == "nightly"
    assert from_cron["status"]["phase"] == "Succeeded"
    assert run_cli(home, "logs", name, "-n", "team", check=True).stdout.strip().endswith("day monday")

    for args, code, message in [
        (("--from", "cronwf/nope", "-n", "team"), 1, "cronworkflow 'nope' not found in namespace team"),
        (("--from", "pipeline/x"), 2, "--from pipeline/x: expected workflowtemplate/NAME"),
        ((), 2, "submit takes a FILE or --from KIND/NAME"),
    ]:
        proc = run_cli(home, "submit", *args)
        assert proc.returncode == code and message in proc.stderr, (args, proc.stderr)


def test_lint_counts_files_not_paths(home, tmp_path):
    folder = tmp_path / "wf"
    (folder / "nested").mkdir(parents=True)
    for i, path in enumerate([folder / "a.yaml", folder / "b.yml", folder / "nested" / "c.yaml"]):
        path.write_text(HELLO.replace("hello-", f"hello{i}-"))
    single = tmp_path / "one.yaml"
    single.write_text(FAILS)
    out = run_cli(home, "lint", str(folder), str(single), check=True).stdout
    assert out == "no problems found in 4 files\n"
    assert run_cli(home, "lint", str(single), check=True).stdout == "no problems found in 1 file\n"


"""The `reconciler` command as a person uses it: the real CLI as a subprocess on its own data directory.

Every test here drives `python -m reconciler.cli.main` through `run_cli` and looks only at what a user
sees (exit code, stdout, stderr) and at what the store says afterwards through the CLI itself.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import CORPUS, run_cli

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Marks the line (or lines) an error must point at; a YAML comment, so the file stays valid YAML.
HERE = "# <- error here"


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output is captured through a pipe, as in CI or an editor; the outer terminal's size must not leak in."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cli_json(home: Path, *args: str):
    proc = run_cli(home, *args, check=True)
    return json.loads(proc.stdout)


def stored_workflows(home: Path) -> list:
    return cli_json(home, "list", "-A", "-o", "json")


def timed(home: Path, *args: str):
    start = time.monotonic()
    proc = run_cli(home, *args, timeout=60)
    return time.monotonic() - start, proc


def marked_lines(text: str) -> set[int]:
    return {i for i, line in enumerate(text.splitlines(), start=1) if HERE in line}


def pods(wf: dict) -> list[dict]:
    return [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]


def pod_by_display(wf: dict, display: str) -> dict:
    found = [n for n in pods(wf) if n["displayName"] == display]
    assert len(found) == 1, f"expected one Pod node {display!r}, got {[n['displayName'] for n in pods(wf)]}"
    return found[0]


def submit_wait_json(home: Path, path: Path, *extra: str) -> dict:
    proc = run_cli(home, "submit", str(path), "--wait", "-o", "json", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------------------------
# Workflow files
# --------------------------------------------------------------------------------------------

HEAD = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: {name}
spec:
  entrypoint: main
"""

ECHO_TEMPLATE = """  - name: say
    container:
      image: busybox
      command: [echo, hi]
"""

TWO_STEP_DAG = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: greet-
spec:
  entrypoint: main
  arguments:
    parameters:
    - name: greeting
      value: hello
  templates:
  - name: main
    dag:
      tasks:
      - name: first
        template: say
        arguments:
          parameters:
          - name: msg
            value: "first-{{workflow.parameters.greeting}}"
      - name: second
        depends: first
        template: say
        arguments:
          parameters:
          - name: msg
            value: "second-{{workflow.parameters.greeting}}"
  - name: say
    inputs:
      parameters:
      - name: msg
    container:
      image: busybox
      command: [echo]
      args: ["{{inputs.parameters.msg}}"]
"""

# Shaped like the README's quick start: two extracts in parallel, then a transform.
ETL_DAG = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: etl-daily-
spec:
  entrypoint: etl
  templates:
  - name: etl
    dag:
      tasks:
      - name: extract-views
        template: extract
        arguments: {parameters: [{name: source, value: views}]}
      - name: extract-payments
        template: extract
        arguments: {parameters: [{name: source, value: payments}]}
      - name: transform
        depends: extract-views && extract-payments
        template: transform
  - name: extract
    inputs: {parameters: [{name: source}]}
    container:
      image: busybox
      command: [echo, "extracted {{inputs.parameters.source}}"]
  - name: transform
    container:
      image: busybox
      command: [echo, transformed]
"""

FAILING = """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: failing-
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: busybox
      command: [sh, -c, 'exit 3']
"""

BILLION_LAUGHS = HEAD.format(name="bomb") + """  lol0: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  lol1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  lol2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  lol3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  lol4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  lol5: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  lol6: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  lol7: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  lol8: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
  templates:
  - name: main
    container:
      image: busybox
      command: [echo, *i]
"""

# case -> (file text, text the error must contain). Lines marked HERE are where the error must point.
BAD_INPUTS: dict[str, tuple[str, str]] = {
    "malformed-yaml": (HEAD.format(name="broken") + "  templates: [\n  - name: main\n    container: {image: busybox\n", ""),
    "empty-file": ("", ""),
    "alias-bomb": (BILLION_LAUGHS, "alias"),
    "dag-cycle": (HEAD.format(name="cycle") + f"""  templates:
  - name: main
    dag:
      tasks:
      - name: A
        depends: C  {HERE}
        template: say
      - name: B
        depends: A  {HERE}
        template: say
      - name: C
        depends: B  {HERE}
        template: say
""" + ECHO_TEMPLATE, "cycle"),
    "missing-task": (HEAD.format(name="missing") + f"""  templates:
  - name: main
    dag:
      tasks:
      - name: A
        template: say
      - name: B
        depends: "A && ghost"  {HERE}
        template: say
""" + ECHO_TEMPLATE, "ghost"),
    "malformed-depends": (HEAD.format(name="dangling") + f"""  templates:
  - name: main
    dag:
      tasks:
      - name: A
        template: say
      - name: B
        depends: "A &&"  {HERE}
        template: say
""" + ECHO_TEMPLATE, "depends"),
    "unknown-template": (HEAD.format(name="unknown") + f"""  templates:
  - name: main
    steps:
    - - name: one
        template: say
    - - name: two
        template: nosuch  {HERE}
""" + ECHO_TEMPLATE, "nosuch"),
    "duplicate-template": (HEAD.format(name="dup") + f"""  templates:
  - name: say
    container:
      image: busybox
      command: [echo, hi]
  - name: say  {HERE}
    container:
      image: busybox
      command: [echo, ho]
  - name: main
    steps:
    - - name: one
        template: say
""", "duplicate"),
    "wrong-type": (HEAD.format(name="wrongtype") + f"""  parallelism: "two"  {HERE}
  templates:
""" + ECHO_TEMPLATE.replace("name: say", "name: main"), "parallelism"),
    "argument-without-value": (HEAD.format(name="novalue") + f"""  arguments:
    parameters:
    - name: day  {HERE}
  templates:
  - name: main
    container:
      image: busybox
      command: [echo, "{{{{workflow.parameters.day}}}}"]
""", "day"),
    "unsupported-field": (HEAD.format(name="daemon") + f"""  templates:
  - name: main
    daemon: true  {HERE}
    container:
      image: busybox
      command: [echo, hi]
""", "unsupported field spec.templates[0].daemon"),
    "unknown-templateref": (HEAD.format(name="tref") + f"""  templates:
  - name: main
    steps:
    - - name: one
        templateRef:
          name: no-such-workflowtemplate  {HERE}
          template: print-message
""", "no-such-workflowtemplate"),
}


# --------------------------------------------------------------------------------------------
# 1. Bad input: exit 2, file:line on stderr, fast, nothing stored
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lint", "submit"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_fast_with_file_and_line(home, tmp_path, monkeypatch, case, command):
    text, must_mention = BAD_INPUTS[case]
    path = write(tmp_path, f"{case}.yaml", text)
    monkeypatch.chdir(tmp_path)  # the user types a short relative path
    startup, _ = timed(home, "--help")

    elapsed, proc = timed(home, command, path.name)

    report = f"reconciler {command} {path.name} -> exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 2, report
    assert stored_workflows(home) == [], "a refused file must leave nothing in the store"
    # A guard against blow-ups (an alias bomb expanded, a cycle walked forever take minutes or never end), not a
    # latency target: the bound scales with this machine's own start-up so a loaded CI box does not fail it.
    assert elapsed <= 3 * startup + 10.0, f"took {elapsed:.2f}s (CLI start-up {startup:.2f}s)\n{report}"

    # Every problem starts a line with FILE:LINE: ; take each with whatever follows it.
    problems = re.findall(rf"^{re.escape(path.name)}:(\d+): (.*(?:\n(?!{re.escape(path.name)}:).*)*)",
                          proc.stderr, flags=re.MULTILINE)
    assert problems, f"no FILE:LINE: error on stderr\n{report}"
    flat = [(int(line), " ".join(msg.split())) for line, msg in problems]
    matching = [(line, msg) for line, msg in flat if must_mention in msg]
    assert matching, f"no error mentions {must_mention!r}\n{report}"
    expected = marked_lines(text)
    if expected:
        assert any(line in expected for line, _ in matching), (
            f"error points at line(s) {[line for line, _ in matching]}, expected one of {sorted(expected)}\n{report}")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_error_is_one_line_per_problem(home, tmp_path, monkeypatch, case):
    """Editors and CI parse FILE:LINE: ...; a problem wrapped over two lines loses its tail."""
    path = write(tmp_path, f"{case}.yaml", BAD_INPUTS[case][0])
    monkeypatch.chdir(tmp_path)
    for command in ("lint", "submit"):
        proc = run_cli(home, command, path.name)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        stray = [line for line in lines if not line.startswith(f"{path.name}:")]
        assert lines and not stray, (
            f"reconciler {command} {path.name}: stderr is not one FILE:LINE: line per problem; "
            f"continuation lines {stray}\nstderr:\n{proc.stderr}")


def test_error_stays_one_line_for_a_long_absolute_path(home, tmp_path):
    """Editors and CI parse FILE:LINE: ...; a deep repository path must not be folded or wrapped."""
    text, _ = BAD_INPUTS["duplicate-template"]
    path = write(tmp_path, "environments/production/workflows/nightly-warehouse-refresh.yaml", text)
    for command in ("lint", "submit"):
        proc = run_cli(home, command, str(path))
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"{path}:{min(marked_lines(text))}: "), (
            f"reconciler {command} {path}: expected one line starting with the path, got:\n{proc.stderr}")


def test_lint_reports_every_problem_of_every_file_at_once(home, tmp_path, monkeypatch):
    write(tmp_path, "cycle.yaml", BAD_INPUTS["dag-cycle"][0])
    write(tmp_path, "unknown.yaml", BAD_INPUTS["unknown-template"][0])
    monkeypatch.chdir(tmp_path)  # short names: line wrapping is test_error_stays_one_line_*'s business
    proc = run_cli(home, "lint", "cycle.yaml", "unknown.yaml")
    assert proc.returncode == 2, proc.stderr
    assert re.search(r"^cycle\.yaml:\d+: ", proc.stderr, re.MULTILINE), proc.stderr
    assert re.search(r"^unknown\.yaml:\d+: ", proc.stderr, re.MULTILINE), proc.stderr
    flat = " ".join(proc.stderr.split())
    assert "cycle" in flat and "nosuch" in flat, proc.stderr


def test_lint_of_a_good_file_exits_0(home, tmp_path):
    path = write(tmp_path, "good.yaml", TWO_STEP_DAG)
    proc = run_cli(home, "lint", str(path))
    assert proc.returncode == 0, proc.stderr
    assert stored_workflows(home) == []


def test_argument_without_value_runs_when_given_with_p(home, tmp_path):
    path = write(tmp_path, "novalue.yaml", BAD_INPUTS["argument-without-value"][0])
    wf = submit_wait_json(home, path, "-p", "day=2026-11-27")
    assert wf["status"]["phase"] == "Succeeded"
    logs = run_cli(home, "logs", wf["metadata"]["name"], check=True).stdout
    assert "2026-11-27" in logs


# --------------------------------------------------------------------------------------------
# 2. submit --wait, -o json, -p, -o name
# --------------------------------------------------------------------------------------------


def test_submit_wait_succeeds_with_exit_0(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    proc = run_cli(home, "submit", str(path), "--wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\s*Status:\s+Succeeded\s*$", proc.stdout, re.MULTILINE), proc.stdout
    [wf] = stored_workflows(home)
    assert wf["status"]["phase"] == "Succeeded"


def test_submit_wait_of_a_failing_step_exits_1(home, tmp_path):
    path = write(tmp_path, "failing.yaml", FAILING)
    proc = run_cli(home, "submit", str(path), "--wait")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^\s*Status:\s+Failed\s*$", proc.stdout, re.MULTILINE), proc.stdout
    [brief] = stored_workflows(home)
    wf = cli_json(home, "get", brief["metadata"]["name"], "-o", "json")
    assert wf["status"]["phase"] == "Failed"
    [pod] = pods(wf)
    assert pod["phase"] == "Failed"
    assert pod["outputs"]["exitCode"] == "3"
    assert "exit code 3" in pod["message"]


def test_submit_wait_json_prints_the_whole_workflow(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    wf = submit_wait_json(home, path)  # stdout must be nothing but the JSON object
    assert wf["apiVersion"] == "argoproj.io/v1alpha1" and wf["kind"] == "Workflow"
    assert wf["metadata"]["name"].startswith("greet-") and wf["metadata"]["namespace"] == "default"
    assert [t["name"] for t in wf["spec"]["templates"]] == ["main", "say"]
    assert wf["status"]["phase"] == "Succeeded"
    assert sorted(n["displayName"] for n in pods(wf)) == ["first", "second"]
    assert wf == cli_json(home, "get", wf["metadata"]["name"], "-o", "json")


def test_submit_p_overrides_a_workflow_argument(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    wf = submit_wait_json(home, path, "-p", "greeting=bonjour")
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "greeting", "value": "bonjour"}]
    first = pod_by_display(wf, "first")
    assert first["inputs"]["parameters"] == [{"name": "msg", "value": "first-bonjour"}]
    logs = run_cli(home, "logs", wf["metadata"]["name"], check=True).stdout
    assert "first-bonjour" in logs and "second-bonjour" in logs and "hello" not in logs, logs


def test_submit_output_name_without_wait_prints_only_the_name_and_stays_pending(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    proc = run_cli(home, "submit", str(path), "-o", "name")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"greet-[a-z0-9]+", lines[0]), proc.stdout
    name = lines[0]
    wf = cli_json(home, "get", name, "-o", "json")
    assert wf["status"]["phase"] == "Pending"
    assert not wf["status"].get("nodes"), "nothing may run without --wait/--watch"
    assert [w["metadata"]["name"] for w in stored_workflows(home)] == [name]


# --------------------------------------------------------------------------------------------
# 3. submit --watch
# --------------------------------------------------------------------------------------------


def test_submit_watch_shows_the_node_tree_and_final_status(home, tmp_path):
    path = write(tmp_path, "etl.yaml", ETL_DAG)
    proc = run_cli(home, "submit", str(path), "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [brief] = stored_workflows(home)
    name = brief["metadata"]["name"]
    out = proc.stdout
    assert name in out, out
    for step in ("extract-views", "extract-payments", "transform"):
        assert re.search(rf"✔ {re.escape(step)}(\s|$)", out, re.MULTILINE), f"no '✔ {step}' row in:\n{out}"
    statuses = re.findall(r"^\s*Status:\s+(\S+)", out, re.MULTILINE)
    assert statuses and statuses[-1] == "Succeeded", out


def test_submit_watch_output_ends_with_a_newline(home, tmp_path):
    """Otherwise the shell prompt (or the next command's output) lands on the tree's last row."""
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    proc = run_cli(home, "submit", str(path), "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.endswith("\n"), repr(proc.stdout[-120:])


# --------------------------------------------------------------------------------------------
# 4. list / get / logs / delete / namespaces
# --------------------------------------------------------------------------------------------


def test_list_json_has_the_workflow_and_its_phase(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    ok = submit_wait_json(home, path)
    bad = submit_wait_json_failing(home, write(tmp_path, "failing.yaml", FAILING))
    listed = {w["metadata"]["name"]: w for w in cli_json(home, "list", "-o", "json")}
    assert set(listed) == {ok["metadata"]["name"], bad}
    assert listed[ok["metadata"]["name"]]["status"]["phase"] == "Succeeded"
    assert listed[bad]["status"]["phase"] == "Failed"


def submit_wait_json_failing(home: Path, path: Path) -> str:
    proc = run_cli(home, "submit", str(path), "--wait", "-o", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["metadata"]["name"]


def test_list_table_shows_full_names(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    name = submit_wait_json(home, path)["metadata"]["name"]
    proc = run_cli(home, "list", check=True)
    assert re.search(rf"^\s*{re.escape(name)}\s+default\s+Succeeded\s", proc.stdout, re.MULTILINE), (
        f"`reconciler list` does not show NAME {name}, NAMESPACE default, STATUS Succeeded:\n{proc.stdout}")


def test_get_json_is_the_whole_object_with_argo_shaped_status(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    name = submit_wait_json(home, path)["metadata"]["name"]
    wf = cli_json(home, "get", name, "-o", "json")
    assert wf["kind"] == "Workflow" and wf["metadata"]["name"] == name
    assert wf["spec"]["entrypoint"] == "main"
    status = wf["status"]
    assert status["phase"] == "Succeeded"
    assert RFC3339.match(status["startedAt"]) and RFC3339.match(status["finishedAt"]), status
    assert status["startedAt"] <= status["finishedAt"]
    nodes = status["nodes"]
    for node_id, node in nodes.items():
        for key in ("id", "name", "displayName", "type", "phase", "startedAt", "finishedAt"):
            assert key in node, f"node {node_id} lacks {key}: {node}"
        assert node["id"] == node_id
        for child in node.get("children", []):
            assert child in nodes, f"node {node_id} names unknown child {child}"
    root = nodes[name]  # Argo: the entrypoint's node has the workflow's name as id and name
    assert root["type"] == "DAG" and root["displayName"] == name and root["phase"] == "Succeeded"
    first, second = pod_by_display(wf, "first"), pod_by_display(wf, "second")
    assert first["name"] == f"{name}.first" and second["name"] == f"{name}.second"
    assert first["phase"] == second["phase"] == "Succeeded"
    assert first["templateName"] == "say"
    # every Pod is reachable from the root through children
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        seen.add(current)
        todo.extend(c for c in nodes[current].get("children", []) if c not in seen)
    assert {first["id"], second["id"]} <= seen


def test_get_table_shows_the_step_tree(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    wf = submit_wait_json(home, path)
    name = wf["metadata"]["name"]
    out = run_cli(home, "get", name, check=True).stdout
    lines = out.splitlines()
    header = [i for i, line in enumerate(lines) if re.match(r"^\s*STEP\s+TEMPLATE\s+PODNAME", line)]
    assert header, out
    tree = lines[header[0] + 1:]
    assert re.search(rf"✔ {re.escape(name)}\b", tree[0]), out
    for step in ("first", "second"):
        row = [line for line in tree if re.search(rf"[├└]─✔ {step}\b", line)]
        assert row, f"no tree row for {step}:\n{out}"
        assert pod_by_display(wf, step)["podName"] in row[0], out
    assert re.search(r"^\s*Status:\s+Succeeded\s*$", out, re.MULTILINE), out


def test_get_table_shows_full_step_and_pod_names(home, tmp_path):
    path = write(tmp_path, "etl.yaml", ETL_DAG)
    wf = submit_wait_json(home, path)
    out = run_cli(home, "get", wf["metadata"]["name"], check=True).stdout
    for pod in pods(wf):
        row = [line for line in out.splitlines() if re.search(rf"✔ {re.escape(pod['displayName'])}(\s|$)", line)]
        assert row, f"step {pod['displayName']!r} not shown in full:\n{out}"
        assert pod["podName"] in row[0], f"pod name {pod['podName']} not shown in full:\n{out}"


def test_logs_prints_each_step_prefixed_by_pod_name_and_node_filters(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    wf = submit_wait_json(home, path)
    name = wf["metadata"]["name"]
    first, second = pod_by_display(wf, "first"), pod_by_display(wf, "second")
    out = run_cli(home, "logs", name, check=True).stdout.splitlines()
    assert f"{first['podName']}: first-hello" in out, out
    assert f"{second['podName']}: second-hello" in out, out
    only = run_cli(home, "logs", name, "--node", "second", check=True).stdout
    assert "second-hello" in only and "first-hello" not in only, only
    missing = run_cli(home, "logs", name, "--node", "no-such-step")
    assert missing.returncode != 0


def test_delete_removes_the_workflow(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    name = submit_wait_json(home, path)["metadata"]["name"]
    proc = run_cli(home, "delete", name)
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout
    assert stored_workflows(home) == []
    gone = run_cli(home, "get", name)
    assert gone.returncode != 0 and name in gone.stderr, gone.stderr
    assert run_cli(home, "logs", name).returncode != 0
    again = run_cli(home, "delete", name)
    assert again.returncode != 0 and name in again.stderr, again.stderr


def test_namespaces_isolate_workflows(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    in_a = run_cli(home, "submit", str(path), "-n", "team-a", "--wait", "-o", "name", check=True).stdout.strip()
    in_default = run_cli(home, "submit", str(path), "--wait", "-o", "name", check=True).stdout.strip()
    assert in_a and in_default and in_a != in_default

    def names(*args):
        return {w["metadata"]["name"]: w["metadata"]["namespace"] for w in cli_json(home, "list", "-o", "json", *args)}

    assert names() == {in_default: "default"}
    assert names("-n", "team-a") == {in_a: "team-a"}
    assert names("-A") == {in_a: "team-a", in_default: "default"}
    assert run_cli(home, "get", in_a).returncode != 0
    assert cli_json(home, "get", in_a, "-n", "team-a", "-o", "json")["status"]["phase"] == "Succeeded"
    assert run_cli(home, "delete", in_a).returncode != 0, "delete without -n must not reach team-a"
    assert names("-n", "team-a") == {in_a: "team-a"}


# --------------------------------------------------------------------------------------------
# 5. apply, template list, cron list
# --------------------------------------------------------------------------------------------

WORKFLOW_TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: shared-echo
spec:
  templates:
  - name: echo
    container:
      image: busybox
      command: [echo, "{message}"]
"""

CLUSTER_TEMPLATE = WORKFLOW_TEMPLATE.replace("kind: WorkflowTemplate", "kind: ClusterWorkflowTemplate").replace(
    "shared-echo", "cluster-echo")


def test_apply_workflowtemplate_created_unchanged_configured(home, tmp_path):
    path = write(tmp_path, "tmpl.yaml", WORKFLOW_TEMPLATE.format(message="one"))
    assert run_cli(home, "apply", str(path), check=True).stdout.strip() == "workflowtemplate/shared-echo created"
    assert run_cli(home, "apply", str(path), check=True).stdout.strip() == "workflowtemplate/shared-echo unchanged"
    path.write_text(WORKFLOW_TEMPLATE.format(message="two"))
    assert run_cli(home, "apply", str(path), check=True).stdout.strip() == "workflowtemplate/shared-echo configured"
    [tmpl] = cli_json(home, "template", "list", "-o", "json")
    assert tmpl["kind"] == "WorkflowTemplate" and tmpl["metadata"]["name"] == "shared-echo"
    assert tmpl["metadata"]["namespace"] == "default"
    assert tmpl["spec"]["templates"][0]["container"]["command"] == ["echo", "two"]
    assert cli_json(home, "template", "list", "--cluster", "-o", "json") == []


def test_apply_cluster_workflowtemplate_and_list_cluster(home, tmp_path):
    path = write(tmp_path, "cluster.yaml", CLUSTER_TEMPLATE.format(message="hi"))
    out = run_cli(home, "apply", str(path), check=True).stdout.strip()
    assert out == "clusterworkflowtemplate/cluster-echo created"
    [tmpl] = cli_json(home, "template", "list", "--cluster", "-o", "json")
    assert tmpl["kind"] == "ClusterWorkflowTemplate" and tmpl["metadata"]["name"] == "cluster-echo"
    assert cli_json(home, "template", "list", "-o", "json") == []


def test_apply_refuses_a_workflow(home, tmp_path):
    path = write(tmp_path, "greet.yaml", TWO_STEP_DAG)
    proc = run_cli(home, "apply", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(path) in "".join(proc.stderr.split()) and "submit" in proc.stderr, proc.stderr
    assert stored_workflows(home) == []
    assert cli_json(home, "template", "list", "-o", "json") == []


def test_cron_list_after_apply(home):
    out = run_cli(home, "apply", str(CORPUS / "cron-workflow.yaml"), check=True).stdout.strip()
    assert out == "cronworkflow/hello-world created"
    [cron] = cli_json(home, "cron", "list", "-o", "json")
    assert cron["kind"] == "CronWorkflow" and cron["metadata"]["name"] == "hello-world"
    assert cron["spec"]["schedules"] == ["* * * * *"]
    assert cron["spec"]["workflowSpec"]["entrypoint"] == "hello-world-with-time"
    assert stored_workflows(home) == [], "applying a CronWorkflow must not start a run"


# --------------------------------------------------------------------------------------------
# 6. templateRef to an applied WorkflowTemplate
# --------------------------------------------------------------------------------------------


def test_workflow_with_templateref_runs_after_apply(home):
    hello = CORPUS / "workflow-template" / "hello-world.yaml"
    before = run_cli(home, "submit", str(hello), "--wait")
    assert before.returncode == 2 and "workflow-template-print-message" in " ".join(before.stderr.split())
    assert stored_workflows(home) == []

    applied = run_cli(home, "apply", str(CORPUS / "workflow-template" / "templates.yaml"), check=True).stdout
    assert "workflowtemplate/workflow-template-print-message created" in applied.splitlines()
    wf = submit_wait_json(home, hello)
    assert wf["status"]["phase"] == "Succeeded"
    step = pod_by_display(wf, "call-print-message")
    assert step["phase"] == "Succeeded"
    assert step["inputs"]["parameters"] == [{"name": "message", "value": "hello world"}]
    logs = run_cli(home, "logs", wf["metadata"]["name"], check=True).stdout
    assert f"{step['podName']}: hello world" in logs.splitlines(), logs

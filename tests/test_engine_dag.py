"""DAG semantics: enhanced `depends`, `dependencies`, `continueOn`, Argo's DAG phase rules (a
failure counts only where it reaches a target task), `when`, and steps/DAG nesting with outputs
passed up through `valueFrom.parameter`."""

from __future__ import annotations

from tests.test_engine_helpers import maybe_node, node, out_param, pods, result, run

# A template that exits with the code it is given and prints its name.
EXIT_TMPL = """
  - name: exit
    inputs:
      parameters: [{name: code, default: "0"}]
    container:
      image: alpine
      command: [sh, -c, "echo ran-{{pod.name}}; exit {{inputs.parameters.code}}"]
"""


def dag_wf(name: str, tasks: str) -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
{tasks}
{EXIT_TMPL}
"""


def test_failed_handler_runs_and_omitted_target_inherits_failure(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("handled", """
      - {name: A, template: exit, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: on-fail, template: exit, depends: A.Failed}
      - {name: on-ok, template: exit, depends: A.Succeeded}
"""))
    assert node(wf, "A")["phase"] == "Failed"
    handler = node(wf, "on-fail")
    assert handler["type"] == "Pod" and handler["phase"] == "Succeeded"
    assert handler["startedAtUnix"] >= node(wf, "A")["finishedAtUnix"]
    # on-ok is omitted and inherits A's Failed branch phase: it is a target task, so the DAG fails.
    assert node(wf, "on-ok")["phase"] == "Omitted"
    assert wf["status"]["phase"] == "Failed", wf["status"].get("message")


def test_failure_handled_only_by_failed_dependent_dag_succeeds(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("handled-only", """
      - {name: A, template: exit, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: cleanup, template: exit, depends: A.Failed}
"""))
    assert node(wf, "A")["phase"] == "Failed"
    assert node(wf, "cleanup")["phase"] == "Succeeded"
    assert node(wf, "handled-only")["phase"] == "Succeeded"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_failed_handler_omitted_when_task_succeeds(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("not-handled", """
      - {name: A, template: exit}
      - {name: cleanup, template: exit, depends: A.Failed}
"""))
    cleanup = node(wf, "cleanup")
    assert cleanup["phase"] == "Omitted"
    assert cleanup["type"] == "Skipped"
    assert not [p for p in pods(wf) if p["displayName"] == "cleanup"]
    # An omitted target inherits A's Succeeded branch phase.
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_and_is_omitted_when_one_side_failed(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("and-omit", """
      - {name: A, template: exit}
      - {name: B, template: exit, arguments: {parameters: [{name: code, value: "2"}]}}
      - {name: C, template: exit, depends: A && B}
"""))
    assert node(wf, "A")["phase"] == "Succeeded"
    assert node(wf, "B")["phase"] == "Failed"
    assert node(wf, "B")["outputs"]["exitCode"] == "2"
    c = node(wf, "C")
    assert c["phase"] == "Omitted"
    assert c["type"] == "Skipped"
    # C is the leaf; it inherits the Failed phase of B's branch.
    assert wf["status"]["phase"] == "Failed"


def test_or_depends_runs_when_either_side_matches(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("or-dep", """
      - {name: A, template: exit, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: B, template: exit}
      - {name: C, template: exit, depends: "A.Succeeded || B.Succeeded"}
      - {name: D, template: exit, depends: "!A.Succeeded && (B.Succeeded || B.Skipped)"}
"""))
    assert node(wf, "C")["phase"] == "Succeeded"
    assert node(wf, "D")["phase"] == "Succeeded"
    assert node(wf, "C")["startedAtUnix"] >= max(node(wf, "A")["finishedAtUnix"], node(wf, "B")["finishedAtUnix"])
    # A's failure is handled: both of its dependents ran and succeeded.
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_failure_reaching_a_leaf_fails_the_dag(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("leaf-fail", """
      - {name: A, template: exit}
      - {name: B, template: exit, depends: A, arguments: {parameters: [{name: code, value: "3"}]}}
"""))
    assert node(wf, "A")["phase"] == "Succeeded"
    b = node(wf, "B")
    assert b["phase"] == "Failed"
    assert b["outputs"]["exitCode"] == "3"
    assert node(wf, "leaf-fail")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"
    assert "B" in wf["status"].get("message", "")


def test_dependencies_list_waits_for_all(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: deps-list}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: A, template: slow}}
      - {{name: B, template: exit}}
      - {{name: C, template: exit, dependencies: [A, B]}}
  - name: slow
    container: {{image: alpine, command: [sh, -c, "sleep 0.3; echo slow"]}}
{EXIT_TMPL}
""")
    a, b, c = node(wf, "A"), node(wf, "B"), node(wf, "C")
    assert c["phase"] == "Succeeded"
    assert c["startedAtUnix"] >= a["finishedAtUnix"]
    assert c["startedAtUnix"] >= b["finishedAtUnix"]
    assert wf["status"]["phase"] == "Succeeded"


def test_dependencies_list_does_not_run_after_failure(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("deps-fail", """
      - {name: A, template: exit}
      - {name: B, template: exit, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: C, template: exit, dependencies: [A, B]}
"""))
    assert not [p for p in pods(wf) if p["displayName"] == "C"]
    c = maybe_node(wf, "C")
    assert c is None or c["phase"] == "Omitted"
    assert wf["status"]["phase"] == "Failed"


def test_continue_on_failed_lets_dependents_run_and_dag_succeed(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("continue-on", """
      - {name: A, template: exit, continueOn: {failed: true}, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: B, template: exit, depends: A}
      - {name: L, template: exit, continueOn: {failed: true}, arguments: {parameters: [{name: code, value: "1"}]}}
"""))
    assert node(wf, "A")["phase"] == "Failed"
    assert node(wf, "B")["phase"] == "Succeeded"
    # L is a leaf that failed, but continueOn.failed keeps it from failing the DAG.
    assert node(wf, "L")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_without_continue_on_dependent_of_failed_task_is_omitted(tmp_path) -> None:
    wf = run(tmp_path, dag_wf("no-continue-on", """
      - {name: A, template: exit, arguments: {parameters: [{name: code, value: "1"}]}}
      - {name: B, template: exit, depends: A}
"""))
    assert node(wf, "B")["phase"] == "Omitted"
    assert wf["status"]["phase"] == "Failed"


def test_steps_continue_on_failed(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: steps-continue}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: bad, template: exit, continueOn: {{failed: true}}, arguments: {{parameters: [{{name: code, value: "1"}}]}}}}
    - - {{name: after, template: exit}}
{EXIT_TMPL}
""")
    assert node(wf, "bad")["phase"] == "Failed"
    assert node(wf, "after")["phase"] == "Succeeded"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_steps_failure_stops_later_groups(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: steps-fail}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: bad, template: exit, arguments: {{parameters: [{{name: code, value: "1"}}]}}}}
    - - {{name: after, template: exit}}
{EXIT_TMPL}
""")
    assert node(wf, "bad")["phase"] == "Failed"
    assert maybe_node(wf, "after") is None
    assert wf["status"]["phase"] == "Failed"
    assert "bad" in wf["status"]["message"]


# ---- when ------------------------------------------------------------------------------------

WHEN_WF = """
metadata: {name: when-test}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: n, value: "10"}
    - {name: s, value: heads}
  templates:
  - name: main
    steps:
    - - {name: num-true, template: echo, when: "{{workflow.parameters.n}} > 9"}
      - {name: num-false, template: echo, when: "{{workflow.parameters.n}} < 9"}
      - {name: num-eq, template: echo, when: "{{workflow.parameters.n}} == 10"}
      - {name: str-true, template: echo, when: "{{workflow.parameters.s}} == heads"}
      - {name: str-false, template: echo, when: "{{workflow.parameters.s}} == tails"}
      - {name: str-ne, template: echo, when: "{{workflow.parameters.s}} != tails"}
    - - name: dag
        template: d
  - name: d
    dag:
      tasks:
      - {name: t-true, template: echo, when: "{{workflow.parameters.n}} >= 10"}
      - {name: t-false, template: echo, when: "'{{workflow.parameters.s}}' == 'tails'"}
      - {name: after-skip, template: echo, depends: t-false}
  - name: echo
    container: {image: alpine, command: [sh, -c, "echo {{pod.name}}"]}
"""


def test_when_true_runs_false_is_skipped(tmp_path) -> None:
    wf = run(tmp_path, WHEN_WF)
    for ran in ("num-true", "num-eq", "str-true", "str-ne", "t-true"):
        n = node(wf, ran)
        assert n["type"] == "Pod" and n["phase"] == "Succeeded", ran
    for skipped in ("num-false", "str-false", "t-false"):
        n = node(wf, skipped)
        assert n["type"] == "Skipped" and n["phase"] == "Skipped", skipped
        assert "evaluated false" in n["message"], n
    assert "10 < 9" in node(wf, "num-false")["message"]
    # A bare dependency is satisfied by a Skipped task.
    assert node(wf, "after-skip")["phase"] == "Succeeded"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_when_uses_a_previous_step_result(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: coin}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: flip, template: flip}
    - - {name: heads, template: echo, when: "{{steps.flip.outputs.result}} == heads"}
      - {name: tails, template: echo, when: "{{steps.flip.outputs.result}} == tails"}
  - name: flip
    container: {image: alpine, command: [sh, -c, "echo heads"]}
  - name: echo
    container: {image: alpine, command: [sh, -c, "echo landed"]}
""")
    assert node(wf, "heads")["phase"] == "Succeeded"
    assert result(wf, "heads") == "landed"
    assert node(wf, "tails")["phase"] == "Skipped"
    assert "evaluated false" in node(wf, "tails")["message"]


# ---- nesting ---------------------------------------------------------------------------------

def test_dag_inside_steps_passes_outputs_up(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: dag-in-steps}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: inner, template: inner-dag}
    - - name: use
        template: show
        arguments: {parameters: [{name: v, value: "{{steps.inner.outputs.parameters.out}}"}]}
  - name: inner-dag
    dag:
      tasks:
      - {name: a, template: produce, arguments: {parameters: [{name: v, value: from-a}]}}
      - {name: b, template: produce, depends: a, arguments: {parameters: [{name: v, value: "{{tasks.a.outputs.parameters.p}}+b"}]}}
    outputs:
      parameters:
      - name: out
        valueFrom: {parameter: "{{tasks.b.outputs.parameters.p}}"}
  - name: produce
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [sh, -c, "printf '%s' '{{inputs.parameters.v}}' > /tmp/p.txt"]}
    outputs:
      parameters:
      - {name: p, valueFrom: {path: /tmp/p.txt}}
  - name: show
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [sh, -c, "echo got={{inputs.parameters.v}}"]}
""")
    inner = node(wf, "inner")
    assert inner["type"] == "DAG"
    assert out_param(inner, "out") == "from-a+b"
    assert result(wf, "use") == "got=from-a+b"
    assert wf["status"]["phase"] == "Succeeded"


def test_steps_inside_dag_passes_outputs_up(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: steps-in-dag}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: inner, template: inner-steps}
      - name: use
        depends: inner
        template: show
        arguments: {parameters: [{name: v, value: "{{tasks.inner.outputs.parameters.out}}"}]}
  - name: inner-steps
    steps:
    - - {name: s1, template: produce}
    outputs:
      parameters:
      - name: out
        valueFrom: {parameter: "{{steps.s1.outputs.parameters.p}}"}
  - name: produce
    container: {image: alpine, command: [sh, -c, "printf deep > /tmp/p.txt"]}
    outputs:
      parameters:
      - {name: p, valueFrom: {path: /tmp/p.txt}}
  - name: show
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [sh, -c, "echo got={{inputs.parameters.v}}"]}
""")
    inner = node(wf, "inner")
    assert inner["type"] == "Steps"
    assert out_param(inner, "out") == "deep"
    assert result(wf, "use") == "got=deep"
    assert wf["status"]["phase"] == "Succeeded"


def test_nested_failure_propagates_to_workflow(tmp_path) -> None:
    wf = run(tmp_path, f"""
metadata: {{name: nested-fail}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: inner, template: inner-dag}}
  - name: inner-dag
    dag:
      tasks:
      - {{name: deep, template: exit, arguments: {{parameters: [{{name: code, value: "4"}}]}}}}
{EXIT_TMPL}
""")
    assert node(wf, "deep")["phase"] == "Failed"
    assert node(wf, "inner")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"

"""Exit handlers (workflow `onExit`, step/task `hooks.exit`), parallelism (workflow and template),
`templateRef` / `workflowTemplateRef`, `templateDefaults`, script templates and step logs."""

from __future__ import annotations

from tests.test_engine_helpers import NS, interval, max_overlap, node, nodes, pods, result, run

# ---- onExit ----------------------------------------------------------------------------------


def exit_wf(name: str, main_cmd: str) -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
  onExit: handler
  templates:
  - name: main
    steps:
    - - {{name: work, template: work}}
  - name: work
    container: {{image: alpine, command: [sh, -c, "{main_cmd}"]}}
  - name: handler
    container: {{image: alpine, command: [sh, -c, "echo status={{{{workflow.status}}}}"]}}
"""


def test_exit_handler_runs_after_success_and_sees_status(tmp_path) -> None:
    wf = run(tmp_path, exit_wf("exit-ok", "echo working"))
    handler = node(wf, "exit-ok.onExit")
    assert handler["phase"] == "Succeeded"
    assert handler["outputs"]["result"] == "status=Succeeded"
    assert handler["startedAtUnix"] >= node(wf, "work")["finishedAtUnix"]
    assert wf["status"]["phase"] == "Succeeded"


def test_exit_handler_runs_after_failure_and_sees_failed(tmp_path) -> None:
    wf = run(tmp_path, exit_wf("exit-fail", "exit 3"))
    handler = node(wf, "exit-fail.onExit")
    assert handler["phase"] == "Succeeded"
    assert handler["outputs"]["result"] == "status=Failed"
    assert handler["startedAtUnix"] >= node(wf, "work")["finishedAtUnix"]
    # The handler succeeding does not hide the main failure.
    assert wf["status"]["phase"] == "Failed"


def test_exit_handler_runs_after_deadline(tmp_path) -> None:
    text = exit_wf("exit-deadline", "sleep 10").replace("  onExit: handler\n", "  onExit: handler\n  activeDeadlineSeconds: 1\n")
    wf = run(tmp_path, text, limit=8)
    handler = node(wf, "exit-deadline.onExit")
    assert handler["outputs"]["result"] == "status=Failed"
    assert wf["status"]["phase"] == "Failed"


def test_steps_exit_handler_uses_workflow_status_in_arguments_and_when(tmp_path) -> None:
    """The shape of Argo's examples/exit-handlers.yaml: a steps exit handler whose steps read
    {{workflow.status}} in arguments and in `when`."""
    wf = run(tmp_path, """
metadata: {name: exit-steps}
spec:
  entrypoint: main
  onExit: handler
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "echo main"]}
  - name: handler
    steps:
    - - name: notify
        template: say
        arguments: {parameters: [{name: m, value: "status {{workflow.status}}"}]}
      - name: celebrate
        template: say
        arguments: {parameters: [{name: m, value: hooray}]}
        when: "{{workflow.status}} == Succeeded"
      - name: cry
        template: say
        arguments: {parameters: [{name: m, value: boohoo}]}
        when: "{{workflow.status}} != Succeeded"
  - name: say
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.m}}"]}
""")
    assert node(wf, "exit-steps.onExit")["type"] == "Steps"
    assert result(wf, "notify") == "status Succeeded"
    assert result(wf, "celebrate") == "hooray"
    assert node(wf, "cry")["phase"] == "Skipped"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_step_exit_hook_runs_after_the_step_before_the_next(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: step-hook}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: work
        template: work
        hooks:
          exit:
            template: hook
            arguments:
              parameters:
              - {name: msg, value: "{{steps.work.outputs.parameters.out}}/{{steps.work.status}}"}
    - - {name: next, template: plain}
  - name: work
    container: {image: alpine, command: [sh, -c, "sleep 0.2; printf produced > /tmp/o.txt"]}
    outputs:
      parameters:
      - {name: out, valueFrom: {path: /tmp/o.txt}}
  - name: hook
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, "sleep 0.2; echo hook={{inputs.parameters.msg}}"]}
  - name: plain
    container: {image: alpine, command: [sh, -c, "echo next"]}
""")
    work, hook, nxt = node(wf, "work"), node(wf, "work.onExit"), node(wf, "next")
    assert hook["phase"] == "Succeeded"
    assert hook["outputs"]["result"] == "hook=produced/Succeeded"
    assert hook["startedAtUnix"] >= work["finishedAtUnix"]
    assert nxt["startedAtUnix"] >= hook["finishedAtUnix"]
    assert wf["status"]["phase"] == "Succeeded"


def test_task_exit_hook_runs_when_task_fails(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: task-hook}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: work
        template: work
        hooks:
          exit:
            template: hook
            arguments: {parameters: [{name: msg, value: "{{tasks.work.status}}"}]}
  - name: work
    container: {image: alpine, command: [sh, -c, "exit 1"]}
  - name: hook
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, "echo hook={{inputs.parameters.msg}}"]}
""")
    hook = node(wf, "work.onExit")
    assert hook["outputs"]["result"] == "hook=Failed"
    assert hook["startedAtUnix"] >= node(wf, "work")["finishedAtUnix"]
    assert wf["status"]["phase"] == "Failed"


# ---- parallelism -----------------------------------------------------------------------------

def parallel_wf(name: str, extra_spec: str = "", tmpl_extra: str = "") -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
{extra_spec}
  templates:
  - name: main
{tmpl_extra}
    dag:
      tasks:
      - {{name: a, template: nap}}
      - {{name: b, template: nap}}
      - {{name: c, template: nap}}
      - {{name: d, template: nap}}
  - name: nap
    container: {{image: alpine, command: [sh, -c, "sleep 0.5"]}}
"""


def test_workflow_parallelism_one_serialises_pods(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: wf-par}
spec:
  entrypoint: main
  parallelism: 1
  templates:
  - name: main
    steps:
    - - {name: a, template: nap}
      - {name: b, template: nap}
      - {name: c, template: nap}
  - name: nap
    container: {image: alpine, command: [sh, -c, "sleep 0.3"]}
""")
    spans = sorted(interval(p) for p in pods(wf))
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, spans
    assert wf["status"]["phase"] == "Succeeded"


def test_template_parallelism_limits_concurrent_tasks(tmp_path) -> None:
    wf = run(tmp_path, parallel_wf("tmpl-par", tmpl_extra="    parallelism: 2"))
    spans = [interval(p) for p in pods(wf)]
    assert len(spans) == 4
    assert max_overlap(spans) == 2
    assert wf["status"]["phase"] == "Succeeded"


def test_without_parallelism_tasks_overlap(tmp_path) -> None:
    wf = run(tmp_path, parallel_wf("no-par"))
    spans = [interval(p) for p in pods(wf)]
    assert max_overlap(spans) == 4


def test_template_parallelism_limits_loop_iterations(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: loop-par}
spec:
  entrypoint: main
  templates:
  - name: main
    parallelism: 1
    steps:
    - - {name: nap, template: nap, withItems: [1, 2, 3]}
  - name: nap
    container: {image: alpine, command: [sh, -c, "sleep 0.2"]}
""")
    spans = [interval(p) for p in pods(wf)]
    assert len(spans) == 3
    assert max_overlap(spans) == 1


# ---- templateRef / workflowTemplateRef -------------------------------------------------------

LIBRARY = """
metadata: {name: library}
spec:
  entrypoint: greet
  arguments:
    parameters:
    - {name: who, value: template-default}
    - {name: punct, value: "!"}
  templates:
  - name: greet
    inputs:
      parameters: [{name: who}, {name: punct}]
    container: {image: alpine, command: [sh, -c, "echo hello {{inputs.parameters.who}}{{inputs.parameters.punct}}"]}
  - name: shout
    inputs:
      parameters: [{name: word}]
    steps:
    - - name: inner
        template: upper
        arguments: {parameters: [{name: word, value: "{{inputs.parameters.word}}"}]}
  - name: upper
    inputs:
      parameters: [{name: word}]
    script:
      image: python
      command: [python]
      source: |
        print("{{inputs.parameters.word}}".upper())
"""


def test_template_ref_to_stored_workflow_template(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: uses-ref}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: greet
        templateRef: {name: library, template: greet}
        arguments: {parameters: [{name: who, value: ref}, {name: punct, value: "?"}]}
      - name: shout
        templateRef: {name: library, template: shout}
        arguments: {parameters: [{name: word, value: loud}]}
""", templates=[LIBRARY])
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert result(wf, "greet") == "hello ref?"
    # A referenced steps template resolves its own template names inside the WorkflowTemplate.
    assert result(wf, "inner") == "LOUD"


def test_template_ref_missing_template_fails(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: bad-ref}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: greet
        templateRef: {name: library, template: no-such-template}
""", templates=[LIBRARY])
    assert wf["status"]["phase"] in ("Failed", "Error")
    assert "no-such-template" in wf["status"]["message"]


def test_workflow_template_ref_arguments_override(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: from-wft}
spec:
  workflowTemplateRef: {name: library}
  arguments:
    parameters:
    - {name: who, value: workflow}
""", templates=[LIBRARY])
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    # `who` comes from the Workflow, `punct` still from the WorkflowTemplate.
    assert node(wf, "from-wft")["outputs"]["result"] == "hello workflow!"


def test_workflow_template_ref_with_submit_parameter(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: from-wft-p}
spec:
  workflowTemplateRef: {name: library}
""", params={"punct": "."}, templates=[LIBRARY])
    assert node(wf, "from-wft-p")["outputs"]["result"] == "hello template-default."


# ---- templateDefaults ------------------------------------------------------------------------

def test_template_defaults_retry_strategy_applies(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: tmpl-defaults}
spec:
  entrypoint: main
  templateDefaults:
    retryStrategy: {limit: 2}
  templates:
  - name: main
    steps:
    - - {name: flaky, template: flaky}
  - name: flaky
    container: {image: alpine, command: [sh, -c, "[ {{retries}} -ge 1 ]"]}
""")
    flaky = node(wf, "flaky")
    assert flaky["type"] == "Retry"
    assert [wf["status"]["nodes"][c]["phase"] for c in flaky["children"]] == ["Failed", "Succeeded"]
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_template_own_value_beats_template_defaults(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: tmpl-defaults-own}
spec:
  entrypoint: flaky
  templateDefaults:
    retryStrategy: {limit: 3}
  templates:
  - name: flaky
    retryStrategy: {limit: 1}
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""")
    root = node(wf, "tmpl-defaults-own")
    assert root["type"] == "Retry"
    assert len(root["children"]) == 2
    assert wf["status"]["phase"] == "Failed"


def test_template_defaults_apply_to_steps_templates_too(tmp_path) -> None:
    """templateDefaults are merged into every template, so a failing steps template is retried as
    a whole: each retry of `main` runs `flaky` again."""
    wf = run(tmp_path, """
metadata: {name: tmpl-defaults-steps}
spec:
  entrypoint: main
  templateDefaults:
    retryStrategy: {limit: 1}
  templates:
  - name: main
    steps:
    - - {name: flaky, template: flaky}
  - name: flaky
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""")
    root = node(wf, "tmpl-defaults-steps")
    assert root["type"] == "Retry"
    assert len(root["children"]) == 2
    assert len(pods(wf)) == 4
    assert wf["status"]["phase"] == "Failed"


def test_template_defaults_timeout_on_steps_template_is_invalid(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: tmpl-defaults-timeout}
spec:
  entrypoint: main
  templateDefaults:
    timeout: 30s
  templates:
  - name: main
    steps:
    - - {name: work, template: work}
  - name: work
    container: {image: alpine, command: [sh, -c, "echo hi"]}
""")
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"].startswith("invalid spec: ")
    assert "timeout" in wf["status"]["message"]
    assert not pods(wf)


# ---- scripts and logs ------------------------------------------------------------------------

def test_python_script_result_feeds_later_step(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: script}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: use
        template: use
        arguments: {parameters: [{name: n, value: "{{steps.gen.outputs.result}}"}]}
  - name: gen
    script:
      image: python:3.12
      command: [python]
      source: |
        import sys
        total = sum(range(5))
        print(f"diagnostic {total}", file=sys.stderr)
        print(total)
  - name: use
    inputs: {parameters: [{name: n}]}
    script:
      image: python:3.12
      command: [python]
      source: |
        print(int("{{inputs.parameters.n}}") * 10)
""")
    assert result(wf, "gen") == "10"  # stdout only: stderr is not part of the result
    assert result(wf, "use") == "100"
    assert wf["status"]["phase"] == "Succeeded"


def test_step_logs_are_copied_under_home(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: logs}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: talk, template: talk}
      - {name: fail, template: fail}
  - name: talk
    container: {image: alpine, command: [sh, -c, "echo to-stdout-12345; echo to-stderr-67890 >&2"]}
  - name: fail
    container: {image: alpine, command: [sh, -c, "echo failing-output; exit 2"]}
""")
    for name, expected in (("talk", ["to-stdout-12345", "to-stderr-67890"]), ("fail", ["failing-output"])):
        n = node(wf, name)
        log = tmp_path / "logs" / NS / "logs" / f"{n['id']}.log"
        assert log.is_file(), sorted(p.name for p in (tmp_path / "logs").rglob("*"))
        text = log.read_text()
        for piece in expected:
            assert piece in text
    assert "to-stderr" not in result(wf, "talk")


def test_every_pod_node_has_unique_ids_and_timestamps(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: shape}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: t}
      - {name: b, template: t, depends: a}
  - name: t
    container: {image: alpine, command: [sh, -c, "echo x"]}
""")
    ids = [n["id"] for n in nodes(wf)]
    assert len(ids) == len(set(ids)) == len(wf["status"]["nodes"])
    for n in nodes(wf):
        assert n["phase"] == "Succeeded"
        assert n["finishedAtUnix"] >= n["startedAtUnix"]
    assert node(wf, "b")["startedAtUnix"] >= node(wf, "a")["finishedAtUnix"]
    assert wf["status"]["progress"] == "2/2"

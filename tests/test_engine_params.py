"""Parameters: workflow arguments, `-p` overrides, input defaults, enums, output parameters from a
path with a default, `{{=...}}` expressions and `globalName` outputs."""

from __future__ import annotations

from tests.test_engine_helpers import ECHO, in_param, maybe_node, node, out_param, pods, result, run, steps_wf

PARAMS_WF = """
metadata: {name: params}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: greeting, value: hello}
    - {name: who, value: world}
  templates:
  - name: main
    inputs:
      parameters: [{name: greeting}]
    steps:
    - - name: global
        template: echo
        arguments: {parameters: [{name: m, value: "{{workflow.parameters.greeting}} {{workflow.parameters.who}}"}]}
      - name: input
        template: echo
        arguments: {parameters: [{name: m, value: "{{inputs.parameters.greeting}}"}]}
      - name: defaulted
        template: with-default
      - name: overridden
        template: with-default
        arguments: {parameters: [{name: x, value: given}]}
"""

WITH_DEFAULT = """
  - name: with-default
    inputs: {parameters: [{name: x, default: fallback}]}
    container: {image: alpine, command: [sh, -c, "echo x={{inputs.parameters.x}}"]}
"""


def test_workflow_arguments_inputs_and_defaults(tmp_path) -> None:
    wf = run(tmp_path, PARAMS_WF + ECHO + WITH_DEFAULT)
    assert result(wf, "global") == "hello world"
    assert result(wf, "input") == "hello"
    assert result(wf, "defaulted") == "x=fallback"
    assert in_param(node(wf, "defaulted"), "x") == "fallback"
    assert result(wf, "overridden") == "x=given"
    assert in_param(node(wf, "params"), "greeting") == "hello"


def test_submit_parameter_overrides_argument(tmp_path) -> None:
    wf = run(tmp_path, PARAMS_WF + ECHO + WITH_DEFAULT, params={"greeting": "bonjour"})
    assert result(wf, "global") == "bonjour world"
    assert result(wf, "input") == "bonjour"


def test_enum_violation_at_run_time(tmp_path) -> None:
    """A template input's `enum` is checked when the step's argument is known, i.e. at run time.
    (This pins the project's documented behaviour; Argo itself only checks the enums of the
    workflow's own arguments, see the next test.)"""
    wf = run(tmp_path, steps_wf("enum", """
    - - {name: gen, template: gen}
    - - name: pick
        template: pick
        arguments: {parameters: [{name: color, value: "{{steps.gen.outputs.result}}"}]}
    - - name: never
        template: echo
        arguments: {parameters: [{name: m, value: x}]}
""", extra="""
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo green"]}
  - name: pick
    inputs:
      parameters:
      - {name: color, enum: [red, blue]}
    container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.color}}"]}
"""))
    assert wf["status"]["phase"] in ("Failed", "Error")
    pick = node(wf, "pick")
    assert pick["phase"] in ("Failed", "Error")
    assert "green" in pick["message"]
    assert not [n for n in pods(wf) if n["displayName"] == "pick"]
    assert maybe_node(wf, "never") is None


def test_workflow_argument_enum_violation_fails_at_run_time(tmp_path) -> None:
    """Argo's controller validates the workflow spec again when it starts running it
    (validateArgumentsValues: "spec.arguments.color.value should be present in ... enum list"),
    so a `-p` value outside a workflow argument's enum fails the run as `invalid spec: ...` even
    when nothing checked it at submission."""
    wf = run(tmp_path, """
metadata: {name: wf-enum}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: color, value: red, enum: [red, blue]}
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "echo {{workflow.parameters.color}}"]}
""", params={"color": "green"})
    assert wf["status"]["phase"] == "Failed"
    assert "color" in wf["status"].get("message", "")
    assert not pods(wf)


def test_enum_value_accepted(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("enum-ok", """
    - - name: pick
        template: pick
        arguments: {parameters: [{name: color, value: blue}]}
""", extra="""
  - name: pick
    inputs:
      parameters:
      - {name: color, enum: [red, blue]}
    container: {image: alpine, command: [sh, -c, "echo {{inputs.parameters.color}}"]}
"""))
    assert result(wf, "pick") == "blue"


def test_output_parameter_default_when_file_missing(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("out-default", """
    - - {name: produce, template: produce}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.produce.outputs.parameters.missing}}/{{steps.produce.outputs.parameters.present}}"}]}
""", extra="""
  - name: produce
    container: {image: alpine, command: [sh, -c, "printf here > /tmp/present.txt"]}
    outputs:
      parameters:
      - {name: missing, valueFrom: {path: /tmp/nope.txt, default: the-default}}
      - {name: present, valueFrom: {path: /tmp/present.txt, default: unused}}
"""))
    produce = node(wf, "produce")
    assert produce["phase"] == "Succeeded"
    assert out_param(produce, "missing") == "the-default"
    assert out_param(produce, "present") == "here"
    assert result(wf, "use") == "the-default/here"


def test_output_parameter_missing_file_without_default_errors(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("out-missing", """
    - - {name: produce, template: produce}
""", extra="""
  - name: produce
    container: {image: alpine, command: [sh, -c, "true"]}
    outputs:
      parameters:
      - {name: missing, valueFrom: {path: /tmp/nope.txt}}
"""))
    assert node(wf, "produce")["phase"] in ("Failed", "Error")
    assert wf["status"]["phase"] in ("Failed", "Error")


def test_expression_in_argument(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("expr", """
    - - name: calc
        template: echo
        arguments: {parameters: [{name: m, value: "{{=asInt(workflow.parameters.n) * 2 + 1}}"}]}
      - name: upper
        template: echo
        arguments: {parameters: [{name: m, value: "{{=sprig.upper(workflow.parameters.word)}}"}]}
      - name: cond
        template: echo
        arguments: {parameters: [{name: m, value: "{{=asInt(workflow.parameters.n) > 5 ? 'big' : 'small'}}"}]}
""", args="""
  arguments: {parameters: [{name: n, value: "20"}, {name: word, value: shout}]}
"""))
    assert result(wf, "calc") == "41"
    assert result(wf, "upper") == "SHOUT"
    assert result(wf, "cond") == "big"


def test_global_output_parameter(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("global-out", """
    - - {name: produce, template: produce}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "got {{workflow.outputs.parameters.shared}}"}]}
""", extra="""
  - name: produce
    container: {image: alpine, command: [sh, -c, "printf 'v42' > /tmp/v.txt"]}
    outputs:
      parameters:
      - {name: v, globalName: shared, valueFrom: {path: /tmp/v.txt}}
"""))
    assert {"name": "shared", "value": "v42"} in wf["status"]["outputs"]["parameters"]
    assert result(wf, "use") == "got v42"
    assert wf["status"]["phase"] == "Succeeded"

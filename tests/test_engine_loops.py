"""Loops: `withItems` (scalars and maps), `withParam` (from a previous step's JSON, empty, not a
list), `withSequence`, and the aggregated outputs of a loop."""

from __future__ import annotations

import json

from tests.test_engine_helpers import ECHO, node, nodes, out_param, pods, result, run, steps_wf


def loop_results(wf: dict, step: str) -> list[str]:
    """The results of a loop's iterations, in item order."""
    its = sorted((n for n in pods(wf) if n["displayName"].startswith(step + "(")),
                 key=lambda n: int(n["displayName"][len(step) + 1:].split(":")[0]))
    return [n["outputs"]["result"] for n in its]


# ---- loops -----------------------------------------------------------------------------------

def test_with_items_scalars(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("items", """
    - - name: say
        template: echo
        arguments: {parameters: [{name: m, value: "v={{item}}"}]}
        withItems: [a, b, 3]
"""))
    assert loop_results(wf, "say") == ["v=a", "v=b", "v=3"]
    assert {n["displayName"] for n in pods(wf)} == {"say(0:a)", "say(1:b)", "say(2:3)"}
    assert wf["status"]["phase"] == "Succeeded"


def test_with_items_maps(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("item-maps", """
    - - name: say
        template: echo
        arguments: {parameters: [{name: m, value: "{{item.os}}-{{item.ver}}"}]}
        withItems:
        - {ver: 9, os: debian}
        - {ver: "22.04", os: ubuntu}
"""))
    assert loop_results(wf, "say") == ["debian-9", "ubuntu-22.04"]
    # Argo names a map iteration by its sorted key:value pairs.
    assert {n["displayName"] for n in pods(wf)} == {"say(0:os:debian,ver:9)", "say(1:os:ubuntu,ver:22.04)"}


def test_with_param_from_previous_step_json(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("with-param", """
    - - {name: gen, template: gen}
    - - name: say
        template: echo
        arguments: {parameters: [{name: m, value: "{{item.name}}:{{item.n}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
""", extra="""
  - name: gen
    script:
      image: python
      command: [python]
      source: |
        import json
        print(json.dumps([{"name": "x", "n": 1}, {"name": "y", "n": 2}, {"name": "z", "n": 3}]))
"""))
    assert loop_results(wf, "say") == ["x:1", "y:2", "z:3"]
    assert wf["status"]["phase"] == "Succeeded"


def test_with_param_in_dag(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: dag-param}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: fan
        depends: gen
        template: echo
        arguments: {parameters: [{name: m, value: "it-{{item}}"}]}
        withParam: "{{tasks.gen.outputs.result}}"
      - name: after
        depends: fan
        template: echo
        arguments: {parameters: [{name: m, value: "{{tasks.fan.outputs.result}}"}]}
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo '[\\"p\\", \\"q\\"]'"]}
  - name: echo
    inputs: {parameters: [{name: m}]}
    script: {image: alpine, command: [sh], source: "echo '{{inputs.parameters.m}}'"}
""")
    group = node(wf, "fan")
    assert group["type"] == "TaskGroup"
    assert loop_results(wf, "fan") == ["it-p", "it-q"]
    assert json.loads(result(wf, "after")) == ["it-p", "it-q"]
    assert node(wf, "after")["startedAtUnix"] >= max(n["finishedAtUnix"] for n in pods(wf) if n["displayName"].startswith("fan("))


def test_with_sequence(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("sequence", """
    - - name: count
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {count: "3"}
      - name: down
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {start: "5", end: "3"}
      - name: fmt
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {start: "1", count: "2", format: "%02d"}
      - name: param
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {start: "7", end: "{{workflow.parameters.last}}"}
""", args="""
  arguments: {parameters: [{name: last, value: "8"}]}
"""))
    assert loop_results(wf, "count") == ["0", "1", "2"]
    assert loop_results(wf, "down") == ["5", "4", "3"]
    assert loop_results(wf, "fmt") == ["01", "02"]
    assert loop_results(wf, "param") == ["7", "8"]
    assert wf["status"]["phase"] == "Succeeded"


def test_aggregated_loop_outputs(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("aggregate", """
    - - name: gen
        template: gen
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [red, green, blue]
    - - name: params
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.parameters.color}}"}]}
      - name: results
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.result}}"}]}
""", extra="""
  - name: gen
    inputs: {parameters: [{name: v}]}
    script:
      image: alpine
      command: [sh]
      source: |
        printf '%s' 'c-{{inputs.parameters.v}}' > /tmp/color.txt
        echo 'r-{{inputs.parameters.v}}'
    outputs:
      parameters:
      - {name: color, valueFrom: {path: /tmp/color.txt}}
"""))
    assert json.loads(result(wf, "params")) == ["c-red", "c-green", "c-blue"]
    assert json.loads(result(wf, "results")) == ["r-red", "r-green", "r-blue"]


def test_aggregated_outputs_only_from_succeeded_iterations(tmp_path) -> None:
    """Argo's processAggregateNodeOutputs skips iterations that did not succeed (PR #7517), so a
    failed iteration kept going by continueOn adds nothing to the lists."""
    wf = run(tmp_path, steps_wf("aggregate-ok-only", """
    - - name: gen
        template: gen
        continueOn: {failed: true}
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [good, bad, fine]
    - - name: results
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.result}}"}]}
      - name: params
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.parameters.p}}"}]}
""", extra="""
  - name: gen
    inputs: {parameters: [{name: v}]}
    script:
      image: alpine
      command: [sh]
      source: |
        printf 'p-{{inputs.parameters.v}}' > /tmp/p.txt
        echo 'r-{{inputs.parameters.v}}'
        [ '{{inputs.parameters.v}}' != bad ]
    outputs:
      parameters:
      - {name: p, valueFrom: {path: /tmp/p.txt}}
"""))
    assert node(wf, "gen(1:bad)")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert json.loads(result(wf, "results")) == ["r-good", "r-fine"]
    assert json.loads(result(wf, "params")) == ["p-good", "p-fine"]


def test_aggregated_parameter_of_json_objects_is_a_json_list_of_objects(tmp_path) -> None:
    """Argo's aggregatedJSONValueList: when every value is a JSON object or list, the aggregate
    holds them as JSON (not as escaped strings)."""
    wf = run(tmp_path, steps_wf("aggregate-param-maps", """
    - - name: gen
        template: gen
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [a, b]
    - - name: params
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.parameters.obj}}"}]}
""", extra="""
  - name: gen
    inputs: {parameters: [{name: v}]}
    container:
      image: alpine
      command: [sh, -c, "printf '{\\"k\\": \\"{{inputs.parameters.v}}\\"}' > /tmp/o.json"]
    outputs:
      parameters:
      - {name: obj, valueFrom: {path: /tmp/o.json}}
"""))
    assert json.loads(out_param(node(wf, "gen(0:a)"), "obj")) == {"k": "a"}
    assert json.loads(result(wf, "params")) == [{"k": "a"}, {"k": "b"}]


def test_aggregated_parameter_of_scalars_is_a_list_of_strings(tmp_path) -> None:
    """Argo's aggregatedJSONValueList keeps parsed JSON only when every value is a JSON object or
    list; numbers (or any other scalar) stay strings: ["1","2"], not [1,2]."""
    wf = run(tmp_path, steps_wf("aggregate-param-scalars", """
    - - name: gen
        template: gen
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: ["1", "2"]
    - - name: params
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.parameters.n}}"}]}
      - name: mixed
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.parameters.j}}"}]}
""", extra="""
  - name: gen
    inputs: {parameters: [{name: v}]}
    container:
      image: alpine
      command: [sh, -c, "printf '{{inputs.parameters.v}}' > /tmp/n.txt; if [ {{inputs.parameters.v}} = 1 ]; then printf '[1]' > /tmp/j.txt; else printf 2 > /tmp/j.txt; fi"]
    outputs:
      parameters:
      - {name: n, valueFrom: {path: /tmp/n.txt}}
      - {name: j, valueFrom: {path: /tmp/j.txt}}
"""))
    assert json.loads(result(wf, "params")) == ["1", "2"]
    assert json.loads(result(wf, "mixed")) == ["[1]", "2"]


def test_aggregated_result_decodes_json_objects(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("aggregate-maps", """
    - - name: gen
        template: gen
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [a, b]
    - - name: results
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gen.outputs.result}}"}]}
""", extra="""
  - name: gen
    inputs: {parameters: [{name: v}]}
    script:
      image: python
      command: [python]
      source: |
        import json
        print(json.dumps({"k": "{{inputs.parameters.v}}"}))
"""))
    assert json.loads(result(wf, "results")) == [{"k": "a"}, {"k": "b"}]


def test_empty_with_param_is_skipped(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("empty-param", """
    - - {name: gen, template: gen}
    - - name: say
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
    - - name: after
        template: echo
        arguments: {parameters: [{name: m, value: done}]}
""", extra="""
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo '[]'"]}
"""))
    assert not [n for n in pods(wf) if n["displayName"].startswith("say(")]
    say = node(wf, "say")
    assert say["phase"] == "Skipped"
    assert result(wf, "after") == "done"
    assert wf["status"]["phase"] == "Succeeded"


def test_with_param_not_a_json_list_fails_in_steps(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("bad-param", """
    - - {name: gen, template: gen}
    - - name: consume-it
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
""", extra="""
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo hello world"]}
"""))
    assert wf["status"]["phase"] in ("Failed", "Error")
    message = wf["status"]["message"]
    assert "consume-it" in message
    assert "JSON list" in message
    assert not [n for n in pods(wf) if n["displayName"].startswith("consume-it(")]


def test_with_param_not_a_json_list_fails_in_dag(tmp_path) -> None:
    wf = run(tmp_path, """
metadata: {name: bad-param-dag}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: fan-out
        depends: gen
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "{{tasks.gen.outputs.result}}"
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo '{\\"not\\": \\"a list\\"}'"]}
""" + ECHO)
    assert wf["status"]["phase"] in ("Failed", "Error")
    message = wf["status"]["message"]
    assert "fan-out" in message
    assert "JSON list" in message


def test_loop_nodes_are_children_of_the_step_group(tmp_path) -> None:
    wf = run(tmp_path, steps_wf("loop-tree", """
    - - name: say
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withItems: [a, b]
"""))
    group = node(wf, "[0]")
    assert group["type"] == "StepGroup"
    kids = {wf["status"]["nodes"][c]["displayName"] for c in group["children"]}
    assert kids == {"say(0:a)", "say(1:b)"}
    assert len(nodes(wf)) == 4

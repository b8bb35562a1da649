"""`containerSet`: the containers of one step share a sandbox and its volumes, start when their
dependencies are done, fail the step on the first failure, and `main` gives outputs.result."""

from __future__ import annotations

import textwrap

import pytest

from reconciler.spec import load_text, validate_documents
from reconciler.spec.containerset import as_container, waves
from tests.test_engine_helpers import node, run

WF = """
metadata: {name: cs}
spec:
  entrypoint: main
  templates:
  - name: main
    volumes: [{name: workspace, emptyDir: {}}]
    containerSet:
      volumeMounts: [{name: workspace, mountPath: /workspace}]
      containers:
      - {name: a, image: alpine, command: [sh, -c, "echo a >> /tmp/message"]}
      - {name: b, image: alpine, command: [sh, -c, "sleep 0.2; echo b >> /tmp/message"]}
      - name: main
        image: alpine
        command: [sh, -c, "echo main >> /tmp/message; sort /tmp/message | tr '\\\\n' ' '"]
        dependencies: [a, b]
    outputs:
      parameters: [{name: message, valueFrom: {path: /tmp/message}}]
"""


def test_containers_share_a_filesystem_and_main_runs_after_its_dependencies(tmp_path) -> None:
    wf = run(tmp_path, WF)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    main = node(wf, "cs")
    lines = main["outputs"]["parameters"][0]["value"].splitlines()
    assert sorted(lines[:2]) == ["a", "b"] and lines[2] == "main"  # main only after both
    assert main["outputs"]["result"].strip() == "a b main"  # only main writes stdout


def test_a_failing_container_fails_the_step_and_its_dependants_never_start(tmp_path) -> None:
    text = WF.replace('"echo a >> /tmp/message"', '"exit 3"')
    wf = run(tmp_path, text)
    main = node(wf, "cs")
    assert main["phase"] == "Failed" and main["message"] == "Error (exit code 3)"
    assert main["outputs"]["parameters"][0]["value"].splitlines() == ["b"]  # main never ran


def test_retry_strategy_of_the_set_retries_a_container_in_place(tmp_path) -> None:
    flaky = ('"if [ -e /tmp/tried ]; then echo a >> /tmp/message; '
             'else touch /tmp/tried; exit 1; fi"')
    text = WF.replace('"echo a >> /tmp/message"', flaky).replace(
        "      volumeMounts: [{name: workspace", "      retryStrategy: {retries: 1, duration: 10ms}\n"
        "      volumeMounts: [{name: workspace")
    wf = run(tmp_path, text)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")


def test_waves_and_lint_errors() -> None:
    names = [[c["name"] for c in w] for w in waves([{"name": "c", "dependencies": ["a", "b"]}, {"name": "a"},
                                                     {"name": "b", "dependencies": ["a"]}])]
    assert names == [["a"], ["b"], ["c"]]
    doc = textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {name: bad}
    spec:
      entrypoint: m
      templates:
      - name: m
        containerSet:
          containers:
          - {name: a, image: x, command: ["true"], dependencies: [b]}
          - {name: b, image: x, command: ["true"], dependencies: [a]}
    """)
    messages = [p.message for p in validate_documents(load_text(doc, "bad.yaml"))]
    assert messages == ["containerSet: dependency cycle among a, b"]
    with pytest.raises(ValueError, match="unknown dependencies"):
        as_container({"containers": [{"name": "a", "command": ["true"], "dependencies": ["z"]}]})

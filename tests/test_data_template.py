"""`data` templates and key-only artifacts on the local repository: list a prefix, transform the list
with expressions (Argo's workflow/data/data.go), and feed each key back as an input artifact."""

from __future__ import annotations

import json

import pytest

from reconciler.artifacts import LocalArtifactRepository
from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import node, nodes, run

WF = """
metadata: {name: dt}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: list, template: list}
    - - name: read
        template: read
        withParam: "{{steps.list.outputs.result}}"
        arguments: {artifacts: [{name: file, s3: {key: "{{item}}"}}]}
  - name: list
    data:
      source: {artifactPaths: {name: logs, s3: {key: runs}}}
      transformation:
      - expression: 'filter(data, {# endsWith "main.log"})'
      - expression: 'map(data, {# })'
  - name: read
    inputs: {artifacts: [{name: file, path: /tmp/file}]}
    container: {image: alpine, command: [cat, /tmp/file]}
"""


def _seed(tmp_path) -> None:
    repo = LocalArtifactRepository(tmp_path / "art")
    for key, text in (("default/runs/a/main.log", "A"), ("default/runs/b/main.log", "B"),
                      ("default/runs/b/other.txt", "x"), ("other-ns/runs/c/main.log", "secret")):
        repo.save_bytes(text.encode(), key)


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "processes"])
def test_data_lists_transforms_and_feeds_keys_back(tmp_path, in_process: bool) -> None:
    _seed(tmp_path)
    wf = run(tmp_path, WF, executor=shell_executor() if in_process else None)
    assert wf["status"]["phase"] == "Succeeded", [(n["displayName"], n.get("message")) for n in nodes(wf)]
    assert json.loads(node(wf, "list")["outputs"]["result"]) == ["runs/a/main.log", "runs/b/main.log"]
    reads = sorted(n["outputs"]["result"] for n in nodes(wf) if n.get("templateName") == "read" and n["type"] == "Pod")
    assert reads == ["A", "B"]  # the other namespace's file was never listed or read


def test_a_key_cannot_leave_the_namespace(tmp_path) -> None:
    _seed(tmp_path)
    text = WF.replace("s3: {key: runs}", "s3: {key: ../other-ns/runs}")
    wf = run(tmp_path, text, executor=shell_executor())
    assert wf["status"]["phase"] in ("Error", "Failed")
    assert "secret" not in json.dumps(wf)
    # Refused by the one path helper (reconciler/paths.py) every artifact key goes through.
    assert "invalid artifact key 'default/../other-ns/runs': '..' cannot be a file name" in node(wf, "list")["message"]


def test_a_bad_transformation_errors_the_step(tmp_path) -> None:
    _seed(tmp_path)
    wf = run(tmp_path, WF.replace('map(data, {# })', 'nosuch(data)'), executor=shell_executor())
    assert node(wf, "list")["phase"] == "Error"
    assert node(wf, "list")["message"].startswith("error processing data step 1:")

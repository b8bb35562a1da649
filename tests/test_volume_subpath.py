"""volumeMount subPath / subPathExpr: the mount is that sub-directory of the volume (Kubernetes'
meaning, $(VAR) from the container's env); a sub-path that leaves the volume is the step's error."""

from __future__ import annotations

from tests.test_engine_helpers import node, run

WF = """
metadata: {name: sub}
spec:
  entrypoint: main
  volumes: [{name: v, emptyDir: {}}]
  templates:
  - name: main
    steps:
    - - {name: write, template: write}
    - - {name: read, template: read}
  - name: write
    container:
      image: alpine
      command: [sh, -c, "echo hi > /mnt/f"]
      env: [{name: DIR, value: team-a}]
      volumeMounts: [{name: v, mountPath: /mnt, subPathExpr: "$(DIR)/in"}]
  - name: read
    container:
      image: alpine
      command: [cat, /whole/team-a/in/f]
      volumeMounts: [{name: v, mountPath: /whole}]
"""


def test_sub_path_expr_mounts_the_expanded_sub_directory(tmp_path) -> None:
    wf = run(tmp_path, WF)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "read")["outputs"]["result"] == "hi"
    assert (tmp_path / "volumes" / "default" / "sub" / "v" / "team-a" / "in" / "f").read_text() == "hi\n"


def test_a_sub_path_that_climbs_out_is_the_steps_error_and_nothing_is_written(tmp_path) -> None:
    wf = run(tmp_path, WF.replace('subPathExpr: "$(DIR)/in"', "subPath: ../../escape"))
    write = node(wf, "write")
    assert write["phase"] == "Error" and "must be a relative path inside the volume" in write["message"]
    assert not (tmp_path / "volumes" / "default" / "escape").exists()

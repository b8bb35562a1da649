"""volumeClaimGC and artifactGC on this machine: what a finished workflow lets go of (runner/gc.py)."""

from __future__ import annotations

import pytest

from reconciler.artifacts import LocalArtifactRepository
from tests.test_engine_helpers import node, run

CLAIM_WF = """
metadata: {name: claims}
spec:
  entrypoint: main
  %s
  volumeClaimTemplates:
  - metadata: {name: work}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  templates:
  - name: main
    container:
      image: alpine
      command: [sh, -c, "echo hi > /work/f; exit %d"]
      volumeMounts: [{name: work, mountPath: /work}]
"""


@pytest.mark.parametrize("gc, code, kept", [
    ("", 0, False),                                               # default OnWorkflowSuccess, succeeded
    ("", 1, True),                                                # default, failed: kept for a look
    ("volumeClaimGC: {strategy: OnWorkflowCompletion}", 1, False),  # whatever the phase
])
def test_volume_claim_directories_follow_the_strategy(tmp_path, gc: str, code: int, kept: bool) -> None:
    wf = run(tmp_path, CLAIM_WF % (gc, code))
    assert wf["status"]["phase"] == ("Succeeded" if code == 0 else "Failed")
    assert (tmp_path / "volumes" / "default" / "claims" / "work" / "f").exists() is kept


ART_WF = """
metadata: {name: arts}
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowCompletion}
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "echo a > /tmp/a; echo b > /tmp/b"]}
    outputs:
      artifacts:
      - {name: gone, path: /tmp/a, archive: {none: {}}}
      - {name: kept, path: /tmp/b, archive: {none: {}}, artifactGC: {strategy: OnWorkflowDeletion}}
"""


def test_artifacts_are_collected_on_completion_unless_their_own_strategy_says_otherwise(tmp_path) -> None:
    wf = run(tmp_path, ART_WF)
    assert wf["status"]["phase"] == "Succeeded"
    repo = LocalArtifactRepository(tmp_path / "art")
    keys = {a["name"]: a["key"] for a in node(wf, "arts")["outputs"]["artifacts"]}
    assert not repo.path(keys["gone"]).exists()
    assert repo.path(keys["kept"]).read_text() == "b\n"

"""archiveLogs / archiveLocation.archiveLogs: a step's log saved as its output artifact main-logs in
the local repository (Argo's SaveLogs, with IsArchiveLogs' precedence: template over workflow)."""

from __future__ import annotations

import pytest

from reconciler.artifacts import LocalArtifactRepository
from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import node, run

WF = """
metadata: {name: logs}
spec:
  entrypoint: main
  archiveLogs: true
  templates:
  - name: main
    steps:
    - - {name: kept, template: say}
      - {name: not-kept, template: quiet}
  - name: say
    container: {image: alpine, command: [echo, hello log]}
  - name: quiet
    archiveLocation: {archiveLogs: false}
    container: {image: alpine, command: [echo, unsaved]}
"""


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "processes"])
def test_logs_are_archived_as_main_logs_unless_the_template_says_no(tmp_path, in_process: bool) -> None:
    wf = run(tmp_path, WF, executor=shell_executor() if in_process else None)
    assert wf["status"]["phase"] == "Succeeded"
    (art,) = node(wf, "kept")["outputs"]["artifacts"]
    assert art["name"] == "main-logs" and art["key"] == f"default/logs/{node(wf, 'kept')['id']}/main.log"
    saved = LocalArtifactRepository(tmp_path / "art").path(art["key"])
    assert saved.read_text().startswith("hello log")
    assert "artifacts" not in (node(wf, "not-kept").get("outputs") or {})

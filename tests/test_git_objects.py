"""Objects git manages and objects a person manages, as a user meets them through the real CLI: `apply -n`
resolving references where the objects go, `apply`/`delete` refusing git-managed objects unless --force,
adoption of an object created by hand, `template get|delete`, `cron create|delete`, and a cron suspension
that survives sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli
from .gitops_repo import cron, make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")

GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greet}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [echo, hi]}
"""

USES_GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      steps:
      - - name: a
          templateRef: {name: greet, template: main}
"""

SUBMIT_GREET = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: greet-}
spec:
  workflowTemplateRef: {name: greet}
"""


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_apply_and_submit_with_n_resolve_template_refs_in_that_namespace(home, tmp_path):
    greet, nightly = write(tmp_path / "greet.yaml", GREET), write(tmp_path / "nightly.yaml", USES_GREET)
    run_cli(home, "apply", "-n", "team", greet, check=True)
    applied = run_cli(home, "apply", "-n", "team", nightly)
    assert (applied.returncode, applied.stdout) == (0, "cronworkflow/nightly created\n"), applied.stderr
    submitted = run_cli(home, "submit", "-n", "team", write(tmp_path / "wf.yaml", SUBMIT_GREET), "-o", "name")
    assert submitted.returncode == 0 and submitted.stdout.startswith("greet-"), submitted.stderr
    # elsewhere the template does not exist: still an error naming file and line
    other = run_cli(home, "apply", "-n", "other", nightly)
    assert other.returncode == 2 and f"{nightly}:12: " in other.stderr and "unknown WorkflowTemplate greet" in \
        other.stderr
    assert "nightly" not in run_cli(home, "cron", "list", "-n", "other", "-o", "name").stdout

"""A repository's own policies and opting out of the defaults, through a real sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.store import open_store
from reconciler.sync import Reconciler

from .gitops_repo import CONFIG, make_remote, template

pytestmark = pytest.mark.xdist_group("gitops")

TEAM_LABEL = """\
apiVersion: reconciler.io/v1
kind: Policy
metadata: {name: team-label}
spec:
  action: deny
  scope: {kinds: [WorkflowTemplate], environments: [qa]}
  target: object
  message: set metadata.labels.team
  schema: {required: [metadata], properties: {metadata: {required: [labels]}}}
"""


def run(tmp_path: Path, config: str, files: dict[str, str]) -> dict:
    remote = make_remote(tmp_path / "git", {"reconciler.yaml": config, **files})
    with open_store(":memory:") as store:
        rec = Reconciler(store, str(remote.bare), tmp_path / "home")
        return {r.environment: r for r in rec.run_pass()}


def test_repository_policy_applies_in_its_scope(tmp_path):
    config = CONFIG.replace("environments:", "policies:\n  files: [checks]\nenvironments:")
    res = run(tmp_path, config, {"checks/team.yaml": TEAM_LABEL, "workflows/etl.yaml": template("etl")})
    assert res["dev"].phase == "Synced" and res["prod"].phase == "Synced"
    assert res["qa"].reason == "PolicyDenied"
    assert "workflows/etl.yaml:3: metadata: policy team-label (deny): set metadata.labels.team" in res["qa"].message


def test_defaults_can_be_disabled_by_name_or_altogether(tmp_path):
    loose = template("loose", image="python", limits=False)
    config = CONFIG.replace("environments:", "policies:\n  disable: [image-tag-pinned]\nenvironments:")
    res = run(tmp_path / "a", config, {"workflows/loose.yaml": loose})
    assert res["prod"].failed and "resource-limits-required" in res["prod"].message
    assert "image-tag-pinned" not in res["prod"].message
    config = CONFIG.replace("environments:", "policies:\n  defaults: false\nenvironments:")
    res = run(tmp_path / "b", config, {"workflows/loose.yaml": loose})
    assert res["prod"].phase == "Synced", res["prod"].message


def test_namespace_is_enforced_even_without_the_default_policies(tmp_path):
    config = CONFIG.replace("environments:", "policies:\n  defaults: false\nenvironments:")
    elsewhere = template("t").replace("  name: t\n", "  name: t\n  namespace: team-prod\n")
    res = run(tmp_path, config, {"workflows/t.yaml": elsewhere})
    assert res["dev"].failed and "environment dev deploys to namespace team-dev, not team-prod" in res["dev"].message
    assert res["prod"].phase == "Synced"


def test_missing_policy_file_fails_the_environment(tmp_path):
    config = CONFIG.replace("environments:", "policies:\n  files: [nowhere]\nenvironments:")
    res = run(tmp_path, config, {"workflows/etl.yaml": template("etl")})
    assert res["dev"].failed and "policy file or folder nowhere not found" in res["dev"].message

"""The default policies: shipped with the package, equal to the project's policies/ folder, and each rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.policy import default_policies, evaluate, parse_policies
from reconciler.spec import SpecError, load_text

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "reconciler" / "policy" / "defaults"


def test_shipped_defaults_equal_the_top_level_policies_folder():
    top = {p.name: p.read_text() for p in (REPO / "policies").glob("*.yaml")}
    shipped = {p.name: p.read_text() for p in SHIPPED.glob("*.yaml")}
    assert top and top == shipped, "copy policies/*.yaml to reconciler/policy/defaults/"
    assert {p.name for p in default_policies()} == {
        "image-tag-pinned", "resource-limits-required", "no-host-path", "no-privileged", "own-namespace",
        "no-plaintext-secrets"}


def container_doc(container: str, *, extra_spec: str = "", meta: str = "") -> list:
    text = textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata:
          name: t
        {meta}spec:
        {extra_spec}  templates:
          - name: main
            container:
        {container}""").format(
        meta=meta, extra_spec=extra_spec,
        container=textwrap.indent(textwrap.dedent(container), "      "))
    return load_text(text, "t.yaml")


def problems(docs, env="prod", production=True):
    return evaluate(default_policies(), docs, environment=env, namespace=f"ns-{env}", production=production)


LIMITS = "resources: {limits: {cpu: 100m, memory: 64Mi}}\n"


@pytest.mark.parametrize("image, ok", [
    ("python:3.12-slim", True),
    ("registry.local:5000/team/python:3.12", True),
    ("python@sha256:" + "a" * 64, True),
    ("{{inputs.parameters.image}}", True),
    ("python", False),
    ("python:latest", False),
    ("registry.local:5000/team/python", False),
    ("registry.local:5000/team/python:latest", False),
])
def test_image_must_be_pinned_in_production(image, ok):
    found = problems(container_doc(f"image: '{image}'\n{LIMITS}"))
    assert (not found) == ok, [str(p) for p in found]
    if not ok:
        assert found[0].is_error and found[0].field == "spec.templates[0].container.image" and found[0].line == 9
        dev = problems(container_doc(f"image: '{image}'\n{LIMITS}"), env="dev", production=False)
        assert [p.severity for p in dev] == ["warning"]


def test_resource_limits_required_in_production_only():
    docs = container_doc("image: python:3.12\nresources: {limits: {cpu: '1'}}\n")
    found = problems(docs)
    assert [p.message.split(":")[0] for p in found] == ["policy resource-limits-required (deny)"]
    assert found[0].field == "spec.templates[0].container.resources.limits"
    assert problems(docs, env="dev", production=False) == []


def test_hostpath_privileged_and_secrets_are_denied_everywhere():
    docs = container_doc(
        "image: python:3.12\n" + LIMITS +
        "securityContext: {privileged: true}\n"
        "env:\n- {name: DB_PASSWORD, value: hunter2}\n- {name: API_TOKEN, value: '{{workflow.parameters.token}}'}\n"
        "- {name: NOTE, value: 'key AKIAABCDEFGHIJKLMNOP'}\n- {name: LEVEL, value: debug}\n",
        extra_spec="  volumes: [{name: host, hostPath: {path: /}}, {name: scratch, emptyDir: {}}]\n")
    found = {(p.message.split()[1], p.field) for p in problems(docs, env="dev", production=False)}
    assert found == {
        ("no-host-path", "spec.volumes[0]"),
        ("no-privileged", "spec.templates[0].container.securityContext.privileged"),
        ("no-plaintext-secrets", "spec.templates[0].container.env[0].value"),
        ("no-plaintext-secrets", "spec.templates[0].container.env[2].value"),
    }


def test_containers_are_found_in_cron_workflow_specs_and_sidecars():
    text = textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: CronWorkflow
        metadata: {name: c}
        spec:
          schedule: "* * * * *"
          workflowSpec:
            templates:
            - name: main
              script: {image: python, source: x}
              sidecars: [{name: db, image: "postgres:16", securityContext: {privileged: true}}]
        """)
    found = {(p.message.split()[1], p.field) for p in problems(load_text(text, "c.yaml"))}
    assert ("image-tag-pinned", "spec.workflowSpec.templates[0].script.image") in found
    assert ("no-privileged", "spec.workflowSpec.templates[0].sidecars[0].securityContext.privileged") in found


def test_namespace_must_be_the_environments():
    docs = container_doc("image: python:3.12\n" + LIMITS, meta="  namespace: ns-prod\n")
    assert problems(docs) == []
    found = problems(docs, env="dev", production=False)
    assert [str(p) for p in found] == [
        "t.yaml:5: metadata.namespace: policy own-namespace (deny): objects of this environment must live in "
        "namespace ns-dev"]


def test_repository_policy_files_are_validated_with_line_numbers():
    bad = textwrap.dedent("""\
        apiVersion: reconciler.io/v1
        kind: Policy
        metadata: {name: p}
        spec:
          action: block
          target: containers
          message: m
          schema: {type: 12}
        """)
    with pytest.raises(SpecError) as info:
        parse_policies(bad, "p.yaml")
    assert "p.yaml:5: spec.action: invalid policy" in str(info.value)
    good = bad.replace("block", "warn")
    with pytest.raises(SpecError) as info:
        parse_policies(good, "p.yaml")
    assert "p.yaml:8: spec.schema.type: invalid JSON Schema" in str(info.value)

"""Validation (lint): the schemas, the semantic checks, lint_paths and submit-time checks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reconciler.spec import Problem, check_submission, lint_paths, load_file, load_text, validate_documents
from reconciler.spec.dag import DependsSyntaxError, depends_task_names
from reconciler.spec.validation import SCHEMA_FILES, schema_for
from tests.conftest import CORPUS, corpus_files

SCHEMAS = Path(__file__).resolve().parents[1] / "reconciler/spec/schemas"


def no_templates(kind: str, namespace: str | None, name: str) -> None:
    return None


def validate(text: str, **kwargs) -> list[Problem]:
    return validate_documents(load_text(textwrap.dedent(text), "wf.yaml"), **kwargs)


def errors(text: str, **kwargs) -> list[tuple[int, str, str]]:
    return [(p.line, p.field, p.message) for p in validate(text, **kwargs) if p.severity == "error"]


def workflow(*templates: str, spec_extra: str = "", entrypoint: str = "main") -> str:
    """A Workflow whose spec.templates is the given YAML blocks (each dedented, then indented by 2)."""
    block = "\n".join(textwrap.dedent(t).strip("\n") for t in templates)
    body = textwrap.indent(block, "  ")
    extra = textwrap.indent(textwrap.dedent(spec_extra).strip("\n"), "  ")
    return (
        "apiVersion: argoproj.io/v1alpha1\n"          # line 1
        "kind: Workflow\n"                            # line 2
        "metadata:\n  generateName: test-\n"          # lines 3-4
        f"spec:\n  entrypoint: {entrypoint}\n"        # lines 5-6
        + (extra + "\n" if extra else "")
        + "  templates:\n" + body + "\n"
    )


ECHO = """
- name: echo
  container:
    image: busybox
    command: [echo, hi]
"""


# --- the corpus ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", corpus_files())
def test_every_corpus_file_validates_without_errors(name):
    problems = validate_documents(load_file(CORPUS / name))
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_whole_corpus_lints_clean_with_references_resolved_in_the_batch():
    # With a lookup that knows nothing, every templateRef must be satisfied by the lint batch itself.
    problems = lint_paths([str(CORPUS)], template_lookup=no_templates)
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_corpus_references_are_really_checked():
    problems = validate_documents(load_file(CORPUS / "workflow-template/steps.yaml"), template_lookup=no_templates)
    messages = {p.message for p in problems}
    assert "templateRef names unknown WorkflowTemplate workflow-template-print-message" in messages
    assert "templateRef names unknown WorkflowTemplate workflow-template-inner-steps" in messages


def test_corpus_kubernetes_only_fields_warn_on_the_local_executor_only():
    docs = load_file(CORPUS / "default-pdb-support.yaml")
    warnings = [str(p) for p in validate_documents(docs)]
    assert warnings == [
        f"warning: {CORPUS}/default-pdb-support.yaml:8: spec.serviceAccountName: has no effect on the local executor",
        f"warning: {CORPUS}/default-pdb-support.yaml:9: spec.podDisruptionBudget: has no effect on the local executor",
    ]
    assert validate_documents(docs, local_executor=False) == []


# --- schemas -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_schema_files_are_valid_draft_2020_12(path):
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_supported_kind_has_a_schema():
    for kind in SCHEMA_FILES:
        assert schema_for(kind)["properties"]["kind"] == {"const": kind}
    assert schema_for("Deployment") is None


# --- schema errors -------------------------------------------------------------------------

def test_unsupported_field_names_the_path_and_the_line_of_the_key():
    text = workflow("""
        - name: main
          daemon: true
          container:
            image: busybox
        """)
    assert errors(text) == [(9, "spec.templates[0].daemon", "unsupported field spec.templates[0].daemon")]
    assert str(validate(text)[0]) == "wf.yaml:9: spec.templates[0].daemon: unsupported field spec.templates[0].daemon"


def test_unsupported_template_type_is_reported_once():
    text = workflow("""
        - name: main
          resource:
            action: create
        """)
    assert errors(text) == [(9, "spec.templates[0].resource", "unsupported field spec.templates[0].resource")]


def test_unsupported_fields_in_containers_steps_and_artifacts():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              template: echo
              priority: 3
          outputs:
            artifacts:
            - name: out
              s3: {key: x}
        """, ECHO + "  stdin: true\n")
    assert errors(text) == [
        (12, "spec.templates[0].steps[0][0].priority", "unsupported field spec.templates[0].steps[0][0].priority"),
        (16, "spec.templates[0].outputs.artifacts[0].s3", "unsupported field spec.templates[0].outputs.artifacts[0].s3"),
        (21, "spec.templates[1].stdin", "unsupported field spec.templates[1].stdin"),
    ]


def test_wrong_types():
    text = workflow(ECHO, spec_extra="parallelism: two\nsuspend: 'yes'", entrypoint="echo")
    assert errors(text) == [
        (7, "spec.parallelism", "expected integer, got string"),
        (8, "spec.suspend", "expected boolean, got string"),
    ]


def test_int_or_string_fields_accept_both_and_reject_others():
    base = """
        - name: main
          retryStrategy: {limit: %s, retryPolicy: Always}
          container: {image: busybox}
        """
    assert errors(workflow(base % "3")) == []
    assert errors(workflow(base % "'3'")) == []
    assert errors(workflow(base % "true")) == [
        (9, "spec.templates[0].retryStrategy.limit", "expected integer or string, got boolean")]


def test_enums_and_missing_required_fields():
    text = workflow("""
        - container: {command: [echo]}
          retryStrategy: {retryPolicy: Sometimes}
        """, entrypoint="echo")
    assert errors(text) == [
        (6, "spec.entrypoint", "unknown template echo"),
        (8, "spec.templates[0].container.image", "missing required field spec.templates[0].container.image"),
        (8, "spec.templates[0].name", "missing required field spec.templates[0].name"),
        (9, "spec.templates[0].retryStrategy.retryPolicy",
         "expected one of 'Always', 'OnFailure', 'OnError', 'OnTransientError', got 'Sometimes'"),
    ]


def test_exactly_one_template_type():
    text = workflow("""
        - name: main
          container: {image: busybox}
          script: {image: busybox, source: echo}
        - name: empty
          inputs: {}
        """)
    assert errors(text) == [
        (8, "spec.templates[0]",
         "expected exactly one of container, script, dag, steps, suspend, found container, script"),
        (11, "spec.templates[1]", "expected exactly one of container, script, dag, steps, suspend, found none"),
    ]


def test_all_errors_are_reported_sorted_by_line():
    text = workflow("""
        - name: main
          timeout: 30
          container:
            image: busybox
            args: [sleep, 10]
          bogus: 1
        """, spec_extra="onExit: 5")
    assert errors(text) == [
        (7, "spec.onExit", "expected string, got integer"),
        (10, "spec.templates[0].timeout", "expected string, got integer"),
        (13, "spec.templates[0].container.args[1]", "expected string, got integer"),
        (14, "spec.templates[0].bogus", "unsupported field spec.templates[0].bogus"),
    ]


def test_unsupported_kind_and_configmap():
    text = """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: params}
        data: {msg: hello}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        """
    assert errors(text) == [(8, "kind", "unsupported kind Deployment")]


def test_cron_workflow_needs_exactly_one_schedule_field():
    text = """
        apiVersion: argoproj.io/v1alpha1
        kind: CronWorkflow
        metadata: {name: nightly}
        spec:
          concurrencyPolicy: Sometimes
          workflowSpec:
            entrypoint: main
            templates: [{name: main, suspend: {}}]
        """
    assert errors(text) == [
        (5, "spec", "expected exactly one of schedule, schedules, found none"),
        (6, "spec.concurrencyPolicy", "expected one of 'Allow', 'Forbid', 'Replace', got 'Sometimes'"),
    ]


def test_kubernetes_only_fields_warn_and_volumes_do_not():
    text = workflow("""
        - name: main
          nodeSelector: {disk: ssd}
          container:
            image: busybox
            resources: {limits: {cpu: 1}}
            volumeMounts: [{name: work, mountPath: /work}]
        """, spec_extra="volumes: [{name: work, emptyDir: {}}]")
    assert [(p.line, p.field, p.severity) for p in validate(text)] == [
        (10, "spec.templates[0].nodeSelector", "warning"),
        (13, "spec.templates[0].container.resources", "warning"),
    ]
    assert validate(text, local_executor=False) == []


# --- semantic checks -----------------------------------------------------------------------

def test_duplicate_template_names():
    text = workflow(ECHO, ECHO, entrypoint="echo")
    assert errors(text) == [(12, "spec.templates[1].name", "duplicate template name echo")]


def test_unknown_templates_in_entrypoint_steps_hooks_and_on_exit():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              template: missing
              hooks:
                exit: {template: gone}
            - name: b
              template: echo
              onExit: vanished
        """, ECHO, spec_extra="onExit: nowhere", entrypoint="start")
    assert errors(text) == [
        (6, "spec.entrypoint", "unknown template start"),
        (7, "spec.onExit", "unknown template nowhere"),
        (12, "spec.templates[0].steps[0][0].template", "unknown template missing"),
        (14, "spec.templates[0].steps[0][0].hooks.exit.template", "unknown template gone"),
        (17, "spec.templates[0].steps[0][1].onExit", "unknown template vanished"),
    ]


def test_templated_template_names_are_not_checked():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              template: "{{inputs.parameters.which}}"
        """)
    assert errors(text) == []


def test_duplicate_step_names_within_a_template():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              template: echo
          - - name: a
              template: echo
        """, ECHO)
    assert errors(text) == [(12, "spec.templates[0].steps[1][0].name", "duplicate step name a")]


def dag(tasks: str, target: str = "") -> str:
    head = "- name: main\n  dag:\n" + (f"    target: {target}\n" if target else "") + "    tasks:\n"
    return head + textwrap.indent(textwrap.dedent(tasks).strip("\n"), "    ") + "\n" + ECHO


def test_dag_cycle():
    text = workflow(dag("""
        - {name: A, template: echo, depends: "C"}
        - {name: B, template: echo, depends: "A"}
        - {name: C, template: echo, dependencies: [B]}
        """))
    assert errors(text) == [(11, "spec.templates[0].dag.tasks[0].depends", "cycle: A -> C -> B -> A")]


def test_dag_self_dependency_is_a_cycle():
    text = workflow(dag("- {name: A, template: echo, depends: A.Succeeded}"))
    assert errors(text) == [(11, "spec.templates[0].dag.tasks[0].depends", "cycle: A -> A")]


def test_dag_missing_dependency():
    text = workflow(dag("""
        - {name: A, template: echo}
        - {name: B, template: echo, depends: "A && (X.Failed || A.Succeeded)"}
        - name: C
          template: echo
          dependencies: [A, Y]
        """))
    assert errors(text) == [
        (12, "spec.templates[0].dag.tasks[1].depends", "task B depends on unknown task X"),
        (15, "spec.templates[0].dag.tasks[2].dependencies[1]", "task C depends on unknown task Y"),
    ]


@pytest.mark.parametrize("expression, reason", [
    ("A &&", "expression ends where a task name was expected"),
    ("A B", "unexpected 'B' after a complete expression"),
    ("(A || B", "missing ')'"),
    ("A.Done", "unknown task result .Done"),
    ("A & B", "unexpected character '&'"),
    ("&& A", "expected a task name, got '&&'"),
])
def test_dag_malformed_depends(expression, reason):
    text = workflow(dag(f"""
        - {{name: A, template: echo}}
        - {{name: B, template: echo}}
        - {{name: C, template: echo, depends: "{expression}"}}
        """))
    ((line, field, message),) = errors(text)
    assert (line, field) == (13, "spec.templates[0].dag.tasks[2].depends")
    assert message.startswith(f"malformed depends expression {expression!r}: {reason}")


def test_depends_parser_accepts_the_enhanced_syntax():
    assert depends_task_names("A && (C.Succeeded || C.Failed)") == ["A", "C", "C"]
    assert depends_task_names("!B.AnySucceeded || should-execute_2.AllFailed") == ["B", "should-execute_2"]
    with pytest.raises(DependsSyntaxError):
        depends_task_names("((((A)))")


def test_dag_duplicate_tasks_and_unknown_target():
    text = workflow(dag("""
        - {name: A, template: echo}
        - {name: A, template: echo}
        """, target="A Z"))
    assert errors(text) == [
        (10, "spec.templates[0].dag.target", "target names unknown task Z"),
        (13, "spec.templates[0].dag.tasks[1].name", "duplicate task name A"),
    ]
    assert errors(workflow(dag("- {name: A, template: echo}", target='"{{workflow.parameters.t}}"'))) == []


def test_inline_templates_are_checked_too():
    text = workflow("""
        - name: main
          dag:
            tasks:
            - name: a
              inline:
                steps:
                - - {name: s, template: nope}
        """)
    assert errors(text) == [(14, "spec.templates[0].dag.tasks[0].inline.steps[0][0].template", "unknown template nope")]


def test_volume_mount_must_name_a_declared_volume():
    mounting = """
        - name: main
          container:
            image: busybox
            volumeMounts: [{name: workdir, mountPath: /mnt/vol}]
        """
    assert errors(workflow(mounting)) == [
        (11, "spec.templates[0].container.volumeMounts[0].name", "volumeMount names undeclared volume workdir")]
    claim = "volumeClaimTemplates:\n- metadata: {name: workdir}\n  spec: {accessModes: [ReadWriteOnce]}"
    assert errors(workflow(mounting, spec_extra=claim)) == []


def test_workflow_needs_templates_or_a_workflow_template_ref():
    text = """
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {generateName: x-}
        spec:
          entrypoint: main
        """
    assert errors(text) == [(5, "spec.templates", "has neither templates nor workflowTemplateRef")]


LIBRARY = """
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: lib}
    spec:
      templates:
      - name: print
        container: {image: busybox}
    """


def test_template_ref_to_nothing():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              templateRef: {name: nowhere, template: print}
            - name: b
              templateRef: {name: lib, template: print, clusterScope: true}
        """)
    expected = [
        (11, "spec.templates[0].steps[0][0].templateRef.name", "templateRef names unknown WorkflowTemplate nowhere"),
        (13, "spec.templates[0].steps[0][1].templateRef.name",
         "templateRef names unknown ClusterWorkflowTemplate lib"),
    ]
    assert errors(text, template_lookup=no_templates) == expected
    assert errors(text) == []  # nobody to ask, so not checked


def test_template_ref_resolved_from_the_batch_and_the_lookup():
    text = workflow("""
        - name: main
          steps:
          - - name: a
              templateRef: {name: lib, template: print}
            - name: b
              templateRef: {name: lib, template: nope}
        """)
    expected = [(13, "spec.templates[0].steps[0][1].templateRef.template", "WorkflowTemplate lib has no template nope")]
    docs = load_text(text, "wf.yaml") + load_text(textwrap.dedent(LIBRARY), "lib.yaml")
    assert [(p.line, p.field, p.message) for p in validate_documents(docs, template_lookup=no_templates)] == expected

    calls = []

    def lookup(kind, namespace, name):
        calls.append((kind, namespace, name))
        return load_text(textwrap.dedent(LIBRARY), "lib.yaml")[0].obj if name == "lib" else None

    assert errors(text, template_lookup=lookup) == expected
    assert ("WorkflowTemplate", None, "lib") in calls


def test_workflow_template_ref_must_exist_when_a_lookup_is_given():
    text = """
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {generateName: x-}
        spec:
          workflowTemplateRef: {name: ghost}
        """
    assert errors(text, template_lookup=no_templates) == [
        (6, "spec.workflowTemplateRef.name", "workflowTemplateRef names unknown WorkflowTemplate ghost")]
    assert errors(text) == []


def test_duplicate_objects_in_one_batch():
    docs = load_text(textwrap.dedent(LIBRARY), "a.yaml") + load_text(textwrap.dedent(LIBRARY), "b.yaml")
    (problem,) = validate_documents(docs)
    assert str(problem) == "b.yaml:4: metadata.name: duplicate WorkflowTemplate lib (first defined at a.yaml:4)"


# --- lint_paths ----------------------------------------------------------------------------

def test_lint_paths_reports_every_problem_of_every_file(tmp_path):
    (tmp_path / "good.yaml").write_text(textwrap.dedent(LIBRARY))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "broken.yml").write_text("apiVersion: v1\nkind: ConfigMap\ndata: [a\n")
    (tmp_path / "nested" / "bad.yaml").write_text(workflow("- name: main\n  daemon: true\n  suspend: {}\n")
                                                   + "  parallelism: x\n")
    (tmp_path / "notes.txt").write_text("not yaml: [")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yaml").write_text("on: push\n")
    problems = lint_paths([str(tmp_path), str(tmp_path / "missing.yaml")])
    assert [str(p) for p in problems[:3]] == [
        f"{tmp_path}/missing.yaml:1: (file): no such file or directory",
        f"{tmp_path}/nested/bad.yaml:9: spec.templates[0].daemon: unsupported field spec.templates[0].daemon",
        f"{tmp_path}/nested/bad.yaml:11: spec.parallelism: expected integer, got string",
    ]
    # The wording of YAML syntax errors depends on whether PyYAML uses libyaml.
    (broken,) = problems[3:]
    assert str(broken).startswith(f"{tmp_path}/nested/broken.yml:4: yaml: malformed YAML: ")
    assert "flow sequence" in broken.message


# --- submit-time checks --------------------------------------------------------------------

SUBMITTED = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: x-}
spec:
  entrypoint: main
  arguments:
    parameters:
    - name: who
    - name: mood
      value: happy
      enum: [happy, sad]
    - name: cm
      valueFrom: {configMapKeyRef: {name: params, key: cm}}
  templates:
  - name: main
    inputs:
      parameters: [{name: who}, {name: extra}, {name: opt, default: x}]
    container: {image: busybox}
"""


def test_check_submission_needs_values_for_parameters():
    doc = load_text(SUBMITTED, "s.yaml")[0]
    assert [(p.line, p.message) for p in check_submission(doc, {})] == [
        (8, "workflow parameter who has no value; pass -p who=VALUE"),
        (17, ("input parameter extra of entrypoint template main has no value; "
              "declare it in spec.arguments.parameters or pass -p extra=VALUE")),
    ]
    assert check_submission(doc, {"who": "me", "extra": "1"}) == []
    ((line, message),) = [(p.line, p.message) for p in check_submission(doc, {"who": "me", "extra": "1",
                                                                              "mood": "angry"})]
    assert (line, message) == (9, "value 'angry' of parameter mood is not one of happy, sad")


def test_check_submission_entrypoint_and_workflow_template_ref():
    doc = load_text(SUBMITTED.replace("entrypoint: main", "entrypoint: nope"), "s.yaml")[0]
    assert [p.message for p in check_submission(doc, {"who": "a"})] == ["entrypoint names unknown template nope"]

    library = load_file(CORPUS / "workflow-template/templates.yaml")
    by_name = {d.name: d.obj for d in library}
    ref = load_file(CORPUS / "workflow-template/workflow-template-ref.yaml")[0]
    assert check_submission(ref, {}, template_lookup=lambda kind, ns, name: by_name.get(name)) == []
    assert [p.message for p in check_submission(ref, {}, template_lookup=no_templates)] == [
        "workflowTemplateRef names unknown WorkflowTemplate workflow-template-submittable"]


@pytest.mark.parametrize("name", [n for n in corpus_files() if n.startswith(("cron", "dag-diamond", "loops"))])
def test_corpus_workflows_are_submittable_without_parameters(name):
    for doc in load_file(CORPUS / name):
        assert check_submission(doc, {}) == []


def test_entrypoint_may_come_from_the_referenced_workflow_template():
    workflow_doc = """
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {generateName: x-}
        spec:
          entrypoint: %s
          workflowTemplateRef: {name: lib}
        """
    for entrypoint, expected in (("print", []), ("nope", [(6, "spec.entrypoint", "unknown template nope")])):
        docs = load_text(textwrap.dedent(workflow_doc % entrypoint), "wf.yaml") + load_text(
            textwrap.dedent(LIBRARY), "lib.yaml")
        assert [(p.line, p.field, p.message) for p in validate_documents(docs)] == expected

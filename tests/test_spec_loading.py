"""Loading YAML workflow files: line tracking, scalar types, and every load-time error."""

from __future__ import annotations

import time

import pytest

from reconciler.spec import Document, Problem, SpecError, load_file, load_text
from reconciler.spec.loading import MAX_ALIAS_EXPANSION, format_path
from tests.conftest import CORPUS, corpus_files


def load_problems(text: str, filename: str = "bad.yaml") -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_text(text, filename)
    assert all(p.filename == filename for p in caught.value.problems)
    return caught.value.problems


WORKFLOW = """\
# a comment first
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-
spec:
  entrypoint: main
  arguments:
    parameters:
    - name: count
      value: '3'
  templates:
  - name: main
    steps:
    - - name: loop
        template: echo
        withItems: [1, 2, 3]
  - name: echo
    container:
      image: busybox
      command: [echo, "{{item}}"]
"""


def test_corpus_lists_are_not_empty():
    assert len(corpus_files()) > 50


@pytest.mark.parametrize("name", corpus_files())
def test_every_corpus_file_loads(name):
    docs = load_file(CORPUS / name)
    assert docs
    for doc in docs:
        assert doc.filename == str(CORPUS / name)
        assert isinstance(doc.obj, dict) and doc.kind


def test_plain_objects_with_yaml_types():
    doc = load_text(WORKFLOW, "wf.yaml")[0]
    assert doc.obj["spec"]["arguments"]["parameters"][0]["value"] == "3"
    assert doc.obj["spec"]["templates"][0]["steps"][0][0]["withItems"] == [1, 2, 3]
    assert doc.kind == "Workflow" and doc.index == 0 and doc.filename == "wf.yaml"


def test_timestamps_stay_strings_and_booleans_are_booleans():
    doc = load_text("apiVersion: v1\nkind: ConfigMap\nwhen: 2021-10-12T15:14:04Z\nflag: true\n", "c.yaml")[0]
    assert doc.obj["when"] == "2021-10-12T15:14:04Z"
    assert doc.obj["flag"] is True


def test_line_of_fields_items_and_missing_fields():
    doc = load_text(WORKFLOW, "wf.yaml")[0]
    assert doc.start_line == 2
    assert doc.line_of(("kind",)) == 3
    assert doc.line_of(("spec", "entrypoint")) == 7
    assert doc.line_of(("spec", "templates", 1)) == 18
    assert doc.line_of(("spec", "templates", 0, "steps", 0, 0, "withItems")) == 17
    assert doc.line_of(("spec", "templates", 1, "container", "command", 1)) == 21
    # A field that is not there reports its nearest existing ancestor.
    assert doc.line_of(("spec", "templates", 1, "container", "nope", 3)) == 19
    assert doc.line_of(()) == 2


def test_multi_document_files_keep_index_and_lines():
    text = "apiVersion: v1\nkind: ConfigMap\n---\n---\n# c\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
    docs = load_text(text, "multi.yaml")
    assert [d.index for d in docs] == [0, 2]  # the empty document in between is skipped
    assert docs[1].start_line == 6
    assert docs[1].line_of(("metadata", "name")) == 8


def test_anchors_and_merge_keys_within_limits_are_expanded():
    text = (
        "apiVersion: v1\nkind: ConfigMap\n"
        "base: &base {image: busybox, command: [echo]}\n"
        "a:\n  <<: *base\n  image: alpine\n"
        "b: *base\n"
    )
    obj = load_text(text, "m.yaml")[0].obj
    assert obj["a"] == {"image": "alpine", "command": ["echo"]}
    assert obj["b"] == {"image": "busybox", "command": ["echo"]}
    assert obj["b"] is not obj["base"]  # copies, so one user's change cannot leak into another


def test_malformed_yaml_names_the_line():
    problems = load_problems("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   bad: indent: here\n")
    assert len(problems) == 1
    assert problems[0].line == 5
    assert problems[0].message.startswith("malformed YAML: ")
    assert str(problems[0]).startswith("bad.yaml:5: yaml: malformed YAML")


def test_unclosed_flow_sequence():
    (problem,) = load_problems("apiVersion: v1\nkind: ConfigMap\ndata: [a, b\n")
    assert problem.line == 4 and "malformed YAML" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n", "--- \n...\n"])
def test_empty_file(text):
    (problem,) = load_problems(text, "empty.yaml")
    assert str(problem) == "empty.yaml:1: (document): empty file: no documents"


def test_document_that_is_not_a_mapping():
    (problem,) = load_problems("apiVersion: v1\nkind: ConfigMap\n---\n- a\n- b\n")
    assert problem.line == 4
    assert problem.message == "document is not a mapping (got a list)"


def test_missing_api_version_and_kind_in_every_document():
    problems = load_problems("metadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n")
    assert [(p.line, p.field, p.message) for p in problems] == [
        (1, "apiVersion", "missing apiVersion"),
        (1, "kind", "missing kind"),
        (3, "kind", "missing kind"),
    ]


@pytest.mark.parametrize("kind", ["Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"])
def test_argo_kinds_need_the_argo_api_version(kind):
    (problem,) = load_problems(f"kind: {kind}\napiVersion: argoproj.io/v1beta1\n")
    assert problem.line == 2 and problem.field == "apiVersion"
    assert problem.message == f"expected argoproj.io/v1alpha1 for kind {kind}, got argoproj.io/v1beta1"


def test_other_kinds_load_with_their_own_api_version():
    doc = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\ndata: {a: b}\n", "cm.yaml")[0]
    assert doc.kind == "ConfigMap"


def test_duplicate_keys_are_errors_with_the_line_of_the_second():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {}\n  name: b\n"
    (problem,) = load_problems(text)
    assert (problem.line, problem.field, problem.message) == (6, "metadata.name", "duplicate key 'name'")


BILLION_LAUGHS = "apiVersion: v1\nkind: ConfigMap\n" + "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def test_alias_bomb_is_rejected_quickly():
    started = time.perf_counter()
    (problem,) = load_problems(BILLION_LAUGHS)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert problem.message == f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes"
    assert problem.line == 4  # the first alias


def test_recursive_alias_is_rejected():
    (problem,) = load_problems("apiVersion: v1\nkind: ConfigMap\nloop: &x [*x]\n")
    assert problem.message == "recursive YAML alias" and problem.line == 3


def test_deep_nesting_is_rejected_not_crashing():
    problems = load_problems("apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 300 + "]" * 300 + "\n")
    assert len(problems) == 1 and "nested" in problems[0].message


def test_unknown_yaml_tags_are_errors():
    (problem,) = load_problems("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: !Ref other\n")
    assert (problem.line, problem.field, problem.message) == (4, "data.a", "unsupported YAML tag !Ref")


def test_load_file_keeps_the_file_name(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    docs = load_file(path)
    assert isinstance(docs[0], Document) and docs[0].filename == str(path)
    path.write_text("kind: Workflow\n")
    with pytest.raises(SpecError) as caught:
        load_file(path)
    assert str(caught.value) == f"{path}:1: apiVersion: missing apiVersion"


def test_load_file_errors_for_missing_and_binary_files(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_file(tmp_path / "nope.yaml")
    assert caught.value.problems[0].filename == str(tmp_path / "nope.yaml")
    assert "cannot read file" in caught.value.problems[0].message
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError) as caught:
        load_file(binary)
    assert "not UTF-8" in caught.value.problems[0].message


def test_problem_and_spec_error_formatting():
    error = Problem("a.yaml", 3, "spec.parallelism", "expected integer, got string")
    warning = Problem("a.yaml", 4, "spec.nodeSelector", "has no effect on the local executor", "warning")
    assert str(error) == "a.yaml:3: spec.parallelism: expected integer, got string"
    assert str(warning) == "warning: a.yaml:4: spec.nodeSelector: has no effect on the local executor"
    exc = SpecError([error, warning])
    assert exc.problems == [error, warning]
    assert str(exc) == f"{error}\n{warning}"


def test_format_path():
    assert format_path(("spec", "templates", 2, "daemon")) == "spec.templates[2].daemon"
    assert format_path(("spec", "templates", 0, "steps", 1, 0)) == "spec.templates[0].steps[1][0]"
    assert format_path(("metadata", "labels", "app.kubernetes.io/name")) == 'metadata.labels["app.kubernetes.io/name"]'
    assert format_path(()) == "(document)"

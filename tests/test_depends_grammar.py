"""One `depends` grammar: lint and the engine's DAG frame parse with
reconciler/spec/expressions/depends.py and so agree on every string, `_` in names included."""

from __future__ import annotations

import json
import textwrap

import pytest

from reconciler.spec import load_text, validate_documents
from reconciler.spec.expressions.depends import parse_depends
from reconciler.spec.expressions.errors import ExpressionError
from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import nodes, run

TEXTS = ["a && b", "a.Failed || !b.Succeeded", "(a || b) && !(a.Errored)", "a_b", "a && b_c.Failed", "a.b.Failed",
         "a &&", "a.Done", "1st", "a-1 || b"]


def _dag(depends: str, names: tuple[str, ...] = ("a", "b")) -> str:
    tasks = "".join(f"      - {{name: {n}, template: ok}}\n" for n in names)
    return textwrap.dedent("""\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {name: g}
    spec:
      entrypoint: main
      templates:
      - name: ok
        container: {image: alpine, command: ["true"]}
      - name: main
        dag:
          tasks:
    """) + tasks + f"      - {{name: z, template: ok, depends: {json.dumps(depends)}}}\n"


def _lint_depends_problem(depends: str) -> str | None:
    docs = load_text(_dag(depends), "wf.yaml")
    found = [p.message for p in validate_documents(docs) if p.field.endswith(".depends") and "unknown task" not in p.message]
    return found[0] if found else None


@pytest.mark.parametrize("text", TEXTS)
def test_lint_and_engine_parser_give_the_same_verdict(text: str) -> None:
    try:
        parse_depends(text)
        engine_error = None
    except ExpressionError as exc:
        engine_error = str(exc)
    assert _lint_depends_problem(text) == engine_error


def test_underscore_task_names_are_argo_errors_at_lint() -> None:
    docs = load_text(_dag("step_a", names=("step_a",)), "wf.yaml")
    messages = {(p.field, p.message) for p in validate_documents(docs)}
    rule = "name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character"
    assert ("spec.templates[1].dag.tasks[0].name", f"task name 'step_a' is invalid: {rule}") in messages
    assert ("spec.templates[1].dag.tasks[1].depends",
            f"invalid depends \"step_a\": 'step_a' is not a task name: {rule}") in messages


def test_the_engine_errors_on_an_underscore_name_in_depends_rather_than_guessing(tmp_path) -> None:
    wf = run(tmp_path, _dag("step_a", names=("step_a",)), executor=shell_executor())
    assert wf["status"]["phase"] == "Error"
    assert "'step_a' is not a task name" in wf["status"]["message"] + " ".join(n.get("message", "") for n in nodes(wf))
    assert [n for n in nodes(wf) if n["type"] == "Pod"] == []  # nothing ran


def test_bare_operand_honours_continue_on_in_the_engine(tmp_path) -> None:
    text = _dag("a", names=()).replace("      - {name: z,", "      - {name: a, template: bad, continueOn: {failed: true}}\n"
                                       "      - {name: z,")
    text = text.replace("  - name: main\n", "  - name: bad\n    container: {image: alpine, command: [\"false\"]}\n"
                        "  - name: main\n")
    wf = run(tmp_path, text, executor=shell_executor())
    phases = {n["displayName"]: n["phase"] for n in nodes(wf)}
    assert phases["a"] == "Failed" and phases["z"] == "Succeeded"

"""Templating, `when` conditions, DAG depends and durations (reconciler.spec.expressions)."""

from __future__ import annotations

import json

import pytest
import yaml

from reconciler.spec.expressions import (
    DependsExpr,
    ExpressionError,
    TaskResult,
    build_env,
    depends_from_dependencies,
    evaluate,
    evaluate_when,
    find_references,
    parse_depends,
    parse_duration,
    substitute,
    substitute_object,
)
from reconciler.spec.expressions.expr import compile_expression
from tests.conftest import CORPUS

# ----------------------------------------------------------------------------- substitute: simple tags

SCOPE = {
    "inputs.parameters.message": "hello world",
    "inputs.parameters.p-a": "PA",
    "workflow.name": "wf-abc12",
    "workflow.parameters.count": "3",
    "workflow.parameters": '[{"name":"count","value":"3"}]',
    "workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}',
    "steps.flip-coin.outputs.result": "heads",
    "steps.heads.outputs.result": "it was heads",
    "tasks.A.outputs.parameters.x": "7",
    "item": {"num": 2, "evenness": "even"},
    "item.num": "2",
    "item.evenness": "even",
    "which": "p-a",
    "flag": True,
    "ratio": 2.0,
    "nums": [1, 2.5, "x"],
    "nothing": None,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{inputs.parameters.message}}", "hello world"),
        ("{{ inputs.parameters.message }}", "hello world"),
        ("{{\tworkflow.name\n}}", "wf-abc12"),
        ("echo {{inputs.parameters.message}} from {{workflow.name}}!", "echo hello world from wf-abc12!"),
        ("{{steps.flip-coin.outputs.result}} == heads", "heads == heads"),
        ("{{item.evenness}} == even", "even == even"),
        # non-string values are written as Go's json.Marshal writes them
        ("{{flag}}", "true"),
        ("{{ratio}}", "2"),
        ("{{nums}}", '[1,2.5,"x"]'),
        ("{{nothing}}", "null"),
        # the parent key of item.num is still a key of its own for simple tags
        ("{{item}}", '{"evenness":"even","num":2}'),
        # unresolved tags stay for a later stage
        ("{{steps.later.outputs.result}}", "{{steps.later.outputs.result}}"),
        ("a {{ missing }} b", "a {{ missing }} b"),
        # fasttemplate: an unterminated tag is text
        ("{{inputs.parameters.message", "{{inputs.parameters.message"),
        ("}} {{", "}} {{"),
        ("{{}}", "{{}}"),
        # nested tags resolve inside out
        ("{{inputs.parameters.{{which}}}}", "PA"),
    ],
)
def test_substitute_simple(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected


def test_substitute_without_tags_returns_the_same_object() -> None:
    text = "plain text with { braces } and }} closers"
    assert substitute(text, SCOPE) is text
    assert substitute(text, {}, strict=True) is text


def test_substitute_strict_raises_on_unresolved_names() -> None:
    with pytest.raises(ExpressionError, match="unresolved variable steps.later.outputs.result"):
        substitute("x {{ steps.later.outputs.result }}", SCOPE, strict=True)


def test_substitute_strict_still_resolves_known_names() -> None:
    assert substitute("{{workflow.name}}", SCOPE, strict=True) == "wf-abc12"


def test_nested_tag_with_unknown_inner_name_is_left_alone() -> None:
    assert substitute("{{inputs.parameters.{{nope}}}}", SCOPE) == "{{inputs.parameters.{{nope}}}}"


# ----------------------------------------------------------------------------- substitute: expression tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{=asInt(workflow.parameters.count) + 1}}", "4"),
        ("{{= asInt(workflow.parameters.count) * 2 }}", "6"),
        ("{{=workflow.parameters.count}}", "3"),
        ("{{=inputs.parameters['p-a']}}", "PA"),
        ("{{=steps['flip-coin'].outputs.result == 'heads'}}", "true"),
        ("{{=asInt(tasks.A.outputs.parameters.x) / 2}}", "3.5"),
        ("{{=asFloat('42.0') + 1}}", "43"),
        ("{{=[1, 2]}}", "[1,2]"),
        ("{{=filter([1, 2], { # > 1})}}", "[2]"),
        ("{{=map([1, 2], { # * 2 })}}", "[2,4]"),
        ("{{=toJson([1, 2])}}", "[1,2]"),
        ("{{=string(1)}}", "1"),
        ("{{= {\"b\": 1, \"a\": \"<x>\"} }}", '{"a":"\\u003cx\\u003e","b":1}'),
        # fasttemplate ends the tag at the first "}}", so this expression is cut short
        ("{{={\"a\": 1}}}", '{{={"a": 1}}}'),
        ("{{=sprig.trim('  padded  ')}}", "padded"),
        ("{{=jsonpath(workflow.parameters.config, '$.a')}}", "1"),
        ("n={{=asInt(item.num) + 1}}; m={{item.num}}", "n=3; m=2"),
    ],
)
def test_substitute_expressions(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected


def test_expression_sees_workflow_parameters_as_a_map_not_the_json_string() -> None:
    # "workflow.parameters" is also a key, but Argo drops a key that has children
    assert substitute("{{=workflow.parameters.count}}", SCOPE) == "3"
    assert substitute("{{workflow.parameters}}", SCOPE) == SCOPE["workflow.parameters"]


@pytest.mark.parametrize(
    "text",
    [
        "{{=undefinedName + 1}}",  # unknown name: maybe known at a later stage
        "{{=steps.later.outputs.result}}",  # evaluates to nil
        "{{=1 +}}",  # syntax error: Argo leaves it when unresolved tags are allowed
        "{{=lastRetry.exitCode == '1'}}",
        "{{=sprig.int(retries) + 1}}",
    ],
)
def test_failing_expressions_stay_unresolved_unless_strict(text: str) -> None:
    assert substitute(text, SCOPE) == text
    with pytest.raises(ExpressionError):
        substitute(text, SCOPE, strict=True)


def test_workflow_status_waits_for_the_exit_handler_stage() -> None:
    # workflow.status would be nil (so the comparison false) before the exit handler runs;
    # Argo keeps the tag instead, unless the caller insists on a final answer
    text = "{{=workflow.status == 'Succeeded'}}"
    assert substitute(text, SCOPE) == text
    assert substitute(text, SCOPE, strict=True) == "false"


def test_late_variables_are_evaluated_once_present() -> None:
    scope = {**SCOPE, "retries": "2", "workflow.status": "Failed"}
    assert substitute("{{=asInt(retries) + 1}}", scope) == "3"
    assert substitute("{{=workflow.status == 'Succeeded'}}", scope) == "false"


def test_strict_expression_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r'unknown name undefinedName in expression "undefinedName \+ 1"'):
        substitute("{{=undefinedName + 1}}", SCOPE, strict=True)
    with pytest.raises(ExpressionError, match="evaluated to nil"):
        substitute("{{=steps.later?.outputs}}", SCOPE, strict=True)
    with pytest.raises(ExpressionError, match="unsupported value"):
        substitute("{{=1/0}}", SCOPE, strict=True)


def test_substitute_object_walks_values_not_keys() -> None:
    obj = {
        "args": ["{{inputs.parameters.message}}", 3, None, True],
        "{{workflow.name}}": {"deep": ("{{item.num}}", "{{=asInt(item.num) * 10}}")},
        "n": 1.5,
    }
    assert substitute_object(obj, SCOPE) == {
        "args": ["hello world", 3, None, True],
        "{{workflow.name}}": {"deep": ("2", "20")},
        "n": 1.5,
    }


def test_substitute_object_strict_propagates() -> None:
    with pytest.raises(ExpressionError):
        substitute_object({"a": ["{{nope}}"]}, SCOPE, strict=True)


def test_find_references() -> None:
    text = "{{a.b}} {{=c + 1}} {{ d }} {{a.b}} {{inputs.parameters.{{item}}}} {{  }} {{unterminated"
    assert find_references(text) == ["a.b", "d", "item"]
    assert find_references("no tags") == []


def test_build_env_nests_dotted_keys() -> None:
    env = build_env(
        {
            "steps.flip-coin.outputs.result": "heads",
            "steps.flip-coin.id": "n1",
            "workflow.parameters": "[]",
            "workflow.parameters.count": "3",
            "item": '{"a":1}',
            "json": '{"k": "v"}',
        }
    )
    assert env == {
        "steps": {"flip-coin": {"outputs": {"result": "heads"}, "id": "n1"}},
        "workflow": {"parameters": {"count": "3"}},
        "item": '{"a":1}',
        "json": '{"k": "v"}',  # JSON strings stay strings
    }


def test_build_env_drops_only_true_parents() -> None:
    # "a" is a parent of "a.b"; "ab" is not, whatever the sort order says
    assert build_env({"a": "1", "a.b": "2", "ab": "3", "a-b": "4"}) == {"a": {"b": "2"}, "ab": "3", "a-b": "4"}


# ----------------------------------------------------------------------------- when conditions


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("", True),
        ("heads == heads", True),
        ("tails == heads", False),
        ("heads != tails", True),
        ("odd == even", False),
        ("even == even", True),
        ("7 < 10", True),
        ("9 < 10", True),
        ("10 < 10", False),
        ("10 <= 10", True),
        ("11 > 10", True),
        ("10 >= 11", False),
        ("2 == 2.0", True),
        ("007 == 7", True),
        ("'7' == 7", False),  # a quoted number is a string
        ("\"a b\" == 'a b'", True),
        ("Succeeded == Succeeded", True),
        ("true", True),
        ("false", False),
        ("true == true", True),
        ("True == true", False),  # only lower-case true is a boolean
        ("!false", True),
        ("!(1 > 2)", True),
        ("a == a && b == b", True),
        ("a == b || b == b", True),
        ("a == b || b == c && c == c", False),
        ("(a == b || b == b) && c == c", True),
        ("abc < abd", True),  # strings compare lexically
        ("abc =~ '^a.c$'", True),
        ("abc !~ 'z'", True),
        ("x in (a, x, y)", True),
        ("z in (a, x, y)", False),
        ("1 + 2 == 3", True),
        ("2 * 3 - 1 == 5", True),
        ("10 - 2 - 3 == 5", True),  # left-associative
        ("7 % 4 == 3", True),
        ("2 ** 3 == 8", True),
        ("-1 < 0", True),
        ("a + 1 == a1", True),  # + concatenates when a string is involved
        ("6 & 3 == 2", True),
        ("1 << 3 == 8", True),
        ("true ? false : true", False),
        ("false ? false : true", True),
        ("0x10 == 16", True),
        ("[spaced name] == 'spaced name'", True),
        ("'it\\'s' == \"it\\'s\"", True),
    ],
)
def test_evaluate_when(when: str, expected: bool) -> None:
    assert evaluate_when(when) is expected


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("heads", "Expected boolean evaluation for 'heads'. Got heads"),
        ("1 + 1", "Got 2"),
        ("a ==-1", "Invalid token: '==-'"),
        ("a = a", "Invalid token: '='"),
        ("a === a", "Invalid token: '==='"),
        ("v1.2 == v1.2", "parameter accessor"),
        ("(a == a", "Unbalanced parenthesis"),
        ("a == a)", "Unbalanced parenthesis"),
        ("a b == c", "unexpected 'b'"),
        ("a ==", "Unexpected end of expression"),
        ("== a", "unexpected '=='"),
        ("'abc == abc", "Unclosed string literal"),
        ("[abc == abc", "Unclosed parameter bracket"),
        ("1.2.3 == 1", "Unable to parse numeric value '1.2.3'"),
        ("abc < 10", "Value 'abc' cannot be used with the comparator '<', it is not a number"),
        ("1 + true == 2", "cannot be used with the modifier '+'"),
        ("a && b", "cannot be used with the logical operator '&&', it is not a bool"),
        ("!a", "cannot be used with the prefix '!'"),
        ("a in b", "is not a array"),
        ("a =~ '('", "invalid regular expression"),
        ("()", "unexpected ')'"),
        ("   ", "empty expression"),
    ],
)
def test_evaluate_when_errors(when: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_when(when)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_when_short_circuits_like_govaluate() -> None:
    # the right-hand side is never evaluated, so its type error does not surface
    assert evaluate_when("false && (1 + true == 2)") is False
    assert evaluate_when("true || (1 + true == 2)") is True


def test_when_after_substitution_of_real_examples() -> None:
    scope = {"steps.flip-coin.outputs.result": "tails", "item.evenness": "odd",
             "steps.iterate-counter.outputs.result": "3", "inputs.parameters.limit": "10"}
    assert evaluate_when(substitute("{{steps.flip-coin.outputs.result}} == heads", scope)) is False
    assert evaluate_when(substitute("{{steps.flip-coin.outputs.result}} == tails", scope)) is True
    assert evaluate_when(substitute("{{item.evenness}} == even", scope)) is False
    text = "{{steps.iterate-counter.outputs.result}} < {{inputs.parameters.limit}}"
    assert evaluate_when(substitute(text, scope)) is True


# ----------------------------------------------------------------------------- depends

OK = TaskResult("Succeeded")
FAILED = TaskResult("Failed")
ERRORED = TaskResult("Error")
SKIPPED = TaskResult("Skipped")
OMITTED = TaskResult("Omitted")
RUNNING = TaskResult("Running")


@pytest.mark.parametrize(
    ("text", "results", "expected"),
    [
        ("A", {"A": OK}, True),
        ("A", {"A": SKIPPED}, True),
        ("A", {"A": FAILED}, False),
        ("A", {"A": ERRORED}, False),
        ("A", {"A": OMITTED}, False),  # omission cascades to bare dependants
        ("A.Succeeded", {"A": SKIPPED}, False),
        ("A.Failed", {"A": FAILED}, True),
        ("A.Errored", {"A": ERRORED}, True),
        ("A.Errored", {"A": FAILED}, False),
        ("A.Skipped", {"A": SKIPPED}, True),
        ("A.Skipped", {"A": OMITTED}, False),
        ("A.Omitted", {"A": OMITTED}, True),
        ("A.Daemoned", {"A": OK}, False),
        ("A.Daemoned", {"A": TaskResult("Running", daemoned=True)}, True),
        ("A.Daemoned", {"A": TaskResult("Pending", daemoned=True)}, False),
        ("A", {"A": TaskResult("Running", daemoned=True)}, True),
        ("A", {"A": TaskResult("Failed", continue_on_failed=True)}, True),
        ("A", {"A": TaskResult("Error", continue_on_failed=True)}, False),
        ("A", {"A": TaskResult("Error", continue_on_error=True)}, True),
        ("A.AnySucceeded", {"A": TaskResult("Failed", ("Failed", "Succeeded"))}, True),
        ("A.AnySucceeded", {"A": TaskResult("Failed", ("Failed", "Error"))}, False),
        ("A.AllFailed", {"A": TaskResult("Failed", ("Failed", "Failed"))}, True),
        ("A.AllFailed", {"A": TaskResult("Failed", ("Failed", "Error"))}, False),
        ("A.AllFailed", {"A": TaskResult("Failed", ())}, False),
        ("!A.Failed", {"A": OK}, True),
        ("!!A", {"A": OK}, True),
        ("!A && B", {"A": FAILED, "B": OK}, True),
        # from dag-enhanced-depends.yaml, where C fails
        ("A && (C.Succeeded || C.Failed)", {"A": OK, "C": FAILED}, True),
        ("B || C", {"B": OK, "C": FAILED}, True),
        ("B && C", {"B": OK, "C": FAILED}, False),
        ("should-execute-2.Succeeded || should-not-execute", {"should-execute-2": OK, "should-not-execute": OMITTED},
         True),
        # from dag-continue-on-fail.yaml, where B and E fail
        ("B.Failed && C", {"B": FAILED, "C": OK}, True),
        ("E && F", {"E": FAILED, "F": OK}, False),
        ("inner-B && inner-C", {"inner-B": OK, "inner-C": OK}, True),
        ("b2 && b3 && b4", {"b2": OK, "b3": OK, "b4": SKIPPED}, True),
        ("A || B && C", {"A": OK, "B": FAILED, "C": FAILED}, True),  # && binds tighter
        ("(A || B) && C", {"A": OK, "B": FAILED, "C": FAILED}, False),
        ("  A\n&&\tB  ", {"A": OK, "B": OK}, True),
        ("1st-task.Succeeded", {"1st-task": OK}, True),
    ],
)
def test_depends_evaluate(text: str, results: dict[str, TaskResult], expected: bool) -> None:
    assert parse_depends(text).evaluate(results) is expected


def test_depends_task_names() -> None:
    expr = parse_depends("A && (C.Succeeded || C.Failed) || !should-execute-2.Omitted")
    assert isinstance(expr, DependsExpr)
    assert expr.task_names() == frozenset({"A", "C", "should-execute-2"})
    assert expr.text == "A && (C.Succeeded || C.Failed) || !should-execute-2.Omitted"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("(A && B", 'missing ")"'),
        ("A && B)", 'unexpected ")"'),
        ("A &&", "expression ends where a task was expected"),
        ("A && || B", 'expected a task but found "||"'),
        ("&& A", 'expected a task but found "&&"'),
        ("()", 'expected a task but found ")"'),
        ("A B", 'unexpected "B"'),
        ("A.Bogus", "task result 'Bogus' for task 'A' is invalid"),
        ("A.succeeded", "task result 'succeeded'"),
        ("A.", 'unexpected character "."'),
        ("A & B", 'unexpected character "&"'),
        ("A and B", 'unexpected "and"'),
        ("my_task", 'unexpected character "_"'),
    ],
)
def test_parse_depends_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_depends(text)
    assert message in str(info.value)


def test_depends_evaluate_needs_every_result() -> None:
    with pytest.raises(ExpressionError, match="no result for task B, C"):
        parse_depends("A && (B || C)").evaluate({"A": OK})


def test_depends_from_dependencies() -> None:
    assert depends_from_dependencies(["A", "B"]) == "A && B"
    assert depends_from_dependencies(["A"]) == "A"
    assert depends_from_dependencies([]) == ""
    expr = parse_depends(depends_from_dependencies(["A", "B"]))
    assert expr.evaluate({"A": OK, "B": SKIPPED}) is True
    assert expr.evaluate({"A": OK, "B": FAILED}) is False


# ----------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("20", 20.0),
        (20, 20.0),
        (2.5, 2.5),
        ("-5", -5.0),
        ("+5", 5.0),
        ("0", 0.0),
        ("10s", 10.0),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("100ns", 1e-7),
        ("-1m", -60.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("1.5", "missing unit"),
        ("10 s", "unknown unit"),
        ("10x", 'unknown unit "x"'),
        ("1d", 'unknown unit "d"'),
        ("h", "expected a number"),
        (".s", "expected a number"),
        ("1h-5m", 'unknown unit "h-"'),
        (" 10s", "expected a number"),
        (True, "not a number"),
        (None, "not a number"),
        (float("nan"), "invalid duration"),
    ],
)
def test_parse_duration_errors(value: object, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert message in str(info.value)


# ----------------------------------------------------------------------------- the Argo examples


def test_conditional_parameters_example() -> None:
    expression = (
        "steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result"
    )
    heads = {"steps.flip-coin.outputs.result": "heads", "steps.heads.outputs.result": "heads"}
    tails = {"steps.flip-coin.outputs.result": "tails", "steps.tails.outputs.result": "tails"}
    assert evaluate(expression, build_env(heads)) == "heads"
    assert evaluate(expression, build_env(tails)) == "tails"


def test_retry_conditional_example() -> None:
    template = (
        "asInt(lastRetry.exitCode) > 1 && lastRetry.status != \"Error\" && asInt(lastRetry.duration) < 120 && "
        "({{inputs.parameters.safe-to-retry}} == true || lastRetry.message matches 'imminent node shutdown|pod deleted')"
    )
    text = substitute(template, {"inputs.parameters.safe-to-retry": "true"}, strict=True)
    last = {"exitCode": "2", "status": "Failed", "duration": "3", "message": "exit status 2"}
    assert evaluate(text, {"lastRetry": last}) is True
    assert evaluate(text, {"lastRetry": {**last, "exitCode": "1"}}) is False
    assert evaluate(text, {"lastRetry": {**last, "status": "Error"}}) is False
    text = substitute(template, {"inputs.parameters.safe-to-retry": "false"})
    assert evaluate(text, {"lastRetry": last}) is False
    assert evaluate(text, {"lastRetry": {**last, "message": "pod deleted"}}) is True


def test_expression_destructure_json_examples() -> None:
    scope = {"workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}'}
    values = [substitute(f"{{{{=jsonpath(workflow.parameters.config, '$.{k}')}}}}", scope) for k in "abc"]
    assert values == ["1", "2", "3"]
    config = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
    scope = {"workflow.parameters.config": config}
    expected = {
        '$.employees[?(@.name=="Baris")].age': "[43]",
        "$.employees[?(@.age>42 && @.age<44)].age": "[43]",
        "$.employees[0:1]": '[{"age":43,"name":"Baris"}]',
        "$.employees[*].name": '["Baris","Mo","Jai"]',
    }
    for path, text in expected.items():
        assert substitute(f"{{{{=jsonpath(workflow.parameters.config, '{path}')}}}}", scope) == text


def _corpus_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(CORPUS.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                docs.append((str(path.relative_to(CORPUS)), doc))
    return docs


def _walk(obj: object, key: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)
    else:
        yield key, obj


def test_every_corpus_expression_parses() -> None:
    seen = {"depends": 0, "when": 0, "expression": 0, "tag": 0}
    for name, doc in _corpus_documents():
        for key, value in _walk(doc):
            if not isinstance(value, str):
                continue
            if key == "depends":
                parse_depends(value)
                seen["depends"] += 1
            if key == "when":
                # any value for the referenced outputs must give a well-formed condition
                scope = dict.fromkeys(find_references(value), "1")
                assert isinstance(evaluate_when(substitute(value, scope, strict=True)), bool), name
                seen["when"] += 1
            if key in ("expression", "fromExpression") and "{{" not in value:
                compile_expression(value)
                seen["expression"] += 1
            for tag in find_references(value):
                assert tag and tag == tag.strip(), f"{name}: {tag!r}"
                seen["tag"] += 1
            for part in value.split("{{=")[1:]:
                compile_expression(part.split("}}")[0])
    assert seen["depends"] > 10 and seen["when"] > 5 and seen["expression"] >= 2 and seen["tag"] > 50


def test_results_are_json_compatible() -> None:
    # what substitute writes for a list must be what withParam can parse back
    text = substitute("{{=map([1, 2.5, 'x'], {#})}}", {})
    assert json.loads(text) == [1, 2.5, "x"]


def test_absurd_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        evaluate_when("(" * 3000 + "a == a" + ")" * 3000)
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_depends("(" * 3000 + "A" + ")" * 3000)
    assert parse_depends("(" * 50 + "A" + ")" * 50).evaluate({"A": OK}) is True

"""The expr-lang evaluator behind {{=...}} and the *.expression fields."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reconciler.spec.expressions import ExpressionError, evaluate
from reconciler.spec.expressions.expr import compile_expression

ENV: dict[str, Any] = {
    "steps": {
        "flip-coin": {"outputs": {"result": "heads"}},
        "heads": {"outputs": {"result": "it was heads"}},
    },
    "inputs": {"parameters": {"my-int": "42", "count": "3", "f": "1.5", "name": "Argo"}},
    "lastRetry": {"exitCode": "2", "status": "Failed", "duration": "3", "message": "pod deleted"},
    "nums": [1, 2, 3, 4],
    "people": [{"name": "Ann", "age": 31}, {"name": "Bob", "age": 17}],
    "m": {"a": 1, "b-c": 2, "nested": {"x": None}},
    "nothing": None,
    "flag": True,
    "text": "hello world",
}


def ev(text: str, env: dict[str, Any] | None = None) -> Any:
    return evaluate(text, ENV if env is None else env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # literals
        ("42", 42),
        ("0x2A", 42),
        ("0o52", 42),
        ("0b101010", 42),
        ("1_000_000", 1000000),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5e-1", 0.25),
        ("'single'", "single"),
        ('"double"', "double"),
        ('"tab\\tnew\\nline \\u00e9 \\x41 \\101 \\\\ \\" \\\'"', "tab\tnew\nline \u00e9 A A \\ \" '"),
        ("`raw \\n string`", "raw \\n string"),
        ("true", True),
        ("false", False),
        ("nil", None),
        ("[1, 'a', nil, [2]]", [1, "a", None, [2]]),
        ("[1, 2,]", [1, 2]),
        ("[]", []),
        ("{a: 1, 'b': 2, \"c-d\": 3, 4: 5, (\"e\" + \"f\"): 6}", {"a": 1, "b": 2, "c-d": 3, "4": 5, "ef": 6}),
        ("{}", {}),
        ("1 /* inline */ + // line comment\n 2", 3),
    ],
)
def test_literals(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("'a' + 'b'", "ab"),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("4 / 2", 2.0),  # division always yields a float
        ("7 % 3", 1),
        ("-7 % 3", -1),  # Go's remainder keeps the dividend's sign
        ("2 ** 10", 1024.0),
        ("2 ^ 3", 8.0),
        ("2 ** 3 ** 2", 512.0),  # right-associative
        ("-2 ** 2", -4.0),  # unary minus binds looser than **
        ("-(1 + 2)", -3),
        ("+3", 3),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("'1' == 1", False),
        ("nil == nil", True),
        ("nothing == nil", True),
        ("[1, 2] == [1, 2.0]", True),
        ("{a: 1} == {a: 1}", True),
        ("1 != 2", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("'b' >= 'a'", True),
        ("1 < 2 < 3", True),  # chained: 1 < 2 && 2 < 3
        ("3 > 2 > 2", False),
        ("true == false == false", False),  # chained, not (true == false) == false
        ("true && false", False),
        ("true and true", True),
        ("false || true", True),
        ("false or false", False),
        ("not true", False),
        ("!false", True),
        ("not (1 == 2)", True),
        ("2 in [1, 2]", True),
        ("2.0 in [1, 2]", True),
        ("'a' in {a: 1}", True),
        ("'z' in m", False),
        ("1 in nil", False),
        ("3 not in [1, 2]", True),
        ("'hello' matches '^h.*o$'", True),
        ("'hello' not matches 'x'", True),
        ("text contains 'lo w'", True),
        ("text not contains 'xyz'", True),
        ("text startsWith 'hell'", True),
        ("text endsWith 'world'", True),
        ("text not startsWith 'world'", True),
        ("1..4", [1, 2, 3, 4]),
        ("3..1", []),
        ("nothing ?? 'default'", "default"),
        ("0 ?? 1", 0),
        ("m.nested.x ?? m.a", 1),
        ("flag ? 'yes' : 'no'", "yes"),
        ("!flag ? 'yes' : 'no'", "no"),
        ("false ? 1 : true ? 2 : 3", 2),
        ("false ?: 'elvis'", "elvis"),  # a ?: b is a ? a : b
    ],
)
def test_operators(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_not_binds_tighter_than_comparison() -> None:
    with pytest.raises(ExpressionError, match='operator "not" needs a bool, got int'):
        ev("not 1 == 2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps['flip-coin'].outputs.result", "heads"),
        ('steps["flip-coin"]["outputs"]["result"]', "heads"),
        ("inputs.parameters['my-int']", "42"),
        ("m['b-c']", 2),
        ("m.missing", None),  # missing map keys are nil
        ("m.nested.x", None),
        ("nums[0]", 1),
        ("nums[-1]", 4),
        ("nums[1.0]", 2),
        ("nums[1:3]", [2, 3]),
        ("nums[:2]", [1, 2]),
        ("nums[2:]", [3, 4]),
        ("nums[:]", [1, 2, 3, 4]),
        ("nums[-2:]", [3, 4]),
        ("nums[3:1]", []),
        ("nums[1:100]", [2, 3, 4]),
        ("text[0]", "h"),
        ("text[0:5]", "hello"),
        ("people[1].name", "Bob"),
        ("nothing?.field", None),
        ("nothing?.a.b.c", None),  # ?. ends the whole chain
        ("nothing?.['k']", None),
        ("m?.a", 1),
        ("$env.flag", True),
        ("$env['inputs'].parameters.name", "Argo"),
        ("'flag' in $env", True),
    ],
)
def test_member_access(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_ternary_does_not_evaluate_the_branch_not_taken() -> None:
    # conditional-parameters.yaml: the tails step was skipped, so steps.tails is missing
    expression = "steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result"
    assert ev(expression) == "it was heads"
    with pytest.raises(ExpressionError, match="cannot fetch outputs from <nil>"):
        ev("steps.tails.outputs.result")


def test_logical_operators_short_circuit() -> None:
    assert ev("false && undefinedName") is False
    assert ev("true || undefinedName") is True
    assert ev("nums ?? undefinedName") == [1, 2, 3, 4]


def test_retry_expression() -> None:
    text = (
        'asInt(lastRetry.exitCode) > 1 && lastRetry.status != "Error" && asInt(lastRetry.duration) < 120 && '
        "(true == true || lastRetry.message matches 'imminent node shutdown|pod deleted')"
    )
    assert ev(text) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("let x = 2; x * x", 4),
        ("let x = 2; let y = x + 1; x * y", 6),
        ("let text = 'shadow'; text", "shadow"),
        ("nums | filter(# > 2)", [3, 4]),
        ("text | upper() | split(' ')", ["HELLO", "WORLD"]),
        ("'  a ' | trim()", "a"),
    ],
)
def test_let_and_pipes(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("filter([1, 2], { # > 1})", [2]),
        ("map([1, 2], { # * 2 })", [2, 4]),
        ("map(nums, #index)", [0, 1, 2, 3]),
        ("filter(people, .age > 18)", [{"name": "Ann", "age": 31}]),
        ("map(people, .name)", ["Ann", "Bob"]),
        ("map(people, #.name)", ["Ann", "Bob"]),
        ("all(nums, # > 0)", True),
        ("all([], # > 0)", True),
        ("any(nums, # > 3)", True),
        ("any([], # > 3)", False),
        ("none(nums, # > 4)", True),
        ("one(nums, # == 2)", True),
        ("one(nums, # > 2)", False),
        ("count(nums, # % 2 == 0)", 2),
        ("count([true, false, true])", 2),
        ("find(nums, # > 2)", 3),
        ("find(nums, # > 9)", None),
        ("findIndex(nums, # > 2)", 2),
        ("findIndex(nums, # > 9)", -1),
        ("findLast(nums, # < 3)", 2),
        ("findLastIndex(nums, # < 3)", 1),
        ("groupBy(people, .age > 18)", {"true": [{"name": "Ann", "age": 31}], "false": [{"name": "Bob", "age": 17}]}),
        ("reduce(nums, #acc + #)", 10),
        ("reduce(nums, #acc + #, 10)", 20),
        ("sum(nums)", 10),
        ("sum(people, .age)", 48),
        ("sortBy(people, .age)", [{"name": "Bob", "age": 17}, {"name": "Ann", "age": 31}]),
        ("sortBy(people, .name, 'desc')[0].name", "Bob"),
        ("map(filter(nums, # > 1), {# * 10})", [20, 30, 40]),
        ("filter(nums, {let half = # / 2; half >= 1.5})", [3, 4]),
    ],
)
def test_predicates(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("asInt(inputs.parameters['my-int']) + 1", 43),
        ("asInt('-5')", -5),
        ("asInt(2.9)", 2),
        ("asFloat(inputs.parameters.f) * 2", 3.0),
        ("asFloat(2)", 2.0),
        ("int('7')", 7),
        ("float('1e2')", 100.0),
        ("string(1)", "1"),
        ("string(2.0)", "2"),
        ("string(0.1)", "0.1"),
        ("string(1e6)", "1e+06"),
        ("string(true)", "true"),
        ("string(nil)", "<nil>"),
        ("string([1, 'a'])", "[1 a]"),
        ("string({b: 1, a: 2})", "map[a:2 b:1]"),
        ("len('héllo')", 5),
        ("len(nums)", 4),
        ("len(m)", 3),
        ("abs(-2)", 2),
        ("abs(-2.5)", 2.5),
        ("ceil(1.2)", 2.0),
        ("floor(1.8)", 1.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("max(1, 5, 3)", 5),
        ("min(nums)", 1),
        ("mean([1, 2, 3, 4])", 2.5),
        ("median([3, 1, 2])", 2.0),
        ("median([4, 1, 2, 3])", 2.5),
        ("type(1)", "int"),
        ("type(1.5)", "float"),
        ("type('')", "string"),
        ("type(nil)", "nil"),
        ("type([])", "array"),
        ("type({})", "map"),
        ("type(true)", "bool"),
        ("lower('ABC')", "abc"),
        ("upper('abc')", "ABC"),
        ("trim('  x  ')", "x"),
        ("trim('__x__', '_')", "x"),
        ("trimPrefix('HelloWorld', 'Hello')", "World"),
        ("trimSuffix('HelloWorld', 'World')", "Hello"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("split('a,b,c', ',', 2)", ["a", "b,c"]),
        ("split('abc', '')", ["a", "b", "c"]),
        ("split('a,b', ',', 0)", []),
        ("splitAfter('a,b,c', ',')", ["a,", "b,", "c"]),
        ("replace('aXbX', 'X', '-')", "a-b-"),
        ("repeat('ab', 3)", "ababab"),
        ("indexOf('apple pie', 'pie')", 6),
        ("lastIndexOf('apple pie apple', 'apple')", 10),
        ("hasPrefix('abc', 'ab')", True),
        ("hasSuffix('abc', 'bc')", True),
        ("join(['a', 'b'], '-')", "a-b"),
        ("join(['a', 'b'])", "ab"),
        ("keys({a: 1, b: 2})", ["a", "b"]),
        ("values({a: 1, b: 2})", [1, 2]),
        ("first(nums)", 1),
        ("first([])", None),
        ("last(nums)", 4),
        ("take(nums, 2)", [1, 2]),
        ("get(nums, 1)", 2),
        ("get(nums, 10)", None),
        ("get(m, 'a')", 1),
        ("get(m, 'zz')", None),
        ("sort([3, 1, 2])", [1, 2, 3]),
        ("sort(['b', 'a'], 'desc')", ["b", "a"]),
        ("reverse(nums)", [4, 3, 2, 1]),
        ("uniq([1, 1.0, 2, 'a', 'a'])", [1, 2, "a"]),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ("flatten([1, [2, [3]]])", [1, 2, 3]),
        ("toPairs({a: 1})", [["a", 1]]),
        ("fromPairs([['a', 1]])", {"a": 1}),
        ("toJSON({b: 1, a: [true, nil]})", '{\n  "a": [\n    true,\n    null\n  ],\n  "b": 1\n}'),
        ("toJson({b: 1, a: [true, nil]})", '{"a":[true,null],"b":1}'),
        ("fromJSON('{\"a\": [1, 2.5]}')", {"a": [1.0, 2.5]}),
        ("fromJSON('{\"a\": 1}').a + 1", 2.0),  # JSON numbers are float64, as in Go
        ("toBase64('Hello World')", "SGVsbG8gV29ybGQ="),
        ("fromBase64('SGVsbG8gV29ybGQ=')", "Hello World"),
    ],
)
def test_builtins(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_env_functions_are_callable() -> None:
    assert evaluate("double(21)", {"double": lambda x: x * 2}) == 42


def test_ieee_division() -> None:
    assert ev("1 / 0") == math.inf
    assert ev("-1 / 0") == -math.inf
    assert math.isnan(ev("0 / 0"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # syntax
        ("", "empty expression"),
        ("1 +", "unexpected end of expression at position 4"),
        ("(1 + 2", 'expected ")"'),
        ("[1, 2", 'expected "]"'),
        ("{a 1}", 'expected ":"'),
        ("{[1]: 2}", "a map key must be a name, string or number"),
        ("1 2", 'unexpected "2"'),
        ("a.", 'expected a field name after "."'),
        ("'unterminated", "unterminated string"),
        ("'line\nbreak'", "unterminated string"),
        ("`raw", "unterminated string"),
        ("'\\d+'", 'invalid escape "\\d"'),
        ("'\\u12'", "invalid escape"),
        ("1 @ 2", 'unexpected character "@"'),
        ("/* open", "unterminated comment"),
        ("a not b", 'unexpected "b" after "not"'),
        ("1 ?? 2 + 3", 'operator "+" and "??" cannot be mixed'),
        ("let = 1; 2", "expected a variable name"),
        ("x | 1", 'expected a function call after "|"'),
        ("# > 1", 'unexpected "#"'),
        ("true ? 1", 'expected ":"'),
        ("filter(nums)", "filter() needs an array and a predicate"),
        ("{# > 1}", "a map key must be a name"),
        # names and members
        ("undefinedName", "unknown name undefinedName"),
        ("nothing.field", "cannot fetch field from <nil>"),
        ("nums[4]", "index out of range: 4 (array length is 4)"),
        ("nums[-5]", "index out of range"),
        ("nums['a']", "cannot fetch a from []interface {}"),
        ("m[1]", "cannot use int as a key"),
        ("flag.x", "cannot fetch x from bool"),
        ("nums['a':]", "cannot use string as a slice index"),
        ("flag[1:2]", "cannot slice bool"),
        # operators
        ("'a' + 1", "invalid operation: string + int"),
        ("1 - 'a'", "invalid operation: int - string"),
        ("true * 2", "invalid operation: bool * int"),
        ("1.5 % 1", "invalid operation: float64 % int"),
        ("5 % 0", "integer divide by zero"),
        ("1 < 'a'", "invalid operation: int < string"),
        ("nil > 1", "invalid operation: <nil> > int"),
        ("1 and true", 'operator "and" needs a bool, got int'),
        ("'x' || true", 'operator "||" needs a bool'),
        ("!'x'", 'operator "!" needs a bool, got string'),
        ("-'x'", "invalid operation: -string"),
        ("1 ? 2 : 3", "ternary operator needs a bool"),
        ("1 in 2", 'operator "in" not defined on int'),
        ("1 in m", "cannot use int as a key"),
        ("1 matches 'a'", "invalid operation: int matches string"),
        ("'a' matches '('", "invalid regular expression"),
        ("1 contains 'a'", "invalid operation: int contains string"),
        ("1.5..3", "invalid operation: float64 .. int"),
        ("{(1): 2}", "a map key must be a string"),
        # calls
        ("nope(1)", "unknown function nope()"),
        ("text(1)", "text is not a function (string)"),
        ("len(1)", "invalid argument for len (type int)"),
        ("len()", "len: bad arguments"),
        ("asInt('1.5')", 'invalid operation: int("1.5")'),
        ("asInt('')", 'invalid operation: int("")'),
        ("asInt(nil)", "invalid operation: int(<nil>)"),
        ("asInt(true)", "invalid operation: int(bool)"),
        ("asFloat('x')", 'invalid operation: float("x")'),
        ("upper(1)", "upper: expected string, got int"),
        ("join([1], ',')", "join: expected string, got int"),
        ("split('a', ',', 'x')", "split: expected integer"),
        ("repeat('a', -1)", "negative repeat count"),
        ("sort([1, 'a'])", "cannot sort a mix"),
        ("sort([1], 'up')", 'order must be "asc" or "desc"'),
        ("fromJSON('{')", "fromJSON: invalid JSON"),
        ("fromBase64('***')", "fromBase64"),
        ("fromPairs([1])", "expected [key, value] pairs"),
        ("filter(1, # > 0)", "filter() expects an array, got int"),
        ("filter(nums, # + 1)", "filter() predicate needs a bool"),
        ("reduce([], #acc + #)", "reduce() of an empty array needs an initial value"),
        ("sortBy(people, .missing)", "keys must all be numbers or all be strings"),
        ("max()", "not enough arguments to call max"),
        ("toJSON(1 / 0)", "json: unsupported value: +Inf"),
        ("sprig.nope('x')", "sprig.nope is not available"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        ev(text)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert "\n" not in text_of_error


def test_runtime_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("nums[9] + 1")
    assert str(info.value) == 'index out of range: 9 (array length is 4) in expression "nums[9] + 1"'
    assert info.value.text == "nums[9] + 1"


def test_parse_errors_name_the_position_and_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("a +\n* b")
    assert str(info.value) == 'unexpected "*" at position 5 in expression "a +\\n* b"'


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("1 + 1 + 1") is compile_expression("1 + 1 + 1")


def test_evaluation_does_not_mutate_the_environment() -> None:
    env = {"xs": [3, 1, 2], "m": {"a": 1}}
    evaluate("sort(xs)", env)
    evaluate("reverse(xs)", env)
    evaluate("let m = 5; m", env)
    assert env == {"xs": [3, 1, 2], "m": {"a": 1}}


def test_question_dot_before_a_digit_is_a_ternary() -> None:
    assert ev("flag ? .5 : 1") == 0.5
    assert ev("!flag ?.5 : 1") == 1


@pytest.mark.parametrize("text", ["(" * 3000 + "1" + ")" * 3000, "-" * 3000 + "1", "[" * 3000 + "]" * 3000])
def test_absurd_nesting_is_an_error_not_a_crash(text: str) -> None:
    with pytest.raises(ExpressionError, match="too deeply nested"):
        ev(text)

"""Go-compatible value formatting, jsonpath() and the sprig subset used in expressions."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.spec.expressions import ExpressionError, evaluate, substitute
from reconciler.spec.expressions.expr_argo import _go_time_format
from reconciler.spec.expressions.expr_values import (
    format_result,
    go_float_json,
    go_float_v,
    go_json,
    go_sprint,
)

# ----------------------------------------------------------------------------- Go formatting


@pytest.mark.parametrize(
    ("value", "v", "js"),
    [
        (43.0, "43", "43"),
        (0.1, "0.1", "0.1"),
        (-2.5, "-2.5", "-2.5"),
        (123456.0, "123456", "123456"),
        (1e6, "1e+06", "1000000"),
        (1234567.0, "1.234567e+06", "1234567"),
        (1e20, "1e+20", "100000000000000000000"),
        (1e21, "1e+21", "1e+21"),
        (1.5e300, "1.5e+300", "1.5e+300"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "0.00001"),
        (1e-7, "1e-07", "1e-7"),
        (1.25e-10, "1.25e-10", "1.25e-10"),
        (0.0, "0", "0"),
        (-0.0, "-0", "-0"),
    ],
)
def test_go_float_formatting(value: float, v: str, js: str) -> None:
    assert go_float_v(value) == v
    assert go_float_json(value) == js


def test_non_finite_floats() -> None:
    assert go_float_v(math.inf) == "+Inf"
    assert go_float_v(-math.inf) == "-Inf"
    assert go_float_v(math.nan) == "NaN"
    with pytest.raises(ExpressionError, match="unsupported value: NaN"):
        go_float_json(math.nan)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips(value: float) -> None:
    assert float(go_float_json(value)) == value
    assert float(go_float_v(value)) == value


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
))
def test_go_json_is_json(value: Any) -> None:
    # valid JSON that decodes back to an equal value; large floats print as long integers, as in Go
    assert json.loads(go_json(value), parse_int=float) == value
    assert json.loads(go_json(value, "  "), parse_int=float) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (7, "7"),
        (2.0, "2"),
        ("plain <text> & \"quotes\"", "plain <text> & \"quotes\""),  # strings are written raw
        ([1, "a", None], '[1,"a",null]'),
        ({"b": 1, "a": {"d": [], "c": {}}}, '{"a":{"c":{},"d":[]},"b":1}'),  # keys sorted like Go
        (["<&>", "\u2028", "\x01\n\t\"\\"], '["\\u003c\\u0026\\u003e","\\u2028","\\u0001\\n\\t\\"\\\\"]'),
        (("tuple", 1), '["tuple",1]'),
        ({"é": "ü"}, '{"é":"ü"}'),  # UTF-8, not \u escapes
    ],
)
def test_format_result(value: Any, expected: str) -> None:
    assert format_result(value) == expected


def test_go_json_indent_matches_marshal_indent() -> None:
    assert go_json({"a": [1, {"b": None}], "c": []}, "  ") == (
        '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": []\n}'
    )


def test_go_json_rejects_unknown_types() -> None:
    with pytest.raises(ExpressionError, match="unsupported type"):
        go_json(object())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "<nil>"),
        (False, "false"),
        (3, "3"),
        (3.0, "3"),
        ("s", "s"),
        ([1, [2, "x"], None], "[1 [2 x] <nil>]"),
        ({"z": 1.5, "a": True}, "map[a:true z:1.5]"),
    ],
)
def test_go_sprint(value: Any, expected: str) -> None:
    assert go_sprint(value) == expected


# ----------------------------------------------------------------------------- jsonpath()

EMPLOYEES = json.dumps({
    "employees": [{"name": "Baris", "age": 43}, {"name": "Mo", "age": 42}, {"name": "Jai", "age": 44}],
    "company": {"name": "ACME", "tags": ["a", "b"], "odd key": 1, "flags": {"x": True}},
})


def jp(path: str, doc: str = EMPLOYEES) -> Any:
    return evaluate("jsonpath(doc, path)", {"doc": doc, "path": path})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # a definite path gives the value itself
        ("$.company.name", "ACME"),
        ("$.employees[0].name", "Baris"),
        ("$.employees[-1].age", 44.0),
        ("$['company']['odd key']", 1.0),
        ("$.company.flags.x", True),
        ("$.company.tags", ["a", "b"]),
        # anything that can select several gives a list, even of one
        ('$.employees[?(@.name=="Baris")].age', [43.0]),
        ("$.employees[?(@.name=='Mo')].age", [42.0]),
        ("$.employees[?(@.age>42 && @.age<44)].age", [43.0]),
        ("$.employees[?(@.age >= 43)].name", ["Baris", "Jai"]),
        ("$.employees[?(@.name == 'Mo' || @.age == 44)].name", ["Mo", "Jai"]),
        ("$.employees[?(@.age == 44 || @.name == 'Baris')].name", ["Baris", "Jai"]),  # document order
        ("$.employees[0:1]", [{"name": "Baris", "age": 43.0}]),
        ("$.employees[1:]", [{"name": "Mo", "age": 42.0}, {"name": "Jai", "age": 44.0}]),
        ("$.employees[*].name", ["Baris", "Mo", "Jai"]),
        ("$.employees[0,2].name", ["Baris", "Jai"]),
        ("$..name", ["Baris", "Mo", "Jai", "ACME"]),
        ("$.employees[?(@.age > 100)].name", []),
        ("$.employees[?(@.name == 'a&&b')].name", []),  # operators inside strings stay put
    ],
)
def test_jsonpath(path: str, expected: Any) -> None:
    assert jp(path) == expected


def test_jsonpath_numbers_format_like_go() -> None:
    env = {"doc": EMPLOYEES}
    assert evaluate("jsonpath(doc, '$.employees[0].age') + 1", env) == 44.0
    assert format_result(evaluate("jsonpath(doc, '$.employees[0].age')", env)) == "43"


@pytest.mark.parametrize(
    ("path", "doc", "message"),
    [
        ("$.missing", EMPLOYEES, "matched nothing"),
        ("$.employees[9]", EMPLOYEES, "matched nothing"),
        ("$.a", "{not json", "invalid JSON"),
        ("$.a", "NaN", "invalid JSON"),
        ("$[?(", EMPLOYEES, "invalid path"),
    ],
)
def test_jsonpath_errors(path: str, doc: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        jp(path, doc)


def test_jsonpath_needs_strings() -> None:
    with pytest.raises(ExpressionError, match="jsonpath: expected string, got map"):
        evaluate("jsonpath({a: 1}, '$.a')", {})


# ----------------------------------------------------------------------------- sprig


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sprig.trim('  x ')", "x"),
        ("sprig.trimAll('$', '$5.00$')", "5.00"),
        ("sprig.trimPrefix('ab', 'abc')", "c"),
        ("sprig.trimSuffix('bc', 'abc')", "a"),
        ("sprig.upper('abc')", "ABC"),
        ("sprig.lower('ABC')", "abc"),
        ("sprig.title('hello world')", "Hello World"),
        ("sprig.replace('a', 'b', 'banana')", "bbnbnb"),
        ("sprig.contains('an', 'banana')", True),
        ("sprig.hasPrefix('ba', 'banana')", True),
        ("sprig.hasSuffix('na', 'banana')", True),
        ("sprig.repeat(2, 'ab')", "abab"),
        ("sprig.substr(1, 3, 'hello')", "el"),
        ("sprig.trunc(3, 'hello')", "hel"),
        ("sprig.trunc(-3, 'hello')", "llo"),
        ("sprig.nospace('a b\tc')", "abc"),
        ("sprig.quote('a', 1)", '"a" "1"'),
        ("sprig.squote('a')", "'a'"),
        ("sprig.cat('a', 1, nil, true)", "a 1 true"),
        ("sprig.split('$', 'a$b')", {"_0": "a", "_1": "b"}),
        ("sprig.splitList(',', 'a,b')", ["a", "b"]),
        ("sprig.join('-', ['a', 1])", "a-1"),
        ("sprig.toString(1.5)", "1.5"),
        ("sprig.toStrings([1, 'a'])", ["1", "a"]),
        ("sprig.atoi('12')", 12),
        ("sprig.atoi('x')", 0),  # sprig swallows conversion errors
        ("sprig.int('42')", 42),
        ("sprig.int('010')", 8),  # base prefixes, as cast.ToInt
        ("sprig.int('0x10')", 16),
        ("sprig.int('4.0')", 4),
        ("sprig.int('nope')", 0),
        ("sprig.int(3.9)", 3),
        ("sprig.int64(true)", 1),
        ("sprig.float64('2.5')", 2.5),
        ("sprig.float64('x')", 0.0),
        ("sprig.toJson({b: 1, a: '<'})", '{"a":"\\u003c","b":1}'),
        ("sprig.toPrettyJson([1])", "[\n  1\n]"),
        ("sprig.fromJson('[1]')", [1.0]),
        ("sprig.fromJson('{')", None),
        ("sprig.default('d', '')", "d"),
        ("sprig.default('d', 'given')", "given"),
        ("sprig.default('d')", "d"),
        ("sprig.empty([])", True),
        ("sprig.empty(0)", True),
        ("sprig.empty('x')", False),
        ("sprig.coalesce('', nil, 'x')", "x"),
        ("sprig.ternary('y', 'n', true)", "y"),
        ("sprig.list(1, 'a')", [1, "a"]),
        ("sprig.dict('a', 1, 'b')", {"a": 1, "b": ""}),
        ("sprig.first([1, 2])", 1),
        ("sprig.last([1, 2])", 2),
        ("sprig.has(2, [1, 2])", True),
        ("sprig.add(1, '2', 3.7)", 6),
        ("sprig.add1('41')", 42),
        ("sprig.sub(5, 7)", -2),
        ("sprig.mul(2, 3, 4)", 24),
        ("sprig.div(7, 2)", 3),
        ("sprig.div(-7, 2)", -3),
        ("sprig.mod(-7, 3)", -1),
        ("sprig.max(1, 9, 3)", 9),
        ("sprig.min(4, 2)", 2),
        ("sprig.b64enc('hi')", "aGk="),
        ("sprig.b64dec('aGk=')", "hi"),
        ("sprig.sha1sum('hello world')", "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"),
        ("sprig.sha256sum('hello world')", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        ("sprig.regexMatch('^a.c$', 'abc')", True),
        ("sprig.regexFind('[0-9]+', 'ab123cd45')", "123"),
        ("sprig.regexFind('z', 'abc')", ""),
        ("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
    ],
)
def test_sprig(text: str, expected: Any) -> None:
    result = evaluate(text, {})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sprig.div(1, 0)", "sprig.div: integer divide by zero"),
        ("sprig.mod(1, 0)", "sprig.mod: integer divide by zero"),
        ("sprig.regexMatch('(', 'x')", "invalid regular expression"),
        ("sprig.trim()", "sprig.trim: bad arguments"),
        ("sprig.missing", "sprig.missing is not available"),
        ("sprig.toStrings(1)", "expected array"),
    ],
)
def test_sprig_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, {})


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("2006", "2021"),
        ("2006-01-02T15:04:05Z07:00", "2021-03-04T15:06:07-05:30"),
        ("Jan _2 3:04PM", "Mar  4 3:06PM"),
        ("Monday, 02-Jan-06 15:04:05 -0700", "Thursday, 04-Mar-21 15:06:07 -0530"),
        ("2006-01-02 15:04:05.000", "2021-03-04 15:06:07.123"),
        ("1/2/2006 3pm", "3/4/2021 3pm"),
    ],
)
def test_go_time_layouts(layout: str, expected: str) -> None:
    t = datetime(2021, 3, 4, 15, 6, 7, 123456, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert _go_time_format(layout, t) == expected


def test_sprig_date() -> None:
    assert evaluate("sprig.date('2006', 1625097600)", {}) == "2021"  # mid-2021 in every time zone
    # like sprig, a value that is not a time (a string timestamp included) formats the current time
    assert evaluate("sprig.date('2006', '1999-01-01T00:00:00Z')", {}) == str(datetime.now().astimezone().year)


def test_argo_expression_tag_template_example() -> None:
    # examples/expression-tag-template-workflow.yaml
    assert substitute("{{=toJson(filter([1, 3], {# > 1}))}}", {}) == "[3]"
    assert substitute("{{=item}}", {"item": "3"}) == "3"
    assert substitute("hello {{=asInt(inputs.parameters.foo) * 10}}", {"inputs.parameters.foo": "3"}) == "hello 30"


def test_argo_expression_reusing_verbose_snippets_example() -> None:
    # examples/expression-reusing-verbose-snippets.yaml: map() used to name an intermediate value
    scope = {"workflow.parameters.weather": '{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}'}
    week = substitute(
        """{{=
  map([
      jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
    ], {
      toJson({
        avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
        min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
        max: sprig.max(#[0], #[1], #[2], #[3], #[4])
      })
  })[0]
}}""",
        scope,
        strict=True,
    )
    assert week == '{"avg":35.8,"max":57,"min":15}'
    scope = {"inputs.parameters.week-temps": week}
    template = "{{{{=jsonpath(inputs.parameters['week-temps'], '$.{}')}}}}"
    values = [substitute(template.format(k), scope) for k in ("avg", "min", "max")]
    assert values == ["35.8", "15", "57"]

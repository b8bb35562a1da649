"""The value model shared by the expression evaluators: Go-compatible formatting and equality.

Values are plain Python data: None (nil), bool, int, float, str, list, dict. Formatting follows
Go because Argo renders expression results with encoding/json and fmt's %v, and workflows
depend on the exact text ("43", not "43.0").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .errors import ExpressionError, one_line

# ----------------------------------------------------------------------------- type helpers


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def type_name(v: Any) -> str:
    """Go's name for the dynamic type, as expr-lang puts it in its error messages."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if callable(v):
        return "func"
    return type(v).__name__


def fail(message: str) -> ExpressionError:
    return ExpressionError(message)


# What one function or operator may build (characters of a string, items of a list): a short
# expression such as repeat("x", 1e12) or 1..1e12 must fail, not exhaust the daemon's memory.
MAX_BUILT = 1 << 20


def check_built(what: str, size: int) -> None:
    if size > MAX_BUILT:
        raise fail(f"{what}: the result would have {size} elements, over the limit of {MAX_BUILT}")


# ----------------------------------------------------------------------------- Go formatting


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) and the decimal point position."""
    _, digits, exponent = Decimal(repr(abs(f))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    dp = len(digits) + exponent
    if ds == "0":
        dp = 1
    return ds, dp


def _fixed(ds: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + ds
    if dp >= len(ds):
        return ds + "0" * (dp - len(ds))
    return ds[:dp] + "." + ds[dp:]


def _exp(ds: str, dp: int, min_exp_digits: int) -> str:
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    e = dp - 1
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):0{min_exp_digits}d}"


def go_float_v(f: float) -> str:
    """fmt.Sprintf("%v", f): shortest digits, %e when the exponent is < -4 or >= 6 (1e+06)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    ds, dp = _digits(f)
    if f == 0:
        return sign + "0"
    exp = dp - 1
    if exp < -4 or exp >= 6:
        return sign + _exp(ds, dp, 2)
    return sign + _fixed(ds, dp)


def go_float_json(f: float) -> str:
    """encoding/json's float64 text: like %v, but the %e cut-off is 1e-6 and 'e-07' becomes 'e-7'."""
    if math.isnan(f) or math.isinf(f):
        raise fail(f"json: unsupported value: {go_float_v(f)}")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    ds, dp = _digits(f)
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        return sign + _exp(ds, dp, 2).replace("e-0", "e-")
    return sign + _fixed(ds, dp)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 # Go's json.Marshal escapes these so the output is safe inside HTML
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029]')


def _json_string(s: str) -> str:
    def esc(m: re.Match[str]) -> str:
        ch = m.group(0)
        return _JSON_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"

    return '"' + _JSON_NEEDS_ESCAPE.sub(esc, s) + '"'


def go_json(v: Any, indent: str | None = None, _level: int = 0) -> str:
    """json.Marshal (or MarshalIndent with prefix "" and the given indent): sorted map keys."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float_json(v)
    if isinstance(v, str):
        return _json_string(v)
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        items = [go_json(x, indent, _level + 1) for x in v]
        return _join_json("[", "]", items, indent, _level)
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        items = []
        for k in sorted(v, key=str):
            sep = ": " if indent is not None else ":"
            items.append(_json_string(str(k)) + sep + go_json(v[k], indent, _level + 1))
        return _join_json("{", "}", items, indent, _level)
    raise fail(f"json: unsupported type: {type_name(v)}")


def _join_json(open_: str, close: str, items: list[str], indent: str | None, level: int) -> str:
    if indent is None:
        return open_ + ",".join(items) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + indent * level + close


def go_sprint(v: Any) -> str:
    """fmt.Sprintf("%v", v) for the JSON-like values expressions handle."""
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return go_float_v(v)
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k])}" for k in sorted(v, key=str)) + "]"
    return str(v)


def format_result(v: Any) -> str:
    """How Argo writes a value into a template: strings as they are, anything else as Go JSON."""
    if isinstance(v, str):
        return v
    return go_json(v)


def parse_json(text: str) -> Any:
    # Go decodes every JSON number into float64; keep that so arithmetic and formatting match.
    return json.loads(text, parse_int=float, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


# ----------------------------------------------------------------------------- conversions

GO_INT_RE = re.compile(r"[+-]?[0-9]+")
GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE
)


def to_int(x: Any) -> int:
    """expr-lang's int() (Argo's asInt): truncates floats, strconv.Atoi for strings."""
    if is_number(x):
        if isinstance(x, float) and not math.isfinite(x):
            raise fail(f"invalid operation: int({go_sprint(x)})")
        return int(x)
    if isinstance(x, str):
        if GO_INT_RE.fullmatch(x):
            return int(x)
        raise fail(f'invalid operation: int("{one_line(x)}")')
    raise fail(f"invalid operation: int({type_name(x)})")


def to_float(x: Any) -> float:
    """expr-lang's float() (Argo's asFloat): strconv.ParseFloat for strings."""
    if is_number(x):
        return float(x)
    if isinstance(x, str):
        if GO_FLOAT_RE.fullmatch(x):
            return float(x)
        raise fail(f'invalid operation: float("{one_line(x)}")')
    raise fail(f"invalid operation: float({type_name(x)})")


def deep_equal(a: Any, b: Any) -> bool:
    """expr-lang's == : numbers compare by value across int/float, everything else by type and value."""
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return a == b


@lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> re.Pattern[str] | str:
    try:
        return re.compile(pattern)
    except re.error as e:
        return str(e)


def compile_regex(pattern: str, where: str = "matches") -> re.Pattern[str]:
    compiled = _compile_regex(pattern)
    if isinstance(compiled, str):
        raise fail(f'{where}: invalid regular expression "{one_line(pattern)}": {compiled}')
    return compiled

"""Go-compatible value formatting and the functions available to expressions.

Values are plain Python data: None (nil), bool, int, float, str, list, dict. Formatting follows
Go because Argo renders expression results with encoding/json and fmt's %v, and workflows
depend on the exact text ("43", not "43.0").
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
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


# ----------------------------------------------------------------------------- Go formatting


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) and the decimal point position."""
    sign, digits, exponent = Decimal(repr(abs(f))).as_tuple()
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

_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE
)


def to_int(x: Any) -> int:
    """expr-lang's int() (Argo's asInt): truncates floats, strconv.Atoi for strings."""
    if is_number(x):
        if isinstance(x, float) and not math.isfinite(x):
            raise fail(f"invalid operation: int({go_sprint(x)})")
        return int(x)
    if isinstance(x, str):
        if _GO_INT.fullmatch(x):
            return int(x)
        raise fail(f'invalid operation: int("{one_line(x)}")')
    raise fail(f"invalid operation: int({type_name(x)})")


def to_float(x: Any) -> float:
    """expr-lang's float() (Argo's asFloat): strconv.ParseFloat for strings."""
    if is_number(x):
        return float(x)
    if isinstance(x, str):
        if _GO_FLOAT.fullmatch(x):
            return float(x)
        raise fail(f'invalid operation: float("{one_line(x)}")')
    raise fail(f"invalid operation: float({type_name(x)})")


def _need_str(fn: str, *args: Any) -> None:
    for a in args:
        if not isinstance(a, str):
            raise fail(f"{fn}: expected string, got {type_name(a)}")


def _need_list(fn: str, a: Any) -> list:
    if not isinstance(a, (list, tuple)):
        raise fail(f"{fn}: expected array, got {type_name(a)}")
    return list(a)


def _need_int(fn: str, a: Any) -> int:
    if isinstance(a, bool) or not isinstance(a, (int, float)) or (isinstance(a, float) and not a.is_integer()):
        raise fail(f"{fn}: expected integer, got {type_name(a)}")
    return int(a)


# ----------------------------------------------------------------------------- expr-lang builtins


def _len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v)
    raise fail(f"invalid argument for len (type {type_name(v)})")


def _abs(v: Any) -> Any:
    if not is_number(v):
        raise fail(f"invalid argument for abs (type {type_name(v)})")
    return abs(v)


def _round_half_away(v: float) -> float:
    return float(math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1))


def _float_fn(name: str, f: Callable[[float], float]) -> Callable[[Any], float]:
    def fn(v: Any) -> float:
        if not is_number(v):
            raise fail(f"invalid argument for {name} (type {type_name(v)})")
        return float(f(v))
    return fn


def _extreme(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        values = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        if not values:
            raise fail(f"not enough arguments to call {name}")
        for v in values:
            if not is_number(v):
                raise fail(f"invalid argument for {name} (type {type_name(v)})")
        return pick(values)
    return fn


def _sum(arr: Any) -> Any:
    values = _need_list("sum", arr)
    total: Any = 0
    for v in values:
        if not is_number(v):
            raise fail(f"invalid argument for sum (type {type_name(v)})")
        total += v
    return total


def _mean(arr: Any) -> float:
    values = _need_list("mean", arr)
    return float(_sum(values)) / len(values) if values else 0.0


def _median(arr: Any) -> float:
    values = sorted(_need_list("median", arr))
    if not values:
        return 0.0
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _string(v: Any) -> str:
    return go_sprint(v)


def _type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "map"
    return "func" if callable(v) else type(v).__name__


def _from_json(s: Any) -> Any:
    _need_str("fromJSON", s)
    try:
        return parse_json(s)
    except ValueError as e:
        raise fail(f"fromJSON: invalid JSON: {e}") from None


def _to_base64(s: Any) -> str:
    _need_str("toBase64", s)
    return base64.b64encode(s.encode()).decode()


def _from_base64(s: Any) -> str:
    _need_str("fromBase64", s)
    try:
        return base64.b64decode(s.encode(), validate=True).decode()
    except ValueError as e:
        raise fail(f"fromBase64: {e}") from None


def _trim(s: Any, chars: Any = None) -> str:
    _need_str("trim", s)
    if chars is None:
        return s.strip()
    _need_str("trim", chars)
    return s.strip(chars)


def _trim_prefix(s: Any, prefix: Any) -> str:
    _need_str("trimPrefix", s, prefix)
    return s[len(prefix):] if prefix and s.startswith(prefix) else s


def _trim_suffix(s: Any, suffix: Any) -> str:
    _need_str("trimSuffix", s, suffix)
    return s[: len(s) - len(suffix)] if suffix and s.endswith(suffix) else s


def _go_split(fn: str, s: Any, sep: Any, n: Any, after: bool) -> list[str]:
    _need_str(fn, s, sep)
    limit = -1 if n is None else _need_int(fn, n)
    if limit == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < limit < len(chars):
            chars = chars[: limit - 1] + ["".join(chars[limit - 1:])]
        return chars
    parts = s.split(sep, limit - 1) if limit > 0 else s.split(sep)
    if after:
        parts = [p + sep for p in parts[:-1]] + parts[-1:]
    return parts


def _replace(s: Any, old: Any, new: Any) -> str:
    _need_str("replace", s, old, new)
    return s.replace(old, new)


def _repeat(s: Any, n: Any) -> str:
    _need_str("repeat", s)
    count = _need_int("repeat", n)
    if count < 0:
        raise fail("repeat: negative repeat count")
    return s * count


def _index_of(s: Any, sub: Any) -> int:
    _need_str("indexOf", s, sub)
    return s.find(sub)


def _last_index_of(s: Any, sub: Any) -> int:
    _need_str("lastIndexOf", s, sub)
    return s.rfind(sub)


def _join(arr: Any, sep: Any = "") -> str:
    values = _need_list("join", arr)
    _need_str("join", sep, *values)
    return sep.join(values)


def _keys(m: Any) -> list:
    if not isinstance(m, Mapping):
        raise fail(f"keys: expected map, got {type_name(m)}")
    return list(m.keys())


def _values(m: Any) -> list:
    if not isinstance(m, Mapping):
        raise fail(f"values: expected map, got {type_name(m)}")
    return list(m.values())


def _first(arr: Any) -> Any:
    values = _need_list("first", arr)
    return values[0] if values else None


def _last(arr: Any) -> Any:
    values = _need_list("last", arr)
    return values[-1] if values else None


def _take(arr: Any, n: Any) -> list:
    return _need_list("take", arr)[: max(_need_int("take", n), 0)]


def _get(v: Any, key: Any) -> Any:
    if isinstance(v, Mapping):
        return v.get(key) if isinstance(key, str) else None
    if isinstance(v, (list, tuple, str)) and is_number(key):
        i = int(key)
        if i < 0:
            i += len(v)
        return v[i] if 0 <= i < len(v) else None
    return None


def _sort_key(v: Any) -> Any:
    if is_number(v):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    raise fail(f"sort: cannot sort values of type {type_name(v)}")


def _sort(arr: Any, order: Any = "asc") -> list:
    values = _need_list("sort", arr)
    if order not in ("asc", "desc"):
        raise fail('sort: order must be "asc" or "desc"')
    kinds = {_sort_key(v)[0] for v in values}
    if len(kinds) > 1:
        raise fail("sort: cannot sort a mix of numbers and strings")
    return sorted(values, key=_sort_key, reverse=order == "desc")


def _reverse(arr: Any) -> list:
    return list(reversed(_need_list("reverse", arr)))


def _uniq(arr: Any) -> list:
    out: list = []
    for v in _need_list("uniq", arr):
        if not any(deep_equal(v, o) for o in out):
            out.append(v)
    return out


def _concat(*arrays: Any) -> list:
    out: list = []
    for a in arrays:
        out.extend(_need_list("concat", a))
    return out


def _flatten(arr: Any) -> list:
    out: list = []
    for v in _need_list("flatten", arr):
        if isinstance(v, (list, tuple)):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def _to_pairs(m: Any) -> list:
    if not isinstance(m, Mapping):
        raise fail(f"toPairs: expected map, got {type_name(m)}")
    return [[k, v] for k, v in m.items()]


def _from_pairs(arr: Any) -> dict:
    out: dict = {}
    for pair in _need_list("fromPairs", arr):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise fail("fromPairs: expected [key, value] pairs")
        out[pair[0] if isinstance(pair[0], str) else go_sprint(pair[0])] = pair[1]
    return out


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


# ----------------------------------------------------------------------------- Argo additions


def _jsonpath(json_text: Any, path: Any) -> Any:
    _need_str("jsonpath", json_text, path)
    try:
        doc = parse_json(json_text)
    except ValueError as e:
        raise fail(f"jsonpath: invalid JSON: {e}") from None
    return jsonpath_query(doc, path)


@lru_cache(maxsize=512)
def _jp_compile(path: str) -> Any:
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse as jp_parse

    try:
        return jp_parse(path)
    except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError) as e:
        raise fail(f'jsonpath: invalid path "{one_line(path)}": {one_line(str(e))}') from None


def _outside_quotes(path: str) -> list[tuple[int, str]]:
    """(index, char) of the path's characters that are not inside a quoted string."""
    out, quote = [], ""
    for i, ch in enumerate(path):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        else:
            out.append((i, ch))
    return out


def _is_definite(path: str) -> bool:
    """A path that names one location: no wildcard, slice, union, filter or deep scan.

    Argo's JSONPath library (evilmonkeyinc/jsonpath) returns a scalar for these and an array
    for everything else, even when the array has one element.
    """
    depth = 0
    prev = ""
    for _, ch in _outside_quotes(path):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch in "*?" or (ch == "." and prev == "."):
            return False
        elif depth > 0 and ch in ":,":
            return False
        prev = ch
    return True


def _rewrite_filters(path: str) -> list[str]:
    """jsonpath_ng has no `||` in filters and spells `&&` as `&`: rewrite, splitting on `||`.

    Returns the path alternatives whose union is the original query (one per `||` branch).
    """
    chars = dict(_outside_quotes(path))
    out, i = [], 0
    while i < len(path):
        if i in chars and path.startswith("&&", i) and i + 1 in chars:
            out.append("&")
            i += 2
            continue
        if i in chars and path.startswith("||", i) and i + 1 in chars:
            out.append("\0")
            i += 2
            continue
        out.append(path[i])
        i += 1
    rewritten = "".join(out)
    if "\0" not in rewritten:
        return [rewritten]
    # Split every filter "[?( ... )]" that contains an "or" into its branches.
    variants = [""]
    pos = 0
    for m in re.finditer(r"\[\?\((.*?)\)\]", rewritten):
        branches = m.group(1).split("\0")
        variants = [v + rewritten[pos:m.start()] + f"[?({b.strip()})]" for v in variants for b in branches]
        pos = m.end()
    variants = [v + rewritten[pos:] for v in variants]
    if any("\0" in v for v in variants):
        raise fail(f'jsonpath: unsupported "||" in "{one_line(path)}"')
    return variants


def jsonpath_query(doc: Any, path: str) -> Any:
    variants = _rewrite_filters(path)
    if len(variants) == 1:
        matches = _jp_compile(variants[0]).find(doc)
        values = [m.value for m in matches]
    else:
        # Keep document order: walk every candidate once, keep those some branch matched.
        candidates = _jp_compile(re.sub(r"\[\?\(.*?\)\]", "[*]", variants[0])).find(doc)
        hit: set[str] = set()
        for v in variants:
            hit.update(str(m.full_path) for m in _jp_compile(v).find(doc))
        values = [m.value for m in candidates if str(m.full_path) in hit]
    if _is_definite(path):
        if not values:
            raise fail(f'jsonpath: "{one_line(path)}" matched nothing')
        return values[0]
    return values


def _to_json(v: Any) -> str:
    return go_json(v)


# ----------------------------------------------------------------------------- sprig subset


def _strval(v: Any) -> str:
    return v if isinstance(v, str) else go_sprint(v)


def _cast_int(v: Any) -> int:
    """cast.ToInt as sprig uses it: lenient, 0 on failure, base prefixes and octal honoured."""
    if v is None or isinstance(v, (list, tuple, Mapping)):
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v) if math.isfinite(v) else 0
    s = str(v)
    s = re.sub(r"\.0*$", "", s) if re.fullmatch(r"[+-]?[0-9]+\.0*", s) else s
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", s):
            return int(s, 8)
        return int(s, 0)
    except ValueError:
        return 0


def _cast_float(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    if is_number(v):
        return float(v)
    if isinstance(v, str) and _GO_FLOAT.fullmatch(v):
        return float(v)
    return 0.0


def _atoi(s: Any) -> int:
    return int(s) if isinstance(s, str) and _GO_INT.fullmatch(s) else 0


def _empty(v: Any) -> bool:
    if v is None or v is False:
        return True
    if is_number(v):
        return v == 0
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) == 0
    return False


def _sprig_default(default: Any, *given: Any) -> Any:
    if not given or _empty(given[0]):
        return default
    return given[0]


def _sprig_split(sep: Any, s: Any) -> dict:
    return {f"_{i}": part for i, part in enumerate(_strval(s).split(_strval(sep)))}


def _sprig_div(a: Any, b: Any) -> int:
    x, y = _cast_int(a), _cast_int(b)
    if y == 0:
        raise fail("sprig.div: integer divide by zero")
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _sprig_mod(a: Any, b: Any) -> int:
    x, y = _cast_int(a), _cast_int(b)
    if y == 0:
        raise fail("sprig.mod: integer divide by zero")
    return int(math.fmod(x, y))


def _sprig_substr(start: Any, end: Any, s: Any) -> str:
    s, a, b = _strval(s), _cast_int(start), _cast_int(end)
    if a < 0:
        return s[:b] if 0 <= b <= len(s) else s
    if b < 0 or b > len(s):
        return s[a:]
    return s[a:b]


def _sprig_trunc(n: Any, s: Any) -> str:
    s, c = _strval(s), _cast_int(n)
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


def _sprig_from_json(s: Any) -> Any:
    try:
        return parse_json(_strval(s))
    except ValueError:
        return None


def _sprig_dict(*kv: Any) -> dict:
    out: dict = {}
    for i in range(0, len(kv), 2):
        out[_strval(kv[i])] = kv[i + 1] if i + 1 < len(kv) else ""
    return out


def _quote(q: str) -> Callable[..., str]:
    def fn(*args: Any) -> str:
        parts = []
        for a in args:
            if a is None:
                continue
            text = _strval(a)
            parts.append(json.dumps(text, ensure_ascii=False) if q == '"' else f"'{text}'")
        return " ".join(parts)
    return fn


def _b64dec(s: Any) -> str:
    try:
        return base64.b64decode(_strval(s).encode(), validate=True).decode()
    except ValueError as e:
        return str(e)


def _regex(fn: str, pattern: Any) -> re.Pattern[str]:
    return compile_regex(_strval(pattern), fn)


SPRIG: dict[str, Callable[..., Any]] = {
    "trim": lambda s: _strval(s).strip(),
    "trimAll": lambda cut, s: _strval(s).strip(_strval(cut)),
    "trimPrefix": lambda p, s: _trim_prefix(_strval(s), _strval(p)),
    "trimSuffix": lambda p, s: _trim_suffix(_strval(s), _strval(p)),
    "upper": lambda s: _strval(s).upper(),
    "lower": lambda s: _strval(s).lower(),
    "title": lambda s: re.sub(r"\b[a-z]", lambda m: m.group(0).upper(), _strval(s)),
    "replace": lambda old, new, s: _strval(s).replace(_strval(old), _strval(new)),
    "contains": lambda sub, s: _strval(sub) in _strval(s),
    "hasPrefix": lambda p, s: _strval(s).startswith(_strval(p)),
    "hasSuffix": lambda p, s: _strval(s).endswith(_strval(p)),
    "repeat": lambda n, s: _strval(s) * max(_cast_int(n), 0),
    "substr": _sprig_substr,
    "trunc": _sprig_trunc,
    "nospace": lambda s: re.sub(r"\s", "", _strval(s)),
    "quote": _quote('"'),
    "squote": _quote("'"),
    "cat": lambda *a: " ".join(_strval(x) for x in a if x is not None),
    "split": _sprig_split,
    "splitList": lambda sep, s: _strval(s).split(_strval(sep)),
    "join": lambda sep, items: _strval(sep).join(
        _strval(x) for x in (items if isinstance(items, (list, tuple)) else [items])),
    "toString": _strval,
    "toStrings": lambda items: [_strval(x) for x in _need_list("sprig.toStrings", items)],
    "atoi": _atoi,
    "int": _cast_int,
    "int64": _cast_int,
    "float64": _cast_float,
    "toJson": lambda v: go_json(v),
    "toPrettyJson": lambda v: go_json(v, "  "),
    "fromJson": _sprig_from_json,
    "default": _sprig_default,
    "empty": _empty,
    "coalesce": lambda *a: next((x for x in a if not _empty(x)), None),
    "ternary": lambda yes, no, cond: yes if cond is True else no,
    "list": lambda *a: list(a),
    "dict": _sprig_dict,
    "first": lambda items: items[0] if isinstance(items, (list, tuple)) and items else None,
    "last": lambda items: items[-1] if isinstance(items, (list, tuple)) and items else None,
    "has": lambda needle, items: any(deep_equal(needle, x) for x in _need_list("sprig.has", items)),
    "add": lambda *a: sum(_cast_int(x) for x in a),
    "add1": lambda a: _cast_int(a) + 1,
    "sub": lambda a, b: _cast_int(a) - _cast_int(b),
    "mul": lambda a, *rest: math.prod([_cast_int(a), *(_cast_int(x) for x in rest)]),
    "div": _sprig_div,
    "mod": _sprig_mod,
    "max": lambda a, *rest: max(_cast_int(x) for x in (a, *rest)),
    "min": lambda a, *rest: min(_cast_int(x) for x in (a, *rest)),
    "b64enc": lambda s: base64.b64encode(_strval(s).encode()).decode(),
    "b64dec": _b64dec,
    "sha1sum": lambda s: hashlib.sha1(_strval(s).encode()).hexdigest(),
    "sha256sum": lambda s: hashlib.sha256(_strval(s).encode()).hexdigest(),
    "regexMatch": lambda pattern, s: _regex("sprig.regexMatch", pattern).search(_strval(s)) is not None,
    "regexFind": lambda pattern, s: (lambda m: m.group(0) if m else "")(
        _regex("sprig.regexFind", pattern).search(_strval(s))),
    "regexReplaceAll": lambda pattern, s, repl: _regex("sprig.regexReplaceAll", pattern).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", _strval(repl)), _strval(s)),
}


class SprigNamespace:
    """The `sprig` value Argo puts in every expression environment."""

    def __repr__(self) -> str:
        return "sprig"

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return SPRIG[name]
        except KeyError:
            raise fail(f"sprig.{name} is not available (supported: {', '.join(sorted(SPRIG))})") from None


SPRIG_NAMESPACE = SprigNamespace()


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


# name -> function; all take evaluated arguments. Predicate builtins live in the evaluator.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "abs": _abs,
    "ceil": _float_fn("ceil", math.ceil),
    "floor": _float_fn("floor", math.floor),
    "round": _float_fn("round", _round_half_away),
    "max": _extreme("max", max),
    "min": _extreme("min", min),
    "mean": _mean,
    "median": _median,
    "int": to_int,
    "float": to_float,
    "string": _string,
    "type": _type,
    "toJSON": lambda v: go_json(v, "  "),
    "fromJSON": _from_json,
    "toBase64": _to_base64,
    "fromBase64": _from_base64,
    "trim": _trim,
    "trimPrefix": _trim_prefix,
    "trimSuffix": _trim_suffix,
    "upper": lambda s: (_need_str("upper", s), s.upper())[1],
    "lower": lambda s: (_need_str("lower", s), s.lower())[1],
    "split": lambda s, sep, n=None: _go_split("split", s, sep, n, after=False),
    "splitAfter": lambda s, sep, n=None: _go_split("splitAfter", s, sep, n, after=True),
    "replace": _replace,
    "repeat": _repeat,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "hasPrefix": lambda s, p: (_need_str("hasPrefix", s, p), s.startswith(p))[1],
    "hasSuffix": lambda s, p: (_need_str("hasSuffix", s, p), s.endswith(p))[1],
    "join": _join,
    "keys": _keys,
    "values": _values,
    "first": _first,
    "last": _last,
    "take": _take,
    "get": _get,
    "sort": _sort,
    "reverse": _reverse,
    "uniq": _uniq,
    "concat": _concat,
    "flatten": _flatten,
    "toPairs": _to_pairs,
    "fromPairs": _from_pairs,
    # Argo's additions (util/expr/env): asInt/asFloat alias int/float, toJson is compact
    "asInt": to_int,
    "asFloat": to_float,
    "jsonpath": _jsonpath,
    "toJson": _to_json,
}

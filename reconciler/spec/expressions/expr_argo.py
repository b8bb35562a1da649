"""What Argo adds to every expression environment (util/expr/env): asInt, asFloat, jsonpath,
toJson and a `sprig` namespace (a commonly used subset of Masterminds/sprig).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from .errors import one_line
from .expr_builtins import need_list, need_str
from .expr_values import (
    GO_FLOAT_RE,
    GO_INT_RE,
    check_built,
    compile_regex,
    deep_equal,
    fail,
    go_json,
    go_sprint,
    is_number,
    parse_json,
    to_float,
    to_int,
)

# ----------------------------------------------------------------------------- Argo additions


def _jsonpath(json_text: Any, path: Any) -> Any:
    need_str("jsonpath", json_text, path)
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
        elif ch in "*?" or (ch == "." and prev == ".") or depth > 0 and ch in ":,":
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
    if isinstance(v, str) and GO_FLOAT_RE.fullmatch(v):
        return float(v)
    return 0.0


def _atoi(s: Any) -> int:
    return int(s) if isinstance(s, str) and GO_INT_RE.fullmatch(s) else 0


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


def _sprig_repeat(count: int, s: str) -> str:
    check_built("sprig.repeat", len(s) * max(count, 0))
    return s * max(count, 0)


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


# Go reference-time layout tokens, longest first so "2006" wins over "2" and "January" over "Jan".
_GO_LAYOUT = [
    ("January", "%B"), ("Monday", "%A"), ("2006", "%Y"), ("-07:00", "-07:00"), ("-0700", "%z"),
    ("Z07:00", "Z07:00"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("002", "%j"),
    ("01", "%m"), ("02", "%d"), ("_2", "_2"), ("06", "%y"), ("15", "%H"), ("03", "%I"), ("04", "%M"),
    ("05", "%S"), ("PM", "%p"), ("pm", "pm"), (".000000000", ".9"), (".000000", ".6"), (".000", ".3"),
    ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5"),
]
_GO_LAYOUT_RE = re.compile("|".join(re.escape(token) for token, _ in _GO_LAYOUT))
_GO_LAYOUT_MAP = dict(_GO_LAYOUT)


def _go_time_format(layout: str, t: datetime) -> str:
    def one(m: re.Match[str]) -> str:
        code = _GO_LAYOUT_MAP[m.group(0)]
        if code in ("Z07:00", "-07:00"):
            if code == "Z07:00" and t.utcoffset() == timedelta(0):
                return "Z"
            z = t.strftime("%z")  # +hhmm; "%:z" needs Python 3.12
            return z[:3] + ":" + z[3:5]
        if code == "_2":
            return f"{t.day:2d}"
        if code == "pm":
            return t.strftime("%p").lower()
        if code in (".9", ".6", ".3"):
            digits = {".9": 9, ".6": 6, ".3": 3}[code]
            return "." + f"{t.microsecond:06d}000"[:digits]
        if code in ("1", "2", "3", "4", "5"):
            return str({"1": t.month, "2": t.day, "3": t.hour % 12 or 12, "4": t.minute, "5": t.second}[code])
        return t.strftime(code)

    return _GO_LAYOUT_RE.sub(one, layout)


def _sprig_date(layout: Any, date: Any) -> str:
    # sprig formats time values and Unix seconds; anything else (a string included) means "now"
    if is_number(date):
        t = datetime.fromtimestamp(float(date)).astimezone()
    else:
        t = datetime.now().astimezone()
    return _go_time_format(_strval(layout), t)


def _b64dec(s: Any) -> str:
    try:
        return base64.b64decode(_strval(s).encode(), validate=True).decode()
    except ValueError as e:
        return str(e)


def _regex(fn: str, pattern: Any) -> re.Pattern[str]:
    return compile_regex(_strval(pattern), fn)


def _regex_find(pattern: Any, s: Any) -> str:
    m = _regex("sprig.regexFind", pattern).search(_strval(s))
    return m.group(0) if m else ""


SPRIG: dict[str, Callable[..., Any]] = {
    "trim": lambda s: _strval(s).strip(),
    "trimAll": lambda cut, s: _strval(s).strip(_strval(cut)),
    "trimPrefix": lambda p, s: _strval(s).removeprefix(_strval(p)),
    "trimSuffix": lambda p, s: _strval(s).removesuffix(_strval(p)),
    "upper": lambda s: _strval(s).upper(),
    "lower": lambda s: _strval(s).lower(),
    "title": lambda s: re.sub(r"\b[a-z]", lambda m: m.group(0).upper(), _strval(s)),
    "replace": lambda old, new, s: _strval(s).replace(_strval(old), _strval(new)),
    "contains": lambda sub, s: _strval(sub) in _strval(s),
    "hasPrefix": lambda p, s: _strval(s).startswith(_strval(p)),
    "hasSuffix": lambda p, s: _strval(s).endswith(_strval(p)),
    "repeat": lambda n, s: _sprig_repeat(_cast_int(n), _strval(s)),
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
    "toStrings": lambda items: [_strval(x) for x in need_list("sprig.toStrings", items)],
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
    "has": lambda needle, items: any(deep_equal(needle, x) for x in need_list("sprig.has", items)),
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
    "regexFind": _regex_find,
    "regexReplaceAll": lambda pattern, s, repl: _regex("sprig.regexReplaceAll", pattern).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", _strval(repl)), _strval(s)),
    "date": _sprig_date,
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


# Argo's aliases: asInt/asFloat are expr-lang's int/float, toJson is compact json.Marshal.
ARGO_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "asInt": to_int,
    "asFloat": to_float,
    "jsonpath": _jsonpath,
    "toJson": _to_json,
}

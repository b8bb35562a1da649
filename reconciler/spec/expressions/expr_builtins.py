"""expr-lang's builtin functions (len, int, split, toJSON, ...) over plain Python values.

Predicate builtins (filter, map, all, ...) need the evaluator and live in expr.py.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from typing import Any

from .expr_values import (
    check_built,
    deep_equal,
    fail,
    go_json,
    go_sprint,
    is_number,
    parse_json,
    to_float,
    to_int,
    type_name,
)


def need_str(fn: str, *args: Any) -> None:
    for a in args:
        if not isinstance(a, str):
            raise fail(f"{fn}: expected string, got {type_name(a)}")


def need_list(fn: str, a: Any) -> list:
    if not isinstance(a, (list, tuple)):
        raise fail(f"{fn}: expected array, got {type_name(a)}")
    return list(a)


def need_int(fn: str, a: Any) -> int:
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
    values = need_list("sum", arr)
    total: Any = 0
    for v in values:
        if not is_number(v):
            raise fail(f"invalid argument for sum (type {type_name(v)})")
        total += v
    return total


def _mean(arr: Any) -> float:
    values = need_list("mean", arr)
    return float(_sum(values)) / len(values) if values else 0.0


def _median(arr: Any) -> float:
    values = sorted(need_list("median", arr))
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
    need_str("fromJSON", s)
    try:
        return parse_json(s)
    except ValueError as e:
        raise fail(f"fromJSON: invalid JSON: {e}") from None


def _to_base64(s: Any) -> str:
    need_str("toBase64", s)
    return base64.b64encode(s.encode()).decode()


def _from_base64(s: Any) -> str:
    need_str("fromBase64", s)
    try:
        return base64.b64decode(s.encode(), validate=True).decode()
    except ValueError as e:
        raise fail(f"fromBase64: {e}") from None


def _trim(s: Any, chars: Any = None) -> str:
    need_str("trim", s)
    if chars is None:
        return s.strip()
    need_str("trim", chars)
    return s.strip(chars)


def _trim_prefix(s: Any, prefix: Any) -> str:
    need_str("trimPrefix", s, prefix)
    return s[len(prefix):] if prefix and s.startswith(prefix) else s


def _trim_suffix(s: Any, suffix: Any) -> str:
    need_str("trimSuffix", s, suffix)
    return s[: len(s) - len(suffix)] if suffix and s.endswith(suffix) else s


def _go_split(fn: str, s: Any, sep: Any, n: Any, after: bool) -> list[str]:
    need_str(fn, s, sep)
    limit = -1 if n is None else need_int(fn, n)
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
    need_str("replace", s, old, new)
    return s.replace(old, new)


def _repeat(s: Any, n: Any) -> str:
    need_str("repeat", s)
    count = need_int("repeat", n)
    if count < 0:
        raise fail("repeat: negative repeat count")
    check_built("repeat", len(s) * count)
    return s * count


def _index_of(s: Any, sub: Any) -> int:
    need_str("indexOf", s, sub)
    return s.find(sub)


def _last_index_of(s: Any, sub: Any) -> int:
    need_str("lastIndexOf", s, sub)
    return s.rfind(sub)


def _join(arr: Any, sep: Any = "") -> str:
    values = need_list("join", arr)
    need_str("join", sep, *values)
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
    values = need_list("first", arr)
    return values[0] if values else None


def _last(arr: Any) -> Any:
    values = need_list("last", arr)
    return values[-1] if values else None


def _take(arr: Any, n: Any) -> list:
    return need_list("take", arr)[: max(need_int("take", n), 0)]


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
    values = need_list("sort", arr)
    if order not in ("asc", "desc"):
        raise fail('sort: order must be "asc" or "desc"')
    kinds = {_sort_key(v)[0] for v in values}
    if len(kinds) > 1:
        raise fail("sort: cannot sort a mix of numbers and strings")
    return sorted(values, key=_sort_key, reverse=order == "desc")


def _reverse(arr: Any) -> list:
    return list(reversed(need_list("reverse", arr)))


def _uniq(arr: Any) -> list:
    out: list = []
    for v in need_list("uniq", arr):
        if not any(deep_equal(v, o) for o in out):
            out.append(v)
    return out


def _concat(*arrays: Any) -> list:
    out: list = []
    for a in arrays:
        out.extend(need_list("concat", a))
    return out


def _flatten(arr: Any) -> list:
    out: list = []
    for v in need_list("flatten", arr):
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
    for pair in need_list("fromPairs", arr):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise fail("fromPairs: expected [key, value] pairs")
        out[pair[0] if isinstance(pair[0], str) else go_sprint(pair[0])] = pair[1]
    return out


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
    "upper": lambda s: (need_str("upper", s), s.upper())[1],
    "lower": lambda s: (need_str("lower", s), s.lower())[1],
    "split": lambda s, sep, n=None: _go_split("split", s, sep, n, after=False),
    "splitAfter": lambda s, sep, n=None: _go_split("splitAfter", s, sep, n, after=True),
    "replace": _replace,
    "repeat": _repeat,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "hasPrefix": lambda s, p: (need_str("hasPrefix", s, p), s.startswith(p))[1],
    "hasSuffix": lambda s, p: (need_str("hasSuffix", s, p), s.endswith(p))[1],
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
}

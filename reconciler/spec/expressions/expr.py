"""Evaluator for the expr-lang subset Argo uses ({{=...}}, valueFrom.expression, fromExpression,
retryStrategy.expression, lifecycle hook expressions).

Expressions are parsed once (expr_parser), compiled to nested Python closures and cached, so the
per-node cost is a handful of function calls. Runtime semantics follow expr-lang's VM helpers
(vm/runtime): int/float promotion, `/` always float, `%` only on integers, == across numeric
types, missing map keys are nil, fetching from nil is an error unless `?.` is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .errors import ExpressionError, one_line
from .expr_argo import ARGO_FUNCTIONS, SPRIG_NAMESPACE, SprigNamespace
from .expr_builtins import FUNCTIONS as _CORE_FUNCTIONS
from .expr_parser import PREDICATE_BUILTINS, Node, parse
from .expr_values import check_built, compile_regex, deep_equal, fail, go_sprint, is_number, type_name

Program = Callable[["Ctx"], Any]
FUNCTIONS = {**_CORE_FUNCTIONS, **ARGO_FUNCTIONS}

__all__ = ["compile_expression", "evaluate"]


class Ctx:
    """Evaluation context: the environment plus let-bound names and predicate pointers (#)."""

    __slots__ = ("env", "vars")

    def __init__(self, env: Mapping[str, Any], vars_: dict[str, Any] | None = None) -> None:
        self.env = env
        self.vars = vars_

    def bind(self, **kw: Any) -> Ctx:
        merged = dict(self.vars) if self.vars else {}
        merged.update(kw)
        return Ctx(self.env, merged)


class _NilChain(Exception):
    """Raised by `a?.b` when `a` is nil; the enclosing chain turns it into nil."""


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate an expr-lang expression against a (nested) environment.

    Unknown top-level names are an error (Argo compiles with the environment, so expr-lang
    rejects them); missing keys inside maps are nil. Raises ExpressionError naming the text.
    """
    program = compile_expression(text)
    try:
        return program(Ctx(env))
    except ExpressionError as e:
        raise ExpressionError(f'{e} in expression "{one_line(text)}"', text=text) from None
    except RecursionError:
        raise ExpressionError(f'expression too deeply nested: "{one_line(text)}"', text=text) from None


@lru_cache(maxsize=2048)
def compile_expression(text: str) -> Program:
    """Parse and compile once; ExpressionError on a syntax error."""
    try:
        tree = parse(text)
        return _compile(tree)
    except RecursionError:
        raise ExpressionError(f'expression too deeply nested: "{one_line(text)}"', text=text) from None
    except ExpressionError as e:
        if e.text is not None:
            raise
        raise ExpressionError(f'{e} in expression "{one_line(text)}"', text=text) from None


# ----------------------------------------------------------------------------- runtime helpers


def fetch(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        if isinstance(key, str):
            return obj.get(key)
        raise fail(f"cannot use {type_name(key)} as a key of {type_name(obj)}")
    if isinstance(obj, (list, tuple, str)):
        if not is_number(key):
            raise fail(f"cannot fetch {go_sprint(key)} from {type_name(obj)}")
        i = int(key)
        n = len(obj)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise fail(f"index out of range: {go_sprint(key)} (array length is {n})")
        return obj[i]
    if isinstance(obj, SprigNamespace) and isinstance(key, str):
        return obj.get(key)
    raise fail(f"cannot fetch {go_sprint(key)} from {type_name(obj)}")


def _slice(obj: Any, lo: Any, hi: Any) -> Any:
    if not isinstance(obj, (list, tuple, str)):
        raise fail(f"cannot slice {type_name(obj)}")
    n = len(obj)
    a = 0 if lo is None else _index(lo)
    b = n if hi is None else _index(hi)
    if a < 0:
        a = max(a + n, 0)
    if b < 0:
        b = max(b + n, 0)
    b = min(b, n)
    a = min(a, b)
    return obj[a:b] if isinstance(obj, str) else list(obj[a:b])


def _index(v: Any) -> int:
    if not is_number(v):
        raise fail(f"cannot use {type_name(v)} as a slice index")
    return int(v)


def _bad(op: str, a: Any, b: Any) -> ExpressionError:
    return fail(f"invalid operation: {type_name(a)} {op} {type_name(b)}")


def _add(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    raise _bad("+", a, b)


def _arith(op: str, f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if is_number(a) and is_number(b):
            return f(a, b)
        raise _bad(op, a, b)
    return run


def _div(a: Any, b: Any) -> float:
    x, y = float(a), float(b)
    if y == 0:
        # Go float division by zero gives ±Inf or NaN rather than failing
        return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _mod(a: Any, b: Any) -> int:
    if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool) or isinstance(b, bool):
        raise _bad("%", a, b)
    if b == 0:
        raise fail("integer divide by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r  # Go's remainder takes the dividend's sign


def _pow(a: Any, b: Any) -> float:
    try:
        return math.pow(float(a), float(b))
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def _compare(op: str, f: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return f(a, b)
        raise _bad(op, a, b)
    return run


def _in(needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    if isinstance(haystack, (list, tuple)):
        return any(deep_equal(x, needle) for x in haystack)
    if isinstance(haystack, Mapping):
        if not isinstance(needle, str):
            raise fail(f"cannot use {type_name(needle)} as a key of {type_name(haystack)}")
        return needle in haystack
    raise fail(f'operator "in" not defined on {type_name(haystack)}')


def _strings(op: str, f: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return f(a, b)
        raise _bad(op, a, b)
    return run


def _range(a: Any, b: Any) -> list[int]:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        check_built("..", b + 1 - a)
        return list(range(a, b + 1))
    raise _bad("..", a, b)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _arith("-", lambda a, b: a - b),
    "*": _arith("*", lambda a, b: a * b),
    "/": _arith("/", _div),
    "%": _mod,
    "**": _arith("**", _pow),
    "^": _arith("^", _pow),
    "==": deep_equal,
    "!=": lambda a, b: not deep_equal(a, b),
    "<": _compare("<", lambda a, b: a < b),
    ">": _compare(">", lambda a, b: a > b),
    "<=": _compare("<=", lambda a, b: a <= b),
    ">=": _compare(">=", lambda a, b: a >= b),
    "in": _in,
    "matches": _strings("matches", lambda a, b: compile_regex(b).search(a) is not None),
    "contains": _strings("contains", lambda a, b: b in a),
    "startsWith": _strings("startsWith", lambda a, b: a.startswith(b)),
    "endsWith": _strings("endsWith", lambda a, b: a.endswith(b)),
    "..": _range,
}


def _need_bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise fail(f"{what} needs a bool, got {type_name(v)} ({go_sprint(v)})")
    return v


def _call(fn: Any, args: list[Any], name: str) -> Any:
    if not callable(fn):
        raise fail(f"{name} is not a function ({type_name(fn)})")
    try:
        return fn(*args)
    except ExpressionError:
        raise
    except TypeError as e:
        raise fail(f"{name}: bad arguments ({e})") from None
    except (ValueError, ArithmeticError, IndexError, KeyError) as e:
        raise fail(f"{name}: {e}") from None


# ----------------------------------------------------------------------------- compiler


def _compile(node: Node) -> Program:
    kind = node[0]
    return _COMPILERS[kind](node)


def _c_lit(node: Node) -> Program:
    value = node[1]
    return lambda c: value


def _c_name(node: Node) -> Program:
    name = node[1]

    def run(c: Ctx) -> Any:
        if c.vars is not None and name in c.vars:
            return c.vars[name]
        env = c.env
        if name in env:
            return env[name]
        if name == "$env":
            return env
        if name == "sprig":
            return SPRIG_NAMESPACE
        raise fail(f"unknown name {name}")
    return run


def _c_ptr(node: Node) -> Program:
    key = "#" + node[1]

    def run(c: Ctx) -> Any:
        if c.vars is None or key not in c.vars:
            raise fail(f"{key} is only available inside a predicate")
        return c.vars[key]
    return run


def _c_member(node: Node) -> Program:
    obj, key, optional = _compile(node[1]), _compile(node[2]), node[3]

    def run(c: Ctx) -> Any:
        o = obj(c)
        if o is None:
            if optional:
                raise _NilChain
            raise fail(f"cannot fetch {go_sprint(key(c))} from <nil>")
        return fetch(o, key(c))
    return run


def _c_chain(node: Node) -> Program:
    inner = _compile(node[1])

    def run(c: Ctx) -> Any:
        try:
            return inner(c)
        except _NilChain:
            return None
    return run


def _c_slice(node: Node) -> Program:
    obj = _compile(node[1])
    lo = _compile(node[2]) if node[2] is not None else None
    hi = _compile(node[3]) if node[3] is not None else None
    return lambda c: _slice(obj(c), lo(c) if lo else None, hi(c) if hi else None)


def _c_unary(node: Node) -> Program:
    op, operand = node[1], _compile(node[2])
    if op in ("not", "!"):
        return lambda c: not _need_bool(operand(c), f'operator "{op}"')

    def run(c: Ctx) -> Any:
        v = operand(c)
        if not is_number(v):
            raise fail(f"invalid operation: {op}{type_name(v)}")
        return -v if op == "-" else v
    return run


def _c_binary(node: Node) -> Program:
    op, left, right = node[1], _compile(node[2]), _compile(node[3])
    if op in ("and", "&&"):
        return lambda c: right(c) if _need_bool(left(c), f'operator "{op}"') else False
    if op in ("or", "||"):
        return lambda c: True if _need_bool(left(c), f'operator "{op}"') else right(c)
    if op == "??":
        def coalesce(c: Ctx) -> Any:
            v = left(c)
            return right(c) if v is None else v
        return coalesce
    f = _BINARY[op]
    return lambda c: f(left(c), right(c))


def _c_cond(node: Node) -> Program:
    cond, yes, no = _compile(node[1]), _compile(node[2]), _compile(node[3])
    return lambda c: yes(c) if _need_bool(cond(c), "ternary operator") else no(c)


def _c_array(node: Node) -> Program:
    items = [_compile(x) for x in node[1]]
    return lambda c: [f(c) for f in items]


def _c_map(node: Node) -> Program:
    pairs = [(_compile(k), _compile(v)) for k, v in node[1]]

    def run(c: Ctx) -> dict:
        out = {}
        for k, v in pairs:
            key = k(c)
            if not isinstance(key, str):
                raise fail(f"a map key must be a string, got {type_name(key)}")
            out[key] = v(c)
        return out
    return run


def _c_let(node: Node) -> Program:
    name, value, body = node[1], _compile(node[2]), _compile(node[3])
    return lambda c: body(c.bind(**{name: value(c)}))


def _c_closure(node: Node) -> Program:
    raise fail("a predicate is only allowed as an argument of a builtin such as filter()")


def _c_call(node: Node) -> Program:
    callee, arg_nodes = node[1], node[2]
    if callee[0] == "name" and callee[1] in PREDICATE_BUILTINS:
        return _compile_predicate_call(callee[1], arg_nodes)
    args = [_compile(a) for a in arg_nodes]
    if callee[0] == "name":
        name = callee[1]

        def call_name(c: Ctx) -> Any:
            if c.vars is not None and name in c.vars:
                fn = c.vars[name]
            elif name in c.env and callable(c.env[name]):
                fn = c.env[name]
            elif name in FUNCTIONS:
                fn = FUNCTIONS[name]
            elif name in c.env:
                raise fail(f"{name} is not a function ({type_name(c.env[name])})")
            else:
                raise fail(f"unknown function {name}()")
            return _call(fn, [a(c) for a in args], name)
        return call_name
    target = _compile(callee)
    label = _describe(callee)
    return lambda c: _call(target(c), [a(c) for a in args], label)


def _describe(node: Node) -> str:
    if node[0] == "name":
        return node[1]
    if node[0] == "member" and node[2][0] == "lit":
        return f"{_describe(node[1])}.{node[2][1]}"
    return "function"


def _compile_predicate_call(name: str, arg_nodes: list[Node]) -> Program:
    if len(arg_nodes) < 2 and name not in ("count", "sum"):
        raise fail(f"{name}() needs an array and a predicate")
    source = _compile(arg_nodes[0])
    body = _compile(arg_nodes[1][1]) if len(arg_nodes) > 1 and arg_nodes[1][0] == "closure" else None
    extra = [_compile(a) for a in arg_nodes[2:]]
    impl = _PREDICATES[name]

    def run(c: Ctx) -> Any:
        items = source(c)
        if not isinstance(items, (list, tuple)):
            raise fail(f"{name}() expects an array, got {type_name(items)}")

        def apply(i: int, x: Any, **more: Any) -> Any:
            if body is None:
                return x
            return body(c.bind(**{"#": x, "#index": i}, **more))
        return impl(list(items), apply, [e(c) for e in extra])
    return run


def _pred_bool(name: str, apply: Callable[..., Any], i: int, x: Any) -> bool:
    return _need_bool(apply(i, x), f"{name}() predicate")


def _p_reduce(items: list, apply: Callable[..., Any], extra: list) -> Any:
    if extra:
        acc, start = extra[0], 0
    elif items:
        acc, start = items[0], 1
    else:
        raise fail("reduce() of an empty array needs an initial value")
    for i in range(start, len(items)):
        acc = apply(i, items[i], **{"#acc": acc})
    return acc


def _p_group_by(items: list, apply: Callable[..., Any], extra: list) -> dict:
    out: dict = {}
    for i, x in enumerate(items):
        key = apply(i, x)
        out.setdefault(key if isinstance(key, str) else go_sprint(key), []).append(x)
    return out


def _p_sort_by(items: list, apply: Callable[..., Any], extra: list) -> list:
    order = extra[0] if extra else "asc"
    if order not in ("asc", "desc"):
        raise fail('sortBy(): order must be "asc" or "desc"')
    keyed = [(apply(i, x), x) for i, x in enumerate(items)]
    kinds = {("n" if is_number(k) else "s" if isinstance(k, str) else "?") for k, _ in keyed}
    if "?" in kinds or len(kinds) > 1:
        raise fail("sortBy(): keys must all be numbers or all be strings")
    keyed.sort(key=lambda kx: kx[0], reverse=order == "desc")
    return [x for _, x in keyed]


def _p_sum(items: list, apply: Callable[..., Any], extra: list) -> Any:
    total: Any = 0
    for i, x in enumerate(items):
        v = apply(i, x)
        if not is_number(v):
            raise fail(f"sum(): cannot add {type_name(v)}")
        total += v
    return total


_PREDICATES: dict[str, Callable[[list, Callable[..., Any], list], Any]] = {
    "all": lambda xs, ap, ex: all(_pred_bool("all", ap, i, x) for i, x in enumerate(xs)),
    "any": lambda xs, ap, ex: any(_pred_bool("any", ap, i, x) for i, x in enumerate(xs)),
    "none": lambda xs, ap, ex: not any(_pred_bool("none", ap, i, x) for i, x in enumerate(xs)),
    "one": lambda xs, ap, ex: sum(_pred_bool("one", ap, i, x) for i, x in enumerate(xs)) == 1,
    "filter": lambda xs, ap, ex: [x for i, x in enumerate(xs) if _pred_bool("filter", ap, i, x)],
    "map": lambda xs, ap, ex: [ap(i, x) for i, x in enumerate(xs)],
    "count": lambda xs, ap, ex: sum(1 for i, x in enumerate(xs) if _pred_bool("count", ap, i, x)),
    "find": lambda xs, ap, ex: next((x for i, x in enumerate(xs) if _pred_bool("find", ap, i, x)), None),
    "findIndex": lambda xs, ap, ex: next(
        (i for i, x in enumerate(xs) if _pred_bool("findIndex", ap, i, x)), -1),
    "findLast": lambda xs, ap, ex: next(
        (x for i, x in reversed(list(enumerate(xs))) if _pred_bool("findLast", ap, i, x)), None),
    "findLastIndex": lambda xs, ap, ex: next(
        (i for i, x in reversed(list(enumerate(xs))) if _pred_bool("findLastIndex", ap, i, x)), -1),
    "groupBy": _p_group_by,
    "reduce": _p_reduce,
    "sum": _p_sum,
    "sortBy": _p_sort_by,
}

_COMPILERS: dict[str, Callable[[Node], Program]] = {
    "lit": _c_lit,
    "name": _c_name,
    "ptr": _c_ptr,
    "member": _c_member,
    "chain": _c_chain,
    "slice": _c_slice,
    "unary": _c_unary,
    "binary": _c_binary,
    "cond": _c_cond,
    "array": _c_array,
    "map": _c_map,
    "let": _c_let,
    "closure": _c_closure,
    "call": _c_call,
}

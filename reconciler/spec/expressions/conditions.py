"""`when:` conditions, evaluated as Argo's shouldExecute does: with govaluate, after substitution.

Argo lexes the substituted text with github.com/Knetic/govaluate, turns every variable token into
a string (so `heads == tails` compares two strings without quotes) and evaluates the result,
which must be a bool. This module reproduces that lexer (including its quirks: symbol runs such
as `==-` are one invalid token, a double-quoted string ends at a single quote too, a bare word
with a dot is a field accessor and fails), its precedence levels and its runtime type checks.
Quoted date strings, which govaluate turns into Unix times, stay strings here.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from .errors import ExpressionError, one_line
from .expr_values import compile_regex, go_sprint

__all__ = ["evaluate_when"]

_PREFIX = frozenset({"-", "!", "~"})
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"?", ":", "??"}),
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"}),
    frozenset({"&", "|", "^"}),
    frozenset({"<<", ">>"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
    frozenset({"**"}),
)
_OPERATORS = frozenset().union(*_LEVELS)


def evaluate_when(text: str) -> bool:
    """True when a substituted `when` condition holds; "" means no condition (True).

    Raises ExpressionError for text govaluate cannot parse or that is not boolean.
    """
    if text == "":
        return True
    return _evaluate(text)


@lru_cache(maxsize=2048)
def _evaluate(text: str) -> bool:
    # With every variable turned into a string the result depends on the text alone.
    try:
        tree = _Parser(text).parse()
        result = _eval(tree)
    except _WhenError as e:
        raise ExpressionError(f"Invalid 'when' expression '{one_line(text)}': {e}", text=text) from None
    except RecursionError:
        raise ExpressionError(f"Invalid 'when' expression '{one_line(text)}': nested too deeply", text=text) from None
    if not isinstance(result, bool):
        raise ExpressionError(
            f"Expected boolean evaluation for '{one_line(text)}'. Got {_show(result)}", text=text)
    return result


class _WhenError(Exception):
    pass


def _show(v: Any) -> str:
    return go_sprint(v)


# ----------------------------------------------------------------------------- lexer


def _is_numeric(ch: str) -> bool:
    return ch.isdigit() or ch == "."


def _is_variable_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_."


def _is_symbol_char(ch: str) -> bool:
    return not (ch.isalnum() or ch in "()'\"")


def _read_run(text: str, i: int, ok: Any) -> tuple[str, int]:
    """govaluate's readTokenUntilFalse: take chars while ok(ch), stopping at whitespace."""
    j = i
    out = []
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text):
            out.append(text[j + 1])
            j += 2
            continue
        if ch.isspace() or not ok(ch):
            break
        out.append(ch)
        j += 1
    return "".join(out), j


def _read_until(text: str, i: int, stop: str) -> tuple[str, int]:
    """Read up to (not including) any char of stop, honouring backslash escapes."""
    out = []
    j = i
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text):
            out.append(text[j + 1])
            j += 2
            continue
        if ch in stop:
            return "".join(out), j
        out.append(ch)
        j += 1
    raise _WhenError("Unclosed string literal" if stop != "]" else "Unclosed parameter bracket")


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        after_value = bool(tokens) and tokens[-1][0] in ("value", ")")
        if _is_numeric(ch):
            if ch == "0" and i + 1 < n and text[i + 1] in "xX":
                digits, i = _read_run(text, i + 2, lambda c: c in "0123456789abcdefABCDEF")
                try:
                    tokens.append(("value", float(int(digits, 16))))
                except ValueError:
                    raise _WhenError(f"Unable to parse hex value '{digits}' to uint64") from None
                continue
            word, i = _read_run(text, i, _is_numeric)
            try:
                tokens.append(("value", float(word)))
            except ValueError:
                raise _WhenError(f"Unable to parse numeric value '{word}' to float64") from None
            continue
        if ch == ",":
            tokens.append((",", ","))
            i += 1
            continue
        if ch == "[":
            word, i = _read_until(text, i + 1, "]")
            tokens.append(("value", word))  # an escaped variable: Argo makes it a string
            i += 1
            continue
        if ch.isalpha():
            word, i = _read_run(text, i, _is_variable_char)
            if word in ("true", "false"):
                tokens.append(("value", word == "true"))
            elif word in ("in", "IN"):
                tokens.append(("op", "in"))
            elif "." in word:
                # govaluate reads a.b as a field accessor; Argo only turns plain variables into
                # strings, so the accessor is evaluated and fails for lack of parameters.
                raise _WhenError(f"'{word}' is read as a parameter accessor; quote it to compare it as a string")
            else:
                tokens.append(("value", word))
            continue
        if ch in "'\"":
            word, i = _read_until(text, i + 1, "'\"")
            tokens.append(("value", word))
            i += 1
            continue
        if ch in "()":
            tokens.append((ch, ch))
            i += 1
            continue
        word, i = _read_run(text, i, _is_symbol_char)
        if not after_value and word in _PREFIX:
            tokens.append(("prefix", word))
        elif word in _OPERATORS:
            tokens.append(("op", word))
        else:
            raise _WhenError(f"Invalid token: '{word}'")
    return tokens


# ----------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> tuple:
        if not self.tokens:
            raise _WhenError("empty expression")
        tree = self.parse_separated()
        tok = self.peek()
        if tok is not None:
            raise _WhenError(f"unexpected {tok[1]!r}" if tok[0] != ")" else "Unbalanced parenthesis")
        return tree

    def parse_separated(self) -> tuple:
        tree = self.parse_level(0)
        while (tok := self.peek()) is not None and tok[0] == ",":
            self.pos += 1
            tree = (",", tree, self.parse_level(0))
        return tree

    def parse_level(self, level: int) -> tuple:
        if level == len(_LEVELS):
            return self.parse_unary()
        tree = self.parse_level(level + 1)
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in _LEVELS[level]:
            self.pos += 1
            tree = (tok[1], tree, self.parse_level(level + 1))
        return tree

    def parse_unary(self) -> tuple:
        tok = self.peek()
        if tok is None:
            raise _WhenError("Unexpected end of expression")
        self.pos += 1
        if tok[0] == "prefix":
            return ("prefix" + tok[1], self.parse_unary())
        if tok[0] == "value":
            return ("lit", tok[1])
        if tok[0] == "(":
            inner = self.parse_separated()
            if self.peek() is None or self.peek()[0] != ")":
                raise _WhenError("Unbalanced parenthesis")
            self.pos += 1
            return inner
        raise _WhenError(f"unexpected {tok[1]!r}")


# ----------------------------------------------------------------------------- evaluation


def _is_num(v: Any) -> bool:
    return isinstance(v, float)


def _type_error(v: Any, kind: str, op: str, want: str) -> _WhenError:
    return _WhenError(f"Value '{_show(v)}' cannot be used with the {kind} '{op}', it is not a {want}")


def _numbers(op: str, a: Any, b: Any) -> None:
    for v in (a, b):
        if not _is_num(v):
            raise _type_error(v, "modifier", op, "number")


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        if _is_num(a) and _is_num(b):
            return a + b
        if isinstance(a, str) or isinstance(b, str):
            return _show(a) + _show(b)
        # govaluate's combined type checks report the left operand
        raise _type_error(a, "modifier", op, "number")
    _numbers(op, a, b)
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    if op == "**":
        try:
            return math.pow(a, b)
        except OverflowError:
            return math.inf
        except ValueError:
            return math.nan
    x, y = int(a), int(b)
    if op == "&":
        return float(x & y)
    if op == "|":
        return float(x | y)
    if op == "^":
        return float(x ^ y)
    if op == "<<":
        return float(x << y) if y >= 0 else 0.0
    return float(x >> y) if y >= 0 else float(-1 if x < 0 else 0)


def _equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _compare(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("=~", "!~"):
        if not isinstance(a, str):
            raise _type_error(a, "comparator", op, "string")
        if not isinstance(b, str):
            raise _type_error(b, "comparator", op, "string")
        try:
            found = compile_regex(b, "=~").search(a) is not None
        except ExpressionError as e:
            raise _WhenError(str(e)) from None
        return found if op == "=~" else not found
    if op == "in":
        if not isinstance(b, list):
            raise _type_error(b, "comparator", op, "array")
        return any(_equal(a, x) for x in b)
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise _type_error(a, "comparator", op, "number")
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def _need_bool(v: Any, kind: str, op: str) -> bool:
    if not isinstance(v, bool):
        raise _type_error(v, kind, op, "bool")
    return v


def _eval(node: tuple) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind.startswith("prefix"):
        op, v = kind[6:], _eval(node[1])
        if op == "!":
            return not _need_bool(v, "prefix", op)
        if not _is_num(v):
            raise _WhenError(f"Value '{_show(v)}' cannot be used with the prefix '{op}'")
        return -v if op == "-" else float(~int(v))
    if kind == ",":
        left, right = _eval(node[1]), _eval(node[2])
        return [*left, right] if isinstance(left, list) else [left, right]
    left = _eval(node[1])
    if kind == "&&":
        if left is False:
            return False
        right = _eval(node[2])
        return _need_bool(left, "logical operator", kind) and _need_bool(right, "logical operator", kind)
    if kind == "||":
        if left is True:
            return True
        right = _eval(node[2])
        return _need_bool(left, "logical operator", kind) or _need_bool(right, "logical operator", kind)
    if kind == "?":
        return _eval(node[2]) if _need_bool(left, "ternary operator", kind) else None
    if kind in (":", "??"):
        return left if left is not None else _eval(node[2])
    right = _eval(node[2])
    if kind in _LEVELS[3]:
        return _compare(kind, left, right)
    return _arith(kind, left, right)

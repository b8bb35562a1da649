"""Lexer and parser for the expr-lang subset Argo evaluates ({{=...}}, valueFrom.expression, ...).

Precedences, associativity, chained comparisons, `not in`-style negation and the shapes of
predicates follow github.com/expr-lang/expr (parser/parser.go, parser/operator/operator.go), so
that an expression groups here exactly as it does in Argo.

The AST is made of tuples whose first item names the node kind:
  ("lit", value) ("name", n) ("ptr", n) ("member", obj, key, optional) ("slice", obj, lo, hi)
  ("call", callee, args) ("closure", body) ("unary", op, x) ("binary", op, l, r)
  ("cond", c, a, b) ("array", items) ("map", pairs) ("let", name, value, body) ("chain", x)
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ExpressionError, one_line

Node = tuple

# (precedence, right-associative)
BINARY: dict[str, tuple[int, bool]] = {
    "|": (0, False),
    "or": (10, False), "||": (10, False),
    "and": (15, False), "&&": (15, False),
    "==": (20, False), "!=": (20, False), "<": (20, False), ">": (20, False),
    "<=": (20, False), ">=": (20, False), "in": (20, False), "matches": (20, False),
    "contains": (20, False), "startsWith": (20, False), "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False), "-": (30, False),
    "*": (60, False), "/": (60, False), "%": (60, False),
    "**": (100, True), "^": (100, True),
    "??": (500, False),
}
UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
NEGATABLE = frozenset({"contains", "matches", "startsWith", "endsWith", "in"})
WORD_OPERATORS = frozenset({"not", "and", "or", "in", "matches", "contains", "startsWith", "endsWith", "let"})
# Builtins whose second argument is a predicate: `{...}` there is a closure, not a map literal.
PREDICATE_BUILTINS = frozenset({
    "all", "any", "none", "one", "filter", "map", "count", "find", "findIndex", "findLast",
    "findLastIndex", "groupBy", "reduce", "sum", "sortBy",
})

_SYMBOLS = sorted(
    ["**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "..", "|", "<", ">", "!", "+", "-", "*", "/",
     "%", "^", "?", ":", ".", ",", ";", "=", "#", "(", ")", "[", "]", "{", "}"],
    key=len, reverse=True,
)
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?P<dec>[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?)"
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", "'": "'", '"': '"', "`": "`"}
_VALUE_END = frozenset({")", "]", "}"})


class Token:
    __slots__ = ("kind", "pos", "value")

    def __init__(self, kind: str, value: Any, pos: int) -> None:
        self.kind = kind  # "num" | "str" | "ident" | "op" | "eof"
        self.value = value
        self.pos = pos

    def is_op(self, value: str) -> bool:
        return self.kind == "op" and self.value == value

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of expression"
        if self.kind == "str":
            return f"string {self.value!r}"
        return f'"{self.value}"'


def _error(text: str, pos: int, message: str) -> ExpressionError:
    return ExpressionError(f"{message} at position {pos + 1} in expression \"{one_line(text)}\"", text=text)


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise _error(text, i, "unterminated comment")
            i = end + 2
            continue
        prev_is_value = bool(tokens) and (
            tokens[-1].kind in ("num", "str", "ident") or tokens[-1].value in _VALUE_END
        )
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit() and not prev_is_value):
            m = _NUMBER.match(text, i)
            raw = m.group(0).replace("_", "")
            if m.group("dec") is None:
                value: Any = int(raw, 0)
            elif any(c in raw for c in ".eE"):
                value = float(raw)
            else:
                value = int(raw)
            tokens.append(Token("num", value, i))
            i = m.end()
            continue
        if ch in "'\"":
            value, i2 = _read_string(text, i)
            tokens.append(Token("str", value, i))
            i = i2
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _error(text, i, "unterminated string")
            tokens.append(Token("str", text[i + 1:end], i))
            i = end + 1
            continue
        if _is_ident_start(ch):
            j = i + 1
            while j < n and _is_ident_char(text[j]):
                j += 1
            word = text[i:j]
            tokens.append(Token("op" if word in WORD_OPERATORS else "ident", word, i))
            i = j
            continue
        for sym in _SYMBOLS:
            if text.startswith(sym, i):
                # "a ? .5 : 1" is a ternary over a float, not optional chaining
                if sym == "?." and i + 2 < n and text[i + 2].isdigit():
                    sym = "?"
                tokens.append(Token("op", sym, i))
                i += len(sym)
                break
        else:
            raise _error(text, i, f'unexpected character "{ch}"')
    tokens.append(Token("eof", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise _error(text, i, "invalid escape in string")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif esc in "01234567":
            digits = text[i + 1:i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise _error(text, i, "invalid escape in string")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            # expr-lang rejects unknown escapes such as '\d'; regexes need '\\d'
            raise _error(text, i, f'invalid escape "\\{esc}" in string (write "\\\\{esc}")')
    raise _error(text, start, "unterminated string")


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0  # > 0 inside a predicate, where "#" and ".field" are allowed

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def peek(self) -> Token:
        return self.tokens[min(self.pos + 1, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> ExpressionError:
        tok = tok or self.current
        return _error(self.text, tok.pos, message)

    def expect(self, value: str) -> Token:
        if not self.current.is_op(value):
            raise self.error(f'expected "{value}" but found {self.current.describe()}')
        return self.advance()

    def parse(self) -> Node:
        if self.current.kind == "eof":
            raise self.error("empty expression")
        node = self.parse_expression(0)
        if self.current.kind != "eof":
            raise self.error(f"unexpected {self.current.describe()}")
        return node

    def parse_expression(self, precedence: int) -> Node:
        if precedence == 0 and self.current.is_op("let"):
            return self.parse_let()
        left = self.parse_primary()
        prev_op = ""
        while self.current.kind == "op":
            tok = self.current
            negate = tok.value == "not"
            op = tok.value
            if negate:
                nxt = self.peek()
                if nxt.kind != "op" or nxt.value not in NEGATABLE:
                    raise self.error(f"unexpected {nxt.describe()} after \"not\"", nxt)
                if BINARY[nxt.value][0] < precedence:
                    break
                self.advance()
                op = nxt.value
            if op not in BINARY or BINARY[op][0] < precedence:
                break
            prec, right_assoc = BINARY[op]
            self.advance()
            if op == "|":
                name = self.current
                if name.kind != "ident":
                    raise self.error(f"expected a function call after \"|\" but found {name.describe()}")
                self.advance()
                left = self.parse_call(("name", name.value), name.value, [left])
            elif prev_op == "??" and op != "??":
                raise self.error(f'operator "{op}" and "??" cannot be mixed; add parentheses', tok)
            elif prec == 20:
                left = self.parse_comparison(left, op, negate)
            else:
                right = self.parse_expression(prec if right_assoc else prec + 1)
                left = ("binary", op, left, right)
                if negate:
                    left = ("unary", "not", left)
            prev_op = op
        if precedence == 0:
            left = self.parse_conditional(left)
        return left

    def parse_comparison(self, left: Node, op: str, negate: bool) -> Node:
        # expr-lang reads `a < b < c` as `a < b && b < c`
        root: Node | None = None
        while True:
            right = self.parse_expression(21)
            node: Node = ("binary", op, left, right)
            if negate:
                node = ("unary", "not", node)
            root = node if root is None else ("binary", "&&", root, node)
            left = right
            tok = self.current
            if tok.kind != "op":
                break
            if tok.value == "not" and self.peek().kind == "op" and self.peek().value in NEGATABLE:
                self.advance()
                op, negate = self.advance().value, True
            elif BINARY.get(tok.value, (None,))[0] == 20:
                op, negate = self.advance().value, False
            else:
                break
        return root

    def parse_conditional(self, node: Node) -> Node:
        while self.current.is_op("?"):
            self.advance()
            if self.current.is_op(":"):
                self.advance()
                node = ("cond", node, node, self.parse_expression(0))
            else:
                yes = self.parse_expression(0)
                self.expect(":")
                node = ("cond", node, yes, self.parse_expression(0))
        return node

    def parse_let(self) -> Node:
        self.advance()
        name = self.current
        if name.kind != "ident":
            raise self.error(f"expected a variable name after \"let\" but found {name.describe()}")
        self.advance()
        self.expect("=")
        value = self.parse_expression(0)
        self.expect(";")
        return ("let", name.value, value, self.parse_expression(0))

    def parse_primary(self) -> Node:
        tok = self.current
        if tok.kind == "op" and tok.value in UNARY:
            self.advance()
            operand = self.parse_expression(UNARY[tok.value])
            return self.parse_postfix(("unary", tok.value, operand))
        if tok.is_op("("):
            self.advance()
            inner = self.parse_expression(0)
            self.expect(")")
            return self.parse_postfix(inner)
        if self.depth > 0 and tok.kind == "op" and tok.value in ("#", "."):
            name = ""
            if tok.value == "#":
                self.advance()
                if self.current.kind == "ident":
                    name = self.advance().value
            return self.parse_postfix(("ptr", name))
        return self.parse_secondary()

    def parse_secondary(self) -> Node:
        tok = self.current
        if tok.kind == "ident":
            self.advance()
            if tok.value in ("true", "false", "nil"):
                node: Node = ("lit", {"true": True, "false": False, "nil": None}[tok.value])
            elif self.current.is_op("("):
                node = self.parse_call(("name", tok.value), tok.value, [])
            else:
                node = ("name", tok.value)
            return self.parse_postfix(node)
        if tok.kind in ("num", "str"):
            self.advance()
            return self.parse_postfix(("lit", tok.value))
        if tok.is_op("["):
            self.advance()
            items = self.parse_list("]")
            return self.parse_postfix(("array", items))
        if tok.is_op("{"):
            self.advance()
            return self.parse_postfix(self.parse_map())
        raise self.error(f"unexpected {tok.describe()}")

    def parse_list(self, closer: str) -> list[Node]:
        items: list[Node] = []
        while not self.current.is_op(closer):
            items.append(self.parse_expression(0))
            if not self.current.is_op(","):
                break
            self.advance()
        self.expect(closer)
        return items

    def parse_map(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        while not self.current.is_op("}"):
            tok = self.current
            if tok.kind in ("ident", "str") or (tok.kind == "op" and tok.value in WORD_OPERATORS):
                self.advance()
                key: Node = ("lit", tok.value)
            elif tok.kind == "num":
                self.advance()
                key = ("lit", str(tok.value))
            elif tok.is_op("("):
                self.advance()
                key = self.parse_expression(0)
                self.expect(")")
            else:
                raise self.error(f"a map key must be a name, string or number, not {tok.describe()}")
            self.expect(":")
            pairs.append((key, self.parse_expression(0)))
            if not self.current.is_op(","):
                break
            self.advance()
        self.expect("}")
        return ("map", pairs)

    def parse_call(self, callee: Node, name: str | None, args: list[Node]) -> Node:
        self.expect("(")
        if callee[0] == "name" and name in PREDICATE_BUILTINS:
            while not self.current.is_op(")"):
                args.append(self.parse_closure() if len(args) == 1 else self.parse_expression(0))
                if not self.current.is_op(","):
                    break
                self.advance()
            self.expect(")")
        else:
            args.extend(self.parse_list(")"))
        return ("call", callee, args)

    def parse_closure(self) -> Node:
        braced = self.current.is_op("{")
        if braced:
            self.advance()
        self.depth += 1
        body = self.parse_expression(0)
        self.depth -= 1
        if braced:
            self.expect("}")
        return ("closure", body)

    def parse_postfix(self, node: Node) -> Node:
        chained = False
        while self.current.kind == "op":
            tok = self.current
            if tok.value in (".", "?."):
                optional = tok.value == "?."
                chained = chained or optional
                self.advance()
                if optional and self.current.is_op("["):
                    self.advance()
                    node = ("member", node, self.parse_expression(0), True)
                    self.expect("]")
                    continue
                name = self.current
                if not (name.kind == "ident" or (name.kind == "op" and name.value in WORD_OPERATORS)):
                    raise self.error(f"expected a field name after \"{tok.value}\" but found {name.describe()}")
                self.advance()
                member: Node = ("member", node, ("lit", name.value), optional)
                if self.current.is_op("("):
                    node = self.parse_call(member, None, [])
                else:
                    node = member
            elif tok.is_op("["):
                self.advance()
                if self.current.is_op(":"):
                    self.advance()
                    hi = None if self.current.is_op("]") else self.parse_expression(0)
                    self.expect("]")
                    node = ("slice", node, None, hi)
                    continue
                index = self.parse_expression(0)
                if self.current.is_op(":"):
                    self.advance()
                    hi = None if self.current.is_op("]") else self.parse_expression(0)
                    self.expect("]")
                    node = ("slice", node, index, hi)
                else:
                    self.expect("]")
                    node = ("member", node, index, False)
            else:
                break
        return ("chain", node) if chained else node


def parse(text: str) -> Node:
    """Parse an expression into its AST; ExpressionError on a syntax error."""
    return Parser(text).parse()

"""DAG `depends` expressions: Argo's enhanced depends logic.

Operands are `task` or `task.Result`; `&&`, `||`, `!` and parentheses combine them (Argo hands
the expanded text to expr-lang, so `!` binds tighter than `&&`, which binds tighter than `||`).
A bare `task` means `(task.Succeeded || task.Skipped || task.Daemoned)`, plus `task.Failed` /
`task.Errored` when that task has continueOn failed / error (workflow/common/ancestry.go).

This is the one depends grammar: lint (spec/dag.py) and the engine's DAG frame both use it. Task
names follow Argo's workflowFieldNameFmt (alpha-numerics and '-', starting with an alpha-numeric),
which is also what Argo's ancestry.go matches in a depends string; a name with '_' or '.' is an
error here rather than being split the way Argo's regex would split it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .errors import ExpressionError, one_line

__all__ = ["TASK_NAME", "TASK_NAME_RULE", "DependsExpr", "TaskResult", "depends_from_dependencies",
           "parse_depends"]

RESULTS = frozenset({"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned",
                     "AnySucceeded", "AllFailed"})

# Argo's workflowFieldNameFmt and its message (workflow/validate/validate.go).
TASK_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
TASK_NAME_RULE = "name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character"
# An operand is everything up to the next operator or space; it is then split into task and result,
# so a bad name is reported whole ('step_a'), not as the pieces a looser pattern would find.
_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<word>[^\s&|!()]+))")
_OPERAND = re.compile(r"(?P<name>[^.]+)(?:\.(?P<result>[^.]*))?")


@dataclass(frozen=True)
class TaskResult:
    """What a depends expression can see of one finished dependency.

    phase: the task node's phase (Succeeded, Failed, Error, Skipped, Omitted, ...).
    children_phases: for a task expanded by withItems/withParam/withSequence, each item's phase.
    daemoned: the task is a daemon that got past Pending.
    continue_on_failed / continue_on_error: the dependency task's continueOn, which widens what a
    bare `task` operand accepts.
    """

    phase: str
    children_phases: tuple[str, ...] = ()
    daemoned: bool = False
    continue_on_failed: bool = False
    continue_on_error: bool = False

    def result(self, name: str) -> bool:
        phase = self.phase
        if name == "Succeeded":
            return phase == "Succeeded"
        if name == "Failed":
            return phase == "Failed"
        if name == "Errored":
            return phase == "Error"
        if name == "Skipped":
            return phase == "Skipped"
        if name == "Omitted":
            return phase == "Omitted"
        if name == "Daemoned":
            return self.daemoned and phase != "Pending"
        if name == "AnySucceeded":
            return any(p == "Succeeded" for p in self.children_phases)
        if name == "AllFailed":
            return bool(self.children_phases) and all(p == "Failed" for p in self.children_phases)
        raise ExpressionError(f"unknown task result {name}")

    def default(self) -> bool:
        """The meaning of a bare `task` operand."""
        return (
            self.result("Succeeded")
            or self.result("Skipped")
            or self.result("Daemoned")
            or (self.continue_on_failed and self.phase == "Failed")
            or (self.continue_on_error and self.phase == "Error")
        )


@dataclass(frozen=True)
class DependsExpr:
    """A parsed `depends` string (parse it with parse_depends)."""

    text: str

    def task_names(self) -> frozenset[str]:
        return frozenset(_parse(self.text)[1])

    def references(self) -> tuple[str, ...]:
        """Task names in the order they appear, repeats included."""
        return _parse(self.text)[1]

    def evaluate(self, results: Mapping[str, TaskResult]) -> bool:
        """Whether the dependent task may run, given the results of all its dependencies."""
        tree = _parse(self.text)[0]
        missing = sorted(n for n in self.task_names() if n not in results)
        if missing:
            raise ExpressionError(
                f"depends \"{one_line(self.text)}\": no result for task {', '.join(missing)}", text=self.text)
        return _eval(tree, results)


def parse_depends(text: str) -> DependsExpr:
    """Validate a depends string; ExpressionError on a syntax error or an unknown .Result."""
    _parse(text)
    return DependsExpr(text)


def depends_from_dependencies(names: list[str]) -> str:
    """The depends string equivalent to a `dependencies` list."""
    return " && ".join(names)


@lru_cache(maxsize=1024)
def _parse(text: str) -> tuple[tuple, tuple[str, ...]]:
    tokens: list[tuple[str, str, str | None]] = []
    pos = 0
    stripped_end = len(text.rstrip())
    while pos < stripped_end:
        m = _TOKEN.match(text, pos)
        if not m:
            bad = text[pos:].lstrip()[:1]
            raise _error(text, f'unexpected character "{bad}"')
        if m.group("word") is not None:
            tokens.append(_operand(text, m.group("word")))
        else:
            tokens.append(("op", m.group("op"), None))
        pos = m.end()
    if not tokens:
        raise _error(text, "empty expression")
    parser = _Parser(text, tokens)
    try:
        tree = parser.parse_or()
    except RecursionError:
        raise _error(text, "nested too deeply") from None
    if parser.pos < len(tokens):
        raise _error(text, f'unexpected "{tokens[parser.pos][1]}"')
    names = tuple(t[1] for t in tokens if t[0] == "task")
    return tree, names


def _operand(text: str, word: str) -> tuple[str, str, str | None]:
    m = _OPERAND.fullmatch(word)
    if m is None:
        raise _error(text, f"'{word}' is not a task or task.Result")
    name, result = m.group("name"), m.group("result")
    if not TASK_NAME.fullmatch(name):
        raise _error(text, f"'{name}' is not a task name: {TASK_NAME_RULE}")
    if result is not None and result not in RESULTS:
        raise _error(text, f"task result '{result}' for task '{name}' is invalid (one of {', '.join(sorted(RESULTS))})")
    return ("task", name, result)


def _error(text: str, message: str) -> ExpressionError:
    return ExpressionError(f'invalid depends "{one_line(text)}": {message}', text=text)


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str, str | None]]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def at_op(self, op: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos][:2] == ("op", op)

    def parse_or(self) -> tuple:
        left = self.parse_and()
        while self.at_op("||"):
            self.pos += 1
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self) -> tuple:
        left = self.parse_not()
        while self.at_op("&&"):
            self.pos += 1
            left = ("and", left, self.parse_not())
        return left

    def parse_not(self) -> tuple:
        if self.at_op("!"):
            self.pos += 1
            return ("not", self.parse_not())
        return self.parse_operand()

    def parse_operand(self) -> tuple:
        if self.pos >= len(self.tokens):
            raise _error(self.text, "expression ends where a task was expected")
        kind, value, result = self.tokens[self.pos]
        self.pos += 1
        if kind == "task":
            return ("task", value, result)
        if value == "(":
            inner = self.parse_or()
            if not self.at_op(")"):
                raise _error(self.text, 'missing ")"')
            self.pos += 1
            return inner
        raise _error(self.text, f'expected a task but found "{value}"')


def _eval(node: tuple, results: Mapping[str, TaskResult]) -> bool:
    kind = node[0]
    if kind == "task":
        task = results[node[1]]  # parse depth bounds this recursion
        return task.default() if node[2] is None else task.result(node[2])
    if kind == "not":
        return not _eval(node[1], results)
    if kind == "and":
        return _eval(node[1], results) and _eval(node[2], results)
    return _eval(node[1], results) or _eval(node[2], results)

"""Static checks of a DAG template: task names, dependencies, depends expressions, cycles, targets."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from .loading import Document, format_path
from .problems import Problem

TASK_RESULTS = frozenset({"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned",
                          "AnySucceeded", "AllFailed"})
_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<name>[A-Za-z0-9_-]+)(?:\.(?P<result>[A-Za-z]+))?"
                    r"|(?P<bad>\S))")
_MAX_NESTING = 100


class DependsSyntaxError(ValueError):
    pass


def depends_task_names(text: str) -> list[str]:
    """Task names a depends expression refers to, in order; raises DependsSyntaxError if malformed.

    Grammar (Argo's enhanced depends): or := and ('||' and)*; and := not ('&&' not)*;
    not := '!' not | '(' or ')' | TASK ['.' RESULT].
    """
    tokens: list[tuple[str, str]] = []
    names: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # only trailing whitespace is left
            break
        pos = match.end()
        if match.group("bad"):
            raise DependsSyntaxError(f"unexpected character {match.group('bad')!r}")
        if match.group("op"):
            tokens.append(("op", match.group("op")))
            continue
        result = match.group("result")
        if result is not None and result not in TASK_RESULTS:
            raise DependsSyntaxError(f"unknown task result .{result} (expected one of "
                                     f"{', '.join(sorted(TASK_RESULTS))})")
        tokens.append(("name", match.group("name")))
        names.append(match.group("name"))
    _Parser(tokens).parse()
    return names


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def parse(self) -> None:
        if not self.tokens:
            raise DependsSyntaxError("empty expression")
        self._or()
        if self.pos < len(self.tokens):
            raise DependsSyntaxError(f"unexpected {self._peek()!r} after a complete expression")

    def _or(self) -> None:
        self._and()
        while self._peek() == "||":
            self.pos += 1
            self._and()

    def _and(self) -> None:
        self._not()
        while self._peek() == "&&":
            self.pos += 1
            self._not()

    def _not(self) -> None:
        if self.pos >= len(self.tokens):
            raise DependsSyntaxError("expression ends where a task name was expected")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "name":
            return
        if value == "!":
            self._not()
        elif value == "(":
            self.depth += 1
            if self.depth > _MAX_NESTING:
                raise DependsSyntaxError("parentheses nested too deeply")
            self._or()
            if self._peek() != ")":
                raise DependsSyntaxError("missing ')'")
            self.pos += 1
            self.depth -= 1
        else:
            raise DependsSyntaxError(f"expected a task name, got {value!r}")


@functools.cache
def _external_parser() -> tuple[Callable[[str], object], type[Exception]] | None:
    """The expressions package's depends parser, when that package provides one."""
    try:
        from .expressions.depends import parse_depends
        from .expressions.errors import ExpressionError
    except ImportError:
        return None
    return parse_depends, ExpressionError


def _external_depends_check(text: str) -> str | None:
    """The engine's own parser must accept what lint accepts; its complaint, or None."""
    parser = _external_parser()
    if parser is None:
        return None
    parse, error_type = parser
    try:
        parse(text)
    except error_type as exc:
        return str(exc)
    return None


def check_dag(dag: dict, path: tuple, doc: Document) -> list[Problem]:
    """Problems of one ``dag`` mapping found at ``path`` (``(..., "dag")``) in ``doc``."""
    problems: list[Problem] = []

    def report(at: tuple, message: str) -> None:
        problems.append(Problem(doc.filename, doc.line_of(at), format_path(at), message))

    tasks = dag.get("tasks")
    if not isinstance(tasks, list):
        return problems
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        name = task.get("name") if isinstance(task, dict) else None
        if isinstance(name, str):
            if name in index:
                report(path + ("tasks", i, "name"), f"duplicate task name {name}")
            else:
                index[name] = i

    edges: dict[str, list[str]] = {name: [] for name in index}
    edge_field: dict[str, tuple] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("name"), str) or index.get(task["name"]) != i:
            continue
        name, task_path = task["name"], path + ("tasks", i)
        deps = task.get("dependencies")
        if isinstance(deps, list):
            edge_field[name] = task_path + ("dependencies",)
            for k, dep in enumerate(deps):
                if isinstance(dep, str):
                    _add_edge(name, dep, task_path + ("dependencies", k), index, edges, report)
        depends = task.get("depends")
        if isinstance(depends, str) and depends.strip() and "{{" not in depends:
            at = task_path + ("depends",)
            edge_field[name] = at
            try:
                refs = depends_task_names(depends)
            except DependsSyntaxError as exc:
                report(at, f"malformed depends expression {depends!r}: {exc}")
                continue
            external = _external_depends_check(depends)
            if external is not None:
                report(at, f"malformed depends expression {depends!r}: {external}")
                continue
            for dep in dict.fromkeys(refs):
                _add_edge(name, dep, at, index, edges, report)

    for cycle in _cycles(edges, list(index)):
        report(edge_field.get(cycle[0], path + ("tasks", index[cycle[0]])), "cycle: " + " -> ".join(cycle))

    target = dag.get("target")
    if isinstance(target, str) and "{{" not in target:
        for name in target.split():
            if name not in index:
                report(path + ("target",), f"target names unknown task {name}")
    return problems


def _add_edge(name: str, dep: str, at: tuple, index: dict[str, int], edges: dict[str, list[str]],
              report: Callable[[tuple, str], None]) -> None:
    if dep in index:
        edges[name].append(dep)
    else:
        report(at, f"task {name} depends on unknown task {dep}")


def _cycles(edges: dict[str, list[str]], order: list[str]) -> list[list[str]]:
    """Each distinct cycle once, as ``[A, B, A]`` (A depends on B depends on A)."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(order, white)
    found: list[list[str]] = []
    seen: set[frozenset] = set()
    for root in order:
        if colour[root] != white:
            continue
        # Iterative DFS: generated DAGs can be thousands of tasks deep.
        stack: list[tuple[str, int]] = [(root, 0)]
        trail: list[str] = [root]
        colour[root] = grey
        while stack:
            node, i = stack[-1]
            if i < len(edges[node]):
                stack[-1] = (node, i + 1)
                nxt = edges[node][i]
                if colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    trail.append(nxt)
                elif colour[nxt] == grey:
                    cycle = trail[trail.index(nxt):] + [nxt]
                    key = frozenset(cycle)
                    if key not in seen:
                        seen.add(key)
                        found.append(cycle)
            else:
                colour[node] = black
                stack.pop()
                trail.pop()
    return found

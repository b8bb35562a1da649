"""Static checks of a DAG template: task names, dependencies, depends expressions, cycles, targets."""

from __future__ import annotations

from collections.abc import Callable

from .expressions.depends import TASK_NAME, TASK_NAME_RULE, parse_depends
from .expressions.errors import ExpressionError
from .loading import Document, format_path
from .problems import Problem

# The one depends grammar (shared with the engine's DAG frame): a syntax error is an ExpressionError.
DependsSyntaxError = ExpressionError


def depends_task_names(text: str) -> list[str]:
    """Task names a depends expression refers to, in order; raises DependsSyntaxError if malformed."""
    return list(parse_depends(text).references())


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
            if not TASK_NAME.fullmatch(name):
                # Argo's validateWorkflowFieldNames; such a name could never be named in a depends.
                report(path + ("tasks", i, "name"), f"task name '{name}' is invalid: {TASK_NAME_RULE}")
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
                report(at, str(exc))
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

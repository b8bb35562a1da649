"""Argo's {{...}} template substitution (util/template in argo-workflows).

A tag runs from "{{" to the next "}}" (fasttemplate). `{{name}}` looks the trimmed name up in a
flat scope; `{{=expr}}` evaluates an expr-lang expression against the scope expanded into
nested maps. Unresolved tags are written back unchanged so a later stage can resolve them,
unless strict=True.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .errors import ExpressionError, one_line
from .expr import evaluate
from .expr_values import format_result

__all__ = ["build_env", "find_references", "substitute", "substitute_object"]

# Argo keeps {{=...}} unresolved while these are absent from the scope, even though the
# expression would evaluate (to nil or a wrong value): they only exist at a later stage
# (retries per attempt, lastRetry for retry decisions, workflow.status in exit handlers).
_LATE_VARIABLES = tuple(
    (name, re.compile(r"(?<![\w$.])" + r"\s*\.\s*".join(map(re.escape, name.split("."))) + r"(?![\w$])"))
    for name in ("retries", "lastRetry.exitCode", "lastRetry.status", "lastRetry.duration",
                 "lastRetry.message", "workflow.status", "workflow.failures")
)


_MAX_NESTING = 8


@lru_cache(maxsize=4096)
def _segments(text: str) -> tuple[tuple[bool, str], ...]:
    """Split into (is_tag, content) pieces the way fasttemplate does."""
    out: list[tuple[bool, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            break
        end = text.find("}}", start + 2)
        if end < 0:
            break  # an unterminated tag is plain text
        if start > pos:
            out.append((False, text[pos:start]))
        out.append((True, text[start + 2:end]))
        pos = end + 2
    if pos < len(text):
        out.append((False, text[pos:]))
    return tuple(out)


def substitute(text: str, scope: Mapping[str, Any], *, strict: bool = False) -> str:
    """Replace {{name}} and {{=expr}} tags in text.

    Values are written as Argo writes them: strings unchanged, other values as Go JSON (so 43.0
    prints "43", lists and maps as compact JSON, booleans as true/false). Unknown names and
    failing expressions are left as they are, or raise ExpressionError when strict.
    """
    if "{{" not in text:
        return text
    return _substitute(text, scope, strict, 0, _LazyEnv(scope))


class _LazyEnv:
    """build_env(scope), computed on the first expression tag and shared by a whole call."""

    __slots__ = ("_env", "_scope")

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self._scope = scope
        self._env: dict | None = None

    def get(self) -> dict:
        if self._env is None:
            self._env = build_env(self._scope)
        return self._env


def _substitute(text: str, scope: Mapping[str, Any], strict: bool, depth: int, env: _LazyEnv) -> str:
    out: list[str] = []
    nested = False
    for is_tag, content in _segments(text):
        if not is_tag:
            out.append(content)
        elif content.startswith("="):
            out.append(_expression_tag(content[1:], scope, env, strict))
        else:
            value, was_nested = _simple_tag(content, scope, strict)
            nested = nested or was_nested
            out.append(value)
    result = "".join(out)
    if nested and depth < _MAX_NESTING:
        # An inner tag such as {{inputs.parameters.{{item}}}} produced a new outer tag; Argo
        # resolves that in its next substitution pass, which is this one repeated.
        return _substitute(result, scope, strict, depth + 1, env)
    return result


def _simple_tag(tag: str, scope: Mapping[str, Any], strict: bool) -> tuple[str, bool]:
    name = tag.strip()
    if name in scope:
        return _format(scope[name], name), False
    index = tag.rfind("{{")
    if index > 0:
        inner = tag[index + 2:]
        value = scope.get(inner)
        if isinstance(value, str):
            return "{{" + tag[:index] + value, True
    if strict:
        raise ExpressionError(f"unresolved variable {one_line(name)}", text=tag)
    return "{{" + tag + "}}", False


def _format(value: Any, what: str) -> str:
    try:
        return format_result(value)
    except ExpressionError as e:
        raise ExpressionError(f"cannot render {one_line(what)}: {e}") from None


def _expression_tag(expression: str, scope: Mapping[str, Any], env: _LazyEnv, strict: bool) -> str:
    original = "{{=" + expression + "}}"
    if not strict:
        for name, pattern in _LATE_VARIABLES:
            if name not in scope and name in expression.replace(" ", "") and pattern.search(expression):
                return original
    try:
        value = evaluate(expression, env.get())
        if value is None:
            raise ExpressionError(f'expression "{one_line(expression)}" evaluated to nil', text=expression)
        return format_result(value)
    except ExpressionError:
        if strict:
            raise
        return original


def substitute_object(obj: Any, scope: Mapping[str, Any], *, strict: bool = False) -> Any:
    """substitute() applied to every string in a JSON-like structure (values, not keys)."""
    return _substitute_object(obj, scope, strict, _LazyEnv(scope))


def _substitute_object(obj: Any, scope: Mapping[str, Any], strict: bool, env: _LazyEnv) -> Any:
    if isinstance(obj, str):
        return _substitute(obj, scope, strict, 0, env) if "{{" in obj else obj
    if isinstance(obj, Mapping):
        return {k: _substitute_object(v, scope, strict, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute_object(v, scope, strict, env) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_substitute_object(v, scope, strict, env) for v in obj)
    return obj


def find_references(text: str) -> list[str]:
    """Names referenced by simple {{...}} tags (expression tags are skipped), first-seen order.

    For a nested tag such as {{inputs.parameters.{{item}}}} the inner name is reported, since
    the outer one is only known after substitution.
    """
    if "{{" not in text:
        return []
    seen: dict[str, None] = {}
    for is_tag, content in _segments(text):
        if not is_tag or content.startswith("="):
            continue
        index = content.rfind("{{")
        name = (content[index + 2:] if index >= 0 else content).strip()
        if name:
            seen.setdefault(name, None)
    return list(seen)


def build_env(scope: Mapping[str, Any]) -> dict:
    """Expand flat dotted keys into nested maps, as Argo does before evaluating expressions.

    "steps.flip-coin.outputs.result" -> {"steps": {"flip-coin": {"outputs": {"result": ...}}}}.
    A key that is also the prefix of another ("workflow.parameters" next to
    "workflow.parameters.count") is dropped, as in Argo's expand.removeConflicts.
    """
    env: dict = {}
    made: set[int] = set()  # ids of the maps created here, as opposed to map values in the scope
    for key, value in scope.items():
        parts = key.split(".")
        node = env
        for part in parts[:-1]:
            child = node.get(part)
            if child is None or id(child) not in made:
                # a plain value here is a less specific key: the deeper one wins
                child = node[part] = {}
                made.add(id(child))
            node = child
        last = parts[-1]
        existing = node.get(last)
        if existing is not None and id(existing) in made:
            continue
        node[last] = value
    return env

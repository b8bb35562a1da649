"""Evaluating policies against loaded documents, before anything is applied."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from reconciler.spec.loading import Document, format_path
from reconciler.spec.problems import Problem

from .model import Policy

_CONTAINER_KEYS = ("container", "script")
_CONTAINER_LISTS = ("sidecars", "initContainers")


def _walk(value: Any, path: tuple) -> Iterator[tuple[tuple, Any, Any]]:
    """(path, key, value) of every node under `value`, depth first."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield path + (key,), key, child
            yield from _walk(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield path + (i,), i, child
            yield from _walk(child, path + (i,))


def _items(value: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield path + (i,), item


def targets(obj: dict, target: str) -> Iterator[tuple[tuple, Any]]:
    """The parts of `obj` a policy with `target` looks at, with their field paths.

    Containers, volumes and templates are found wherever Argo allows them (spec.templates,
    spec.workflowSpec.templates, templateDefaults, sidecars...), so a policy cannot be dodged by
    moving a container one level down.
    """
    if target == "object":
        yield (), obj
        return
    spec = obj.get("spec")
    for path, key, value in _walk(spec, ("spec",)):
        if target == "containers":
            if key in _CONTAINER_KEYS and isinstance(value, dict):
                yield path, value
            elif key in _CONTAINER_LISTS:
                yield from _items(value, path)
        elif target == "volumes" and key == "volumes":
            yield from _items(value, path)
        elif target == "env" and key == "env":
            yield from _items(value, path)
        elif target == "templates" and key == "templates":
            yield from _items(value, path)


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in variables.items():
            value = value.replace("{{" + name + "}}", text)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def evaluate(policies: Iterable[Policy], docs: Iterable[Document], *, environment: str, namespace: str,
             production: bool) -> list[Problem]:
    """Problems found by `policies` in `docs` for one environment: errors for deny, warnings for warn.

    Policy schemas and messages may say {{environment.name}} and {{environment.namespace}}.
    """
    variables = {"environment.name": environment, "environment.namespace": namespace}
    active = []
    for policy in policies:
        action = policy.action_for(environment, production)
        if action != "ignore":
            schema = json.dumps(_substitute(policy.schema, variables), sort_keys=True)
            active.append((policy, action, _validator(schema), _substitute(policy.message, variables)))
    problems: list[Problem] = []
    for doc in docs:
        for policy, action, validator, message in active:
            if policy.kinds and doc.kind not in policy.kinds:
                continue
            for path, value in targets(doc.obj, policy.target):
                error = best_match(validator.iter_errors(value))
                if error is None:
                    continue
                at = path + tuple(error.absolute_path)
                severity = "error" if action == "deny" else "warning"
                problems.append(Problem(doc.filename, doc.line_of(at), format_path(at),
                                        f"policy {policy.name} ({action}): {message}", severity))
    return problems

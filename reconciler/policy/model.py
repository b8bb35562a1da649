"""Policies: a JSON Schema that parts of an object must satisfy, a scope, and deny or warn.

A policy file (kind Policy, apiVersion reconciler.io/v1) says which kinds and environments it
covers, which parts of each object it looks at (`target`), and what to do when they do not match
its schema: `deny` fails the environment, `warn` is reported and applied anyway. `otherwise` is what
happens outside the environments in scope (default: nothing), so one policy can deny in production
and warn in dev.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from reconciler.spec.loading import Document, format_path, load_text
from reconciler.spec.problems import Problem, SpecError

API_VERSION = "reconciler.io/v1"
TARGETS = ("object", "templates", "containers", "volumes", "env")
ACTIONS = ("deny", "warn")

# The shape of a policy file; closed like the workflow schemas, so a typo is an error, not a no-op.
POLICY_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "Policy"},
        "metadata": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                           "labels": {"type": "object"}, "annotations": {"type": "object"}},
        },
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["action", "target", "schema", "message"],
            "properties": {
                "description": {"type": "string"},
                "action": {"enum": list(ACTIONS)},
                "otherwise": {"enum": [*ACTIONS, "ignore"]},
                "target": {"enum": list(TARGETS)},
                "message": {"type": "string", "minLength": 1},
                "schema": {"type": ["object", "boolean"]},
                "scope": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "kinds": {"type": "array", "items": {"type": "string"}},
                        "environments": {"type": "array", "items": {"type": "string"}},
                        "production": {"type": "boolean"},
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Policy:
    name: str
    action: str  # deny | warn, inside the scope's environments
    otherwise: str  # deny | warn | ignore, in the other environments
    target: str
    message: str
    schema: Any
    kinds: tuple[str, ...] = ()  # empty: every kind
    environments: tuple[str, ...] = ()  # empty: every environment (subject to `production`)
    production_only: bool = False
    source: str = ""  # the file it came from, for messages

    def action_for(self, environment: str, production: bool) -> str:
        """deny, warn or ignore for an environment."""
        in_scope = (not self.environments or environment in self.environments) and \
            (not self.production_only or production)
        return self.action if in_scope else self.otherwise


def _problems_of(doc: Document) -> list[Problem]:
    problems = []
    for error in Draft202012Validator(POLICY_SCHEMA).iter_errors(doc.obj):
        at = tuple(error.absolute_path)
        problems.append(Problem(doc.filename, doc.line_of(at), format_path(at), f"invalid policy: {error.message}"))
    if not problems:
        try:
            Draft202012Validator.check_schema(doc.obj["spec"]["schema"])
        except SchemaError as exc:
            at = ("spec", "schema", *exc.absolute_path)
            problems.append(Problem(doc.filename, doc.line_of(at), format_path(at),
                                    f"invalid JSON Schema: {exc.message}"))
    return problems


def parse_policies(text: str, filename: str) -> list[Policy]:
    """Every Policy document of a file; SpecError (file, line, field) if any is malformed."""
    docs = load_text(text, filename)
    problems = [p for doc in docs for p in _problems_of(doc)]
    if problems:
        raise SpecError(problems)
    policies = []
    for doc in docs:
        spec = doc.obj["spec"]
        scope = spec.get("scope") or {}
        policies.append(Policy(
            name=doc.obj["metadata"]["name"],
            action=spec["action"],
            otherwise=spec.get("otherwise", "ignore"),
            target=spec["target"],
            message=spec["message"],
            schema=spec["schema"],
            kinds=tuple(scope.get("kinds") or ()),
            environments=tuple(scope.get("environments") or ()),
            production_only=bool(scope.get("production", False)),
            source=filename,
        ))
    return policies


@functools.cache
def default_policies() -> tuple[Policy, ...]:
    """The policies shipped in the package (copies of the project's top-level policies/)."""
    folder = resources.files("reconciler.policy") / "defaults"
    found: list[Policy] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            found.extend(parse_policies(entry.read_text(encoding="utf-8"), f"(default policy) {entry.name}"))
    return tuple(found)

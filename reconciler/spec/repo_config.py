"""`reconciler.yaml`: a workflow repository's environments, validated by reconciler-config.json.

The file sits at the repository's root. Each environment maps a branch to a namespace, with an
optional folder, parameter overrides, limits and policy choices. Problems carry file and line like
every other spec problem, so a broken config fails its environment with a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .loading import Document, load_text
from .problems import Problem, SpecError
from .validation import _load_schemas, _translate, _Validator

CONFIG_FILE = "reconciler.yaml"
CONFIG_FILES = ("reconciler.yaml", "reconciler.yml")
PRODUCTION_NAMES = frozenset({"prod", "production"})


@dataclass(frozen=True)
class PolicyChoice:
    """Which policies apply: the shipped defaults (minus `disable`) plus repository files."""

    defaults: bool = True
    disable: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def combine(self, other: PolicyChoice | None) -> PolicyChoice:
        """An environment's choice on top of the repository-wide one."""
        if other is None:
            return self
        return PolicyChoice(
            defaults=self.defaults and other.defaults,
            disable=tuple(dict.fromkeys(self.disable + other.disable)),
            files=tuple(dict.fromkeys(self.files + other.files)),
        )


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    branch: str
    namespace: str
    path: str = ""  # folder inside the repository, "" = the root
    production: bool = False
    parameters: dict[str, str] = field(default_factory=dict)
    max_running_workflows: int | None = None
    semaphores: dict[str, dict[str, int]] = field(default_factory=dict)
    policies: PolicyChoice = PolicyChoice()
    engine: str = "reconciler"  # or "argo": Argo's controller in the cluster runs the workflows
    line: int = 1  # where the environment is defined, for problems about it


@dataclass(frozen=True)
class RepoConfig:
    environments: dict[str, EnvironmentConfig]
    filename: str = CONFIG_FILE

    def environment(self, name: str) -> EnvironmentConfig | None:
        return self.environments.get(name)

    def select(self, name: str | None) -> list[EnvironmentConfig]:
        """Every environment, or only `name`; KeyError naming the known ones when it is not defined."""
        if name is None:
            return list(self.environments.values())
        if name not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise KeyError(f"no environment {name!r} in {self.filename} (known: {known})")
        return [self.environments[name]]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _policy_choice(raw: Any) -> PolicyChoice | None:
    if not isinstance(raw, dict):
        return None
    return PolicyChoice(
        defaults=bool(raw.get("defaults", True)),
        disable=tuple(raw.get("disable") or ()),
        files=tuple(raw.get("files") or ()),
    )


def validate_config(doc: Document) -> list[Problem]:
    """Schema problems of a reconciler.yaml document, each naming file, line and field."""
    registry, by_file = _load_schemas()
    validator = _Validator(by_file["reconciler-config.json"], registry=registry)
    problems: list[Problem] = []
    for error in validator.iter_errors(doc.obj):
        problems.extend(p for p in _translate(error, doc) if p.is_error)
    return sorted(dict.fromkeys(problems), key=lambda p: p.line)


def parse_config(text: str, filename: str = CONFIG_FILE) -> RepoConfig:
    """Load and validate reconciler.yaml; raise SpecError listing every problem."""
    docs = load_text(text, filename)
    if len(docs) != 1:
        raise SpecError([Problem(filename, docs[1].start_line if len(docs) > 1 else 1, "(document)",
                                 "reconciler.yaml must hold exactly one document")])
    doc = docs[0]
    problems = validate_config(doc)
    if problems:
        raise SpecError(problems)
    repo_policies = _policy_choice(doc.obj.get("policies")) or PolicyChoice()
    envs: dict[str, EnvironmentConfig] = {}
    namespaces: dict[str, str] = {}
    for name, raw in doc.obj["environments"].items():
        limits = raw.get("limits") or {}
        at = ("environments", name)
        if raw["namespace"] in namespaces:
            # Two environments in one namespace would prune each other's objects.
            raise SpecError([Problem(filename, doc.line_of(at + ("namespace",)), f"environments.{name}.namespace",
                                     f"namespace {raw['namespace']} is already used by environment "
                                     f"{namespaces[raw['namespace']]}")])
        namespaces[raw["namespace"]] = name
        envs[name] = EnvironmentConfig(
            name=name,
            branch=raw["branch"],
            namespace=raw["namespace"],
            path=(raw.get("path") or "").strip("/"),
            production=bool(raw.get("production", name in PRODUCTION_NAMES)),
            parameters={k: _text(v) for k, v in (raw.get("parameters") or {}).items()},
            max_running_workflows=limits.get("maxRunningWorkflows"),
            semaphores={cm: dict(keys) for cm, keys in (limits.get("semaphores") or {}).items()},
            policies=repo_policies.combine(_policy_choice(raw.get("policies"))),
            engine=raw.get("engine", "reconciler"),
            line=doc.line_of(at),
        )
    return RepoConfig(environments=envs, filename=filename)

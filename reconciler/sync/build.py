"""Build: the objects one commit of a branch wants in its environment, or why it cannot have them.

All-or-nothing: any file that fails to load, validate or pass policy makes the whole build fail,
with every problem (file, line, field, rule) listed, and nothing of that commit is applied.
Parsed files are cached by blob sha and builds by commit, so a pass with no change in git costs
no YAML parsing, and a commit that touches ten files parses ten files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reconciler.limits import TooLarge, too_large
from reconciler.limits import current as current_limits
from reconciler.policy import Policy, default_policies, evaluate, parse_policies
from reconciler.source import GitSource
from reconciler.source.folder import FolderSource
from reconciler.spec import Document, Problem, SpecError, check_submission, load_text, validate_documents
from reconciler.spec.repo_config import CONFIG_FILES, EnvironmentConfig, parse_config

from .content import content_hash
from .model import (
    CONTENT_HASH,
    ENVIRONMENT_LABEL,
    MANAGED_BY,
    MANAGER,
    SOURCE_COMMIT,
    SOURCE_PATH,
    SYNC_KINDS,
    DesiredObject,
)

LIMITS_CONFIGMAP = "reconciler-limits"
_YAML = (".yaml", ".yml")
_BUILD_CACHE_SIZE = 64
_PARSE_CACHE_SIZE = 4096  # parsed files, by blob and path


@dataclass
class BuildResult:
    config: EnvironmentConfig
    commit: str
    objects: list[DesiredObject] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    policy_failed: bool = False  # the failure is a policy denial, not a broken file

    @property
    def ok(self) -> bool:
        return not self.problems


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(path).parts)


def under_folder(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _short_hash(obj: dict) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def override_parameters(obj: dict, parameters: dict[str, str]) -> None:
    """Give declared workflow arguments the environment's values; undeclared names are left out,
    so an override can never add an argument a workflow does not expect."""
    if not parameters:
        return
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec") or {}
    for param in ((spec.get("arguments") or {}).get("parameters") or []):
        if isinstance(param, dict) and param.get("name") in parameters:
            param.pop("valueFrom", None)
            param["value"] = parameters[param["name"]]


def workflow_name(obj: dict, content: dict) -> str:
    """`<name or generateName stem>-<hash of content>`: one run per distinct content, never two."""
    meta = obj.get("metadata") or {}
    stem = meta.get("name") or meta.get("generateName") or "workflow"
    # Cut, then trim: a cut ending in '-' or '.' would make the name invalid. 52 + 11 keeps it
    # within Argo's 63 characters.
    return f"{stem[:52].rstrip('-.') or 'workflow'}-{_short_hash(content)}"


class Builder:
    """Turns (environment, commit) into desired objects, with caches kept across passes."""

    def __init__(self, source: GitSource | FolderSource, template_lookup: Callable | None = None) -> None:
        self.source = source
        self.template_lookup = template_lookup
        self._parsed: dict[str, list[Document] | SpecError] = {}
        self._builds: dict[tuple, BuildResult] = {}
        self._lock = threading.Lock()

    def build(self, base: EnvironmentConfig, commit: str) -> BuildResult:
        key = (repr(base), commit)  # the config holds dicts, so its repr stands in for a hash
        with self._lock:
            cached = self._builds.get(key)
        if cached is not None:
            return cached
        result = self._build(base, commit)
        with self._lock:
            if len(self._builds) >= _BUILD_CACHE_SIZE:
                self._builds.pop(next(iter(self._builds)))
            self._builds[key] = result
        return result

    # ---- steps -------------------------------------------------------------------------------------
    def _build(self, base: EnvironmentConfig, commit: str) -> BuildResult:
        config, problems = self._environment_config(base, commit)
        result = BuildResult(config=config, commit=commit, problems=problems)
        if problems:
            return result
        policies, policy_files = self._policies(config, commit, result)
        docs = self._documents(config, commit, policy_files, result)
        if result.problems:
            return result
        self._validate(config, docs, result)
        if result.problems:
            return result
        found = evaluate(policies, docs, environment=config.name, namespace=config.namespace,
                         production=config.production)
        found += self._namespace_problems(config, docs, found)
        result.problems.extend(p for p in found if p.is_error)
        result.warnings.extend(p for p in found if not p.is_error)
        if result.problems:
            result.policy_failed = True
            return result
        result.objects = self._objects(config, commit, docs, result)
        return result

    def _environment_config(self, base: EnvironmentConfig, commit: str) -> tuple[EnvironmentConfig, list[Problem]]:
        """The environment as the branch's own reconciler.yaml describes it (so settings are promoted
        with the workflows); the branch itself always comes from the config branch."""
        for name in CONFIG_FILES:
            try:
                raw = self.source.read(commit, name)
            except TooLarge as exc:
                return base, [Problem(name, 1, "(file)", str(exc))]
            if raw is None:
                continue
            try:
                parsed = parse_config(raw.decode("utf-8-sig"), name)
            except SpecError as exc:
                return base, exc.problems
            except UnicodeDecodeError:
                return base, [Problem(name, 1, "(file)", "not UTF-8 text")]
            own = parsed.environment(base.name)
            if own is None:
                return base, []
            return EnvironmentConfig(**{**own.__dict__, "branch": base.branch}), []
        return base, []

    def _parse(self, path: str, blob: str, size: int | None = None) -> list[Document] | SpecError:
        with self._lock:
            cached = self._parsed.get(blob + path)
        if cached is not None:
            return cached
        try:
            text = self.source.read_blob(blob, size).decode("utf-8-sig")
            parsed: list[Document] | SpecError = load_text(text, path)
        except UnicodeDecodeError as exc:
            parsed = SpecError([Problem(path, 1, "(file)", f"not UTF-8 text: {exc.reason}")])
        except TooLarge as exc:
            parsed = SpecError([Problem(path, 1, "(file)", str(exc))])
        except SpecError as exc:
            parsed = exc
        with self._lock:
            if len(self._parsed) >= _PARSE_CACHE_SIZE:  # bounded: every blob ever seen would pile up
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[blob + path] = parsed
        return parsed

    def _policies(self, config: EnvironmentConfig, commit: str, result: BuildResult) -> tuple[list[Policy], tuple]:
        choice = config.policies
        policies = [p for p in default_policies() if p.name not in choice.disable] if choice.defaults else []
        folders = tuple(f.strip("/") for f in choice.files)
        blobs = self.source.blob_shas(commit)
        for wanted in folders:
            matched = sorted(p for p in blobs if p.endswith(_YAML) and under_folder(p, (wanted,)))
            if not matched:
                result.problems.append(Problem("reconciler.yaml", config.line, "policies.files",
                                               f"policy file or folder {wanted} not found on the branch"))
            for path in matched:
                try:
                    text = self.source.read_blob(blobs[path]).decode("utf-8-sig")
                    policies.extend(p for p in parse_policies(text, path) if p.name not in choice.disable)
                except SpecError as exc:
                    result.problems.extend(exc.problems)
                except TooLarge as exc:
                    result.problems.append(Problem(path, 1, "(file)", str(exc)))
        return policies, folders

    def _documents(self, config: EnvironmentConfig, commit: str, policy_files: tuple, result: BuildResult) -> list:
        docs: list[Document] = []
        blobs = self.source.blob_shas(commit, config.path)
        if config.path and not blobs:
            result.problems.append(Problem("reconciler.yaml", config.line, f"environments.{config.name}.path",
                                           f"folder {config.path} not found on branch {config.branch}"))
        wanted = [p for p in sorted(blobs) if p.endswith(_YAML) and not _hidden(p) and p not in CONFIG_FILES
                  and not under_folder(p, policy_files)]
        # Sizes from the tree, checked before anything is read or parsed.
        all_sizes, limits = self.source.blob_sizes(commit, config.path), current_limits()
        sizes = {p: all_sizes.get(p, 0) for p in wanted}
        big = [Problem(p, 1, "(file)", str(too_large("the file", size, limits.file_bytes, "file_bytes")))
               for p, size in sizes.items() if size > limits.file_bytes]
        if not big and sum(sizes.values()) > limits.environment_files_bytes:  # many files under the cap add up
            what = f"the YAML of environment {config.name} ({len(wanted)} files)"
            big = [Problem(config.path or ".", 1, "(folder)", str(too_large(
                what, sum(sizes.values()), limits.environment_files_bytes, "environment_files_bytes")))]
        if big:
            result.problems.extend(big)
            return docs
        for path in wanted:
            parsed = self._parse(path, blobs[path], sizes[path] or None)
            if isinstance(parsed, SpecError):
                result.problems.extend(parsed.problems)
            else:
                docs.extend(parsed)
        return docs

    def _validate(self, config: EnvironmentConfig, docs: list[Document], result: BuildResult) -> None:
        found = validate_documents(docs, template_lookup=self.template_lookup)
        reserved = {LIMITS_CONFIGMAP, *config.semaphores} if config.max_running_workflows is not None \
            else set(config.semaphores)
        for doc in docs:
            if doc.kind not in SYNC_KINDS:
                found.append(Problem(doc.filename, doc.line_of(("kind",)), "kind",
                                     f"{doc.kind} is not synced to an environment (synced kinds: "
                                     f"{', '.join(SYNC_KINDS)})"))
            elif doc.kind == "ConfigMap" and doc.name in reserved:
                found.append(Problem(doc.filename, doc.line_of(("metadata", "name")), "metadata.name",
                                     f"ConfigMap {doc.name} is written from reconciler.yaml limits; "
                                     "rename it or remove the limit"))
            elif doc.kind == "Workflow" and not (doc.obj.get("spec") or {}).get("workflowTemplateRef"):
                declared = {k: v for k, v in config.parameters.items()}
                found.extend(check_submission(doc, declared, template_lookup=self.template_lookup))
        result.problems.extend(p for p in found if p.is_error)
        # Warnings a step would print at run time ("a Kubernetes-only field: the local executor ignores it") are noise
        # for a sync; keep the others.
        result.warnings.extend(p for p in found if not p.is_error and "local executor" not in p.message)

    @staticmethod
    def _namespace_problems(config: EnvironmentConfig, docs: list[Document], found: list[Problem]) -> list[Problem]:
        """The environment's namespace is enforced even if the own-namespace policy is disabled."""
        reported = {(p.filename, p.field) for p in found if p.is_error}
        problems = []
        for doc in docs:
            ns = doc.namespace
            if ns and ns != config.namespace and (doc.filename, "metadata.namespace") not in reported:
                problems.append(Problem(doc.filename, doc.line_of(("metadata", "namespace")), "metadata.namespace",
                                        f"environment {config.name} deploys to namespace {config.namespace}, "
                                        f"not {ns}"))
        return problems

    def _objects(self, config: EnvironmentConfig, commit: str, docs: list[Document],
                 result: BuildResult) -> list[DesiredObject]:
        objects = []
        for doc in docs:
            obj = copy.deepcopy(doc.obj)
            override_parameters(obj, config.parameters)
            meta = obj.setdefault("metadata", {})
            if obj["kind"] == "Workflow":
                meta["name"] = workflow_name(obj, {"spec": obj.get("spec"), "labels": meta.get("labels")})
                meta.pop("generateName", None)
            if config.engine == "argo":
                for_argo_controller(obj)
            objects.append(self._mark(obj, config, commit, doc.filename, doc.line_of(("metadata",))))
        for name, data in self._limit_configmaps(config).items():
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
            objects.append(self._mark(cm, config, commit, "reconciler.yaml", config.line))
        return objects

    @staticmethod
    def _limit_configmaps(config: EnvironmentConfig) -> dict[str, dict[str, str]]:
        maps: dict[str, dict[str, str]] = {}
        if config.max_running_workflows is not None:
            maps[LIMITS_CONFIGMAP] = {"maxRunningWorkflows": str(config.max_running_workflows)}
        for name, keys in config.semaphores.items():
            maps.setdefault(name, {}).update({key: str(value) for key, value in keys.items()})
        return maps

    @staticmethod
    def _mark(obj: dict, config: EnvironmentConfig, commit: str, path: str, line: int) -> DesiredObject:
        meta = obj["metadata"]
        meta["namespace"] = config.namespace
        digest = content_hash(obj)
        meta.setdefault("labels", {}).update({MANAGED_BY: MANAGER, ENVIRONMENT_LABEL: config.name})
        meta.setdefault("annotations", {}).update({SOURCE_COMMIT: commit, CONTENT_HASH: digest, SOURCE_PATH: path})
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            meta.pop(key, None)
        obj.pop("status", None)
        return DesiredObject(obj=obj, path=path, line=line, content_hash=digest)


def for_argo_controller(obj: dict) -> None:
    """What Argo's current CRDs need of an object we accept in older spellings: since Argo 3.6 a
    CronWorkflow has only `schedules` (the singular `schedule` is gone from the schema, so a cluster
    would prune it and then refuse the object for lacking `schedules`)."""
    spec = obj.get("spec")
    if obj.get("kind") == "CronWorkflow" and isinstance(spec, dict) and "schedule" in spec:
        single = spec.pop("schedule")
        spec.setdefault("schedules", [single] if single else [])

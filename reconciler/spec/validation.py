"""Validation (lint): JSON Schema checks per kind, then semantic checks across templates and files.

The schemas in ``schemas/`` decide which fields are accepted; this module only turns
jsonschema's errors into one-line problems that name the file, the line and the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry, Resource

from reconciler import names

from .loading import Document, format_path, json_type, load_file
from .problems import Problem, SpecError
from .semantics import TemplateIndex, TemplateLookup, check_semantics
from .submission import check_submission

__all__ = ["SCHEMA_FILES", "check_submission", "lint_paths", "schema_for", "validate_documents"]

SCHEMA_FILES = {
    "Workflow": "workflow.json",
    "WorkflowTemplate": "workflowtemplate.json",
    "ClusterWorkflowTemplate": "clusterworkflowtemplate.json",
    "CronWorkflow": "cronworkflow.json",
    "ConfigMap": "configmap.json",
    "PersistentVolumeClaim": "persistentvolumeclaim.json",
}
K8S_ONLY = "x-k8s-only"
LOCAL_NO_EFFECT = "has no effect on the local executor"

def _k8s_only(validator: Any, value: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
    # Not a failure: a marker so that the schema, not code, lists the Kubernetes-only fields.
    if value:
        yield ValidationError(LOCAL_NO_EFFECT)


NOT_ENFORCED = "x-not-enforced"


def _not_enforced(validator: Any, value: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
    # A field accepted ahead of its behaviour is said out loud, never silently ignored.
    if value:
        yield ValidationError(str(value))


_Validator = validators.extend(Draft202012Validator, {K8S_ONLY: _k8s_only, NOT_ENFORCED: _not_enforced})


@functools.cache
def _load_schemas() -> tuple[Registry, dict[str, dict]]:
    folder = resources.files("reconciler.spec") / "schemas"
    by_file: dict[str, dict] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            by_file[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in by_file.values()
    )
    return registry, by_file


def schema_for(kind: str) -> dict | None:
    """The JSON Schema accepted for ``kind``, or None when the kind is unsupported."""
    filename = SCHEMA_FILES.get(kind)
    return _load_schemas()[1][filename] if filename else None


@functools.cache
def _validator(kind: str) -> Any:
    registry, _ = _load_schemas()
    return _Validator(schema_for(kind), registry=registry)


def _declared_properties(schema: Any, seen: frozenset = frozenset()) -> set[str]:
    """Property names a schema declares, following $ref/allOf, for unevaluatedProperties errors."""
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen and "#/$defs/" in ref:
        defs = _load_schemas()[1]["common.json"]["$defs"]
        names |= _declared_properties(defs.get(ref.split("#/$defs/", 1)[1]), seen | {ref})
    for sub in schema.get("allOf", []):
        names |= _declared_properties(sub, seen)
    return names


def _required_alternatives(subschemas: Any) -> list[str] | None:
    """['container', 'script', ...] when every alternative is just {"required": [one field]}."""
    if not isinstance(subschemas, list):
        return None
    names = []
    for sub in subschemas:
        if not (isinstance(sub, dict) and set(sub) == {"required"} and len(sub["required"]) == 1):
            return None
        names.append(sub["required"][0])
    return names


# The schema's name patterns (common.json objectName, namespaceName) and the rule that explains them.
_NAME_RULES = {names.SUBDOMAIN_PATTERN: names.dns1123_subdomain, names.LABEL_PATTERN: names.dns1123_label}


def _translate(error: ValidationError, doc: Document) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance

    def problem(message: str, at: tuple = path, severity: str = "error") -> Problem:
        return Problem(doc.filename, doc.line_of(at), format_path(at), message, severity)

    if kind == K8S_ONLY:
        yield problem(LOCAL_NO_EFFECT, severity="warning")
    elif kind == NOT_ENFORCED:
        yield problem(str(value), severity="warning")
    elif kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        if kind == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            patterns = list(error.schema.get("patternProperties", {}))
        else:
            known, patterns = _declared_properties(error.schema), []
        for key in instance:
            if key not in known and not any(re.search(p, key) for p in patterns):
                at = path + (key,)
                yield problem(f"unsupported field {format_path(at)}", at)
    elif kind == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                # The line is the parent's: the missing field has no line of its own.
                missing = format_path(path + (name,))
                yield Problem(doc.filename, doc.line_of(path), missing, f"missing required field {missing}")
    elif kind == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        yield problem(f"expected {expected}, got {json_type(instance)}")
    elif kind == "enum":
        yield problem(f"expected one of {', '.join(repr(v) for v in value)}, got {instance!r}")
    elif kind == "const":
        yield problem(f"expected {value!r}, got {instance!r}")
    elif kind in ("minimum", "maximum"):
        yield problem(f"expected a value {'>=' if kind == 'minimum' else '<='} {value}, got {instance!r}")
    elif kind in ("pattern", "maxLength") and isinstance(instance, str) and error.schema.get("pattern") in _NAME_RULES:
        # A name or namespace field: said in Kubernetes' words, as metadata.name is.
        for message in _NAME_RULES[error.schema["pattern"]](instance):
            yield problem(f"Invalid value: {json.dumps(instance, ensure_ascii=False)}: {message}")
    elif kind in ("minLength", "minItems"):
        yield problem("must not be empty")
    elif kind == "maxProperties":
        yield problem(f"expected at most {value} field(s), got {', '.join(instance)}")
    elif kind in ("oneOf", "anyOf", "not"):
        if not isinstance(instance, dict):
            return  # the type error reported for the same field says it better
        if kind == "not":
            exclusive = value.get("required") if isinstance(value, dict) and list(value) == ["required"] else None
            yield problem(f"{' and '.join(exclusive)} cannot be set together" if exclusive else error.message)
            return
        options = _required_alternatives(value)
        found = [n for n in options or [] if n in instance]
        if options is None:
            yield problem(error.message)
        elif kind == "anyOf":
            yield problem(f"expected at least one of {', '.join(options)}")
        else:
            yield problem(f"expected exactly one of {', '.join(options)}, found {', '.join(found) or 'none'}")
    else:
        yield problem(error.message)


def _schema_problems(doc: Document, local_executor: bool) -> list[Problem]:
    kind = doc.kind
    if kind is None:
        return [Problem(doc.filename, doc.line_of(("kind",)), "kind", "missing kind")]
    if kind not in SCHEMA_FILES:
        return [Problem(doc.filename, doc.line_of(("kind",)), "kind", f"unsupported kind {kind}")]
    problems: list[Problem] = []
    has_unsupported: set[str] = set()  # formatted paths of objects with an unsupported field
    for error in _validator(kind).iter_errors(doc.obj):
        for problem in _translate(error, doc):
            if problem.severity == "warning" and not local_executor:
                continue
            problems.append(problem)
            if problem.message.startswith("unsupported field "):
                has_unsupported.add(format_path(tuple(error.absolute_path)))
    # "expected exactly one of container, script, ... found none" next to "unsupported field
    # ...resource" only repeats the same mistake; the unsupported field is the useful half.
    return [p for p in problems if not (p.message.endswith("found none") and p.field in has_unsupported)]


def _duplicate_objects(docs: list[Document]) -> dict[int, Problem]:
    """Second and later definitions of the same object, keyed by id() of the document."""
    first: dict[tuple, Document] = {}
    found: dict[int, Problem] = {}
    for doc in docs:
        if doc.kind is None or doc.name is None:
            continue
        key = (doc.kind, "" if doc.kind == "ClusterWorkflowTemplate" else doc.namespace, doc.name)
        original = first.setdefault(key, doc)
        if original is not doc:
            at = ("metadata", "name")
            found[id(doc)] = Problem(doc.filename, doc.line_of(at), "metadata.name",
                                     f"duplicate {doc.kind} {doc.name} (first defined at "
                                     f"{original.filename}:{original.line_of(at)})")
    return found


def _name_problems(doc: Document) -> list[Problem]:
    """Names, namespace, labels and annotations checked as Kubernetes (and Argo) check them; the
    schema has already reported what is not a string or not a map."""
    meta = doc.obj.get("metadata")
    if doc.kind not in SCHEMA_FILES or not isinstance(meta, dict):
        return []
    strings = {k: meta[k] for k in ("name", "generateName", "namespace") if isinstance(meta.get(k), str)}
    maps = {k: meta[k] for k in ("labels", "annotations") if isinstance(meta.get(k), dict)}
    clean = {**strings, **maps}
    found = names.meta_errors(doc.kind, clean, namespaced=doc.kind != "ClusterWorkflowTemplate")
    # A missing name is the schema's to report: it says which field the kind requires.
    return [Problem(doc.filename, doc.line_of(("metadata", *path)), names.field_name(path), message)
            for path, message in found if not message.startswith("Required value")]


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def validate_documents(docs: list[Document], *, template_lookup: TemplateLookup | None = None,
                       local_executor: bool = True) -> list[Problem]:
    """All problems of ``docs``: schema errors, semantic errors and (local executor) warnings.

    ``template_lookup(kind, namespace, name)`` returns a deployed (Cluster)WorkflowTemplate object
    or None; templates in ``docs`` themselves are found first. Without a lookup, references to
    templates outside the batch are not checked. Problems are grouped by document in input order
    and sorted by line within each document.
    """
    duplicates = _duplicate_objects(docs)
    index = TemplateIndex(docs, template_lookup)
    result: list[Problem] = []
    for doc in docs:
        found = _schema_problems(doc, local_executor)
        found += _name_problems(doc)
        found += check_semantics(doc, index)
        if id(doc) in duplicates:
            found.append(duplicates[id(doc)])
        result += sorted(_dedupe(found), key=lambda p: p.line)
    return _dedupe(result)


def _yaml_files(directory: Path) -> list[Path]:
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory).parts
        # Hidden folders hold other tools' YAML (.git, .github workflows); reconciler.yaml is the
        # repository's own configuration, not a workflow object.
        if any(part.startswith(".") for part in relative) or path.name in ("reconciler.yaml", "reconciler.yml"):
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file():
            found.append(path)
    return sorted(found)


def collect_files(paths: list[str]) -> tuple[list[Path], list[Problem]]:
    """The YAML files `lint` reads for `paths` (directories searched recursively, each file once), and a
    problem per path that does not exist."""
    problems: list[Problem] = []
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(_yaml_files(path))
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(str(raw), 1, "(file)", "no such file or directory"))
    return list(dict.fromkeys(files)), problems


def lint_paths(paths: list[str], *, template_lookup: TemplateLookup | None = None) -> list[Problem]:
    """Load and validate files and directories (recursively *.yaml/*.yml); every problem of every file.

    All documents are validated as one batch, so a templateRef may point at a template in
    another file of the same lint run.
    """
    files, problems = collect_files(paths)
    docs: list[Document] = []
    for file in files:
        try:
            docs.extend(load_file(file))
        except SpecError as exc:
            problems.extend(exc.problems)
    problems.extend(validate_documents(docs, template_lookup=template_lookup))
    # A Workflow file is submitted as it stands, so an argument without a value is an error here
    # too (a WorkflowTemplate's may still be given at submit time).
    seen = {(p.filename, p.line, p.message) for p in problems}
    for doc in docs:
        if doc.obj.get("kind") == "Workflow" and not (doc.obj.get("spec") or {}).get("workflowTemplateRef"):
            for p in check_submission(doc, {}, template_lookup=template_lookup):
                if (p.filename, p.line, p.message) not in seen:
                    problems.append(p)
    order = {str(f): i for i, f in enumerate(files)}
    return sorted(problems, key=lambda p: (order.get(p.filename, -1), p.line))

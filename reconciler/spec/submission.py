"""Submit-time checks: what must hold once the parameters of one particular run are known."""

from __future__ import annotations

from typing import Any

from .loading import Document, format_path
from .problems import Problem
from .semantics import (
    TemplateIndex,
    TemplateLookup,
    find_template,
    resolve_workflow_template_ref,
    workflow_spec,
)


def _text(value: Any) -> str:
    # Parameters are strings on the command line; YAML may have written the enum as true or 3.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parameters(spec: dict | None) -> list[tuple[int, dict]]:
    args = spec.get("arguments") if isinstance(spec, dict) else None
    params = args.get("parameters") if isinstance(args, dict) else None
    return [(i, p) for i, p in enumerate(params if isinstance(params, list) else [])
            if isinstance(p, dict) and isinstance(p.get("name"), str)]


def check_submission(doc: Document, parameters: dict[str, str], *,
                     template_lookup: TemplateLookup | None = None) -> list[Problem]:
    """Problems that stop ``doc`` being run with the ``-p`` overrides ``parameters``.

    Every workflow argument needs a value (its own, a valueFrom, or an override), values must be
    in the parameter's enum, the entrypoint must name a template, and the entrypoint's input
    parameters must be satisfiable from the workflow arguments. A workflowTemplateRef is resolved
    through ``template_lookup``; if it cannot be resolved and no lookup is given, the checks that
    need the referenced template are skipped.
    """
    problems: list[Problem] = []
    spec, prefix = workflow_spec(doc)

    def report(at: tuple, message: str) -> None:
        problems.append(Problem(doc.filename, doc.line_of(at), format_path(at), message))

    if spec is None:
        report(("spec",), f"{doc.kind or 'document'} has no workflow spec to submit")
        return problems
    ref_at = prefix + ("workflowTemplateRef",)
    ref_spec: dict | None = None
    complete = True  # False when the referenced template could not be examined
    if "workflowTemplateRef" in spec:
        resolved = resolve_workflow_template_ref(spec["workflowTemplateRef"], doc.namespace,
                                                 TemplateIndex([], template_lookup))
        if resolved is None or resolved[3] is None:
            complete = False
            if resolved is not None and resolved[2]:
                report(ref_at + ("name",), f"workflowTemplateRef names unknown {resolved[0]} {resolved[1]}")
                return problems
        else:
            ref_spec = resolved[3]

    # The workflow's own arguments override those of the referenced template, by name.
    args: dict[str, tuple[dict, tuple]] = {}
    for _, param in _parameters(ref_spec):
        args[param["name"]] = (param, ref_at)
    for i, param in _parameters(spec):
        args[param["name"]] = (param, prefix + ("arguments", "parameters", i))
    for name, (param, at) in args.items():
        if name in parameters:
            value: Any = parameters[name]
        elif param.get("value") is not None:
            value = param["value"]
        elif isinstance(param.get("valueFrom"), dict):
            continue  # resolved when the workflow starts
        else:
            report(at, f"workflow parameter {name} has no value; pass -p {name}=VALUE")
            continue
        enum = param.get("enum")
        if isinstance(enum, list) and enum and _text(value) not in {_text(v) for v in enum}:
            allowed = ", ".join(_text(v) for v in enum)
            report(at, f"value {_text(value)!r} of parameter {name} is not one of {allowed}")

    entrypoint = spec.get("entrypoint") or (ref_spec or {}).get("entrypoint")
    if not entrypoint:
        if complete:
            report(prefix + ("entrypoint",), "no entrypoint: set spec.entrypoint")
        return problems
    if not isinstance(entrypoint, str) or "{{" in entrypoint:
        return problems
    found = find_template(spec, entrypoint)
    local = found is not None
    if found is None and ref_spec is not None:
        found = find_template(ref_spec, entrypoint)
    if found is None:
        if complete:
            report(prefix + ("entrypoint",), f"entrypoint names unknown template {entrypoint}")
        return problems

    inputs = found[1].get("inputs")
    inputs_params = inputs.get("parameters") if isinstance(inputs, dict) else None
    for k, param in enumerate(inputs_params if isinstance(inputs_params, list) else []):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            continue
        name = param["name"]
        if any(param.get(key) is not None for key in ("value", "default", "valueFrom")):
            continue
        if name not in args and name not in parameters:
            # A template from the referenced object has no line here; point at the reference.
            at = prefix + ("templates", found[0], "inputs", "parameters", k) if local else ref_at
            report(at, f"input parameter {name} of entrypoint template {entrypoint} has no value; "
                       f"declare it in spec.arguments.parameters or pass -p {name}=VALUE")
    return problems

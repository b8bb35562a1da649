"""Turning a Workflow document (plus `-p` overrides) into a stored, runnable Workflow object."""

from __future__ import annotations

import copy
from collections.abc import Callable

from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

API_VERSION = "argoproj.io/v1alpha1"


class SubmissionError(Exception):
    pass


def apply_parameters(spec: dict, parameters: dict[str, str]) -> None:
    """`-p name=value`: override a declared workflow argument, as `argo submit -p` does."""
    if not parameters:
        return
    params = spec.setdefault("arguments", {}).setdefault("parameters", [])
    declared = {p["name"]: p for p in params}
    for name, value in parameters.items():
        if name in declared:
            declared[name].pop("valueFrom", None)
            declared[name]["value"] = value
        else:
            params.append({"name": name, "value": value})


def merge_template_spec(template_spec: dict, wf_spec: dict) -> dict:
    """A workflowTemplateRef run: the template's spec, with the workflow's own fields on top and
    its arguments overriding the template's by name."""
    merged = copy.deepcopy(template_spec)
    for key, value in wf_spec.items():
        if key in ("workflowTemplateRef", "arguments"):
            continue
        merged[key] = copy.deepcopy(value)
    args = merged.setdefault("arguments", {})
    own = wf_spec.get("arguments") or {}
    for kind in ("parameters", "artifacts"):
        base = {p["name"]: p for p in args.get(kind, []) or []}
        for item in own.get(kind, []) or []:
            base[item["name"]] = copy.deepcopy(item)
        if base:
            args[kind] = list(base.values())
    return merged


def build_workflow(
    doc: dict,
    *,
    namespace: str,
    parameters: dict[str, str] | None = None,
    lookup: Callable[[str, str, str], dict | None] | None = None,
) -> dict:
    """A Workflow object ready for `store.create`: namespaced, parameters applied, and a
    workflowTemplateRef resolved into `status.storedWorkflowTemplateSpec`."""
    obj = copy.deepcopy(doc)
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = meta.get("namespace") or namespace
    spec = obj.setdefault("spec", {})
    status: dict = {"phase": "Pending"}
    ref = spec.get("workflowTemplateRef")
    if ref:
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        tmpl_obj = lookup(kind, "" if ref.get("clusterScope") else meta["namespace"], ref["name"]) if lookup else None
        if tmpl_obj is None:
            raise SubmissionError(f"{kind} {ref['name']!r} not found")
        stored = merge_template_spec(tmpl_obj.get("spec", {}), spec)
        apply_parameters(stored, parameters or {})
        status["storedWorkflowTemplateSpec"] = stored
        labels = meta.setdefault("labels", {})
        labels["workflows.argoproj.io/workflow-template"] = ref["name"]
    else:
        apply_parameters(spec, parameters or {})
    obj["status"] = status
    return obj


def store_lookup(store: ObjectStore, default_namespace: str | None = None) -> Callable[[str, str, str], dict | None]:
    """Finds deployed templates. `default_namespace` is where a document that names no namespace of
    its own will be stored (`-n`), so its references resolve there, not in no namespace at all."""
    def lookup(kind: str, namespace: str | None, name: str) -> dict | None:
        if kind == "ClusterWorkflowTemplate":
            namespace = ""
        try:
            return store.get(kind, namespace or default_namespace, name)
        except NotFound:
            return None

    return lookup

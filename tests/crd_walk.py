"""Walk every field path of Argo's CRD schemas beside our JSON Schemas and classify each one.

A path is ``implemented`` (our schema declares it), ``k8s-only`` (declared, or under a field declared,
with ``x-k8s-only``: accepted with a warning on the local executor; or ``x-local-error``: valid, but an
error on the local executor, as a resource template), ``not-run`` (declared with
``x-not-enforced``: accepted with a warning that says what the local engine does instead; these are
the work still to do) or ``missing`` (neither: a manifest using it fails lint). Run ``python -m tests.crd_walk`` to print the coverage and the
missing paths.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.spec.validation import K8S_ONLY, LOCAL_ERROR, NOT_ENFORCED, _load_schemas, schema_for

CRD_DIR = Path(__file__).parent / "corpus" / "argo-crds"
CRD_FILES = {
    "Workflow": "argoproj.io_workflows.yaml",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
    "ClusterWorkflowTemplate": "argoproj.io_clusterworkflowtemplates.yaml",
    "CronWorkflow": "argoproj.io_cronworkflows.yaml",
}
IMPLEMENTED, K8S, NOT_RUN, MISSING = "implemented", "k8s-only", "not-run", "missing"


@dataclass(frozen=True)
class Field:
    kind: str
    path: str
    status: str


@functools.cache
def crd_spec(kind: str) -> dict:
    """The openAPIV3Schema of ``spec`` in Argo's CRD for ``kind``."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(CRD_DIR / CRD_FILES[kind], encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=loader)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _defs() -> dict:
    return _load_schemas()[1]["common.json"]["$defs"]


def _chain(schema: Any) -> list[dict]:
    """``schema`` and every schema it pulls in through $ref and allOf (what jsonschema merges)."""
    out: list[dict] = []
    todo = [schema]
    while todo:
        node = todo.pop()
        if not isinstance(node, dict) or any(node is seen for seen in out):
            continue
        out.append(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            todo.append(_defs()[ref.split("#/$defs/", 1)[1]])
        todo.extend(node.get("allOf", []))
    return out


def _ours(schema: Any, key: str) -> Any:
    """Our sub-schema for ``key`` ("[]" = array item, "{}" = map value), or None when not declared."""
    for node in _chain(schema):
        if key == "[]" and isinstance(node.get("items"), dict):
            return node["items"]
        if key == "{}" and isinstance(node.get("additionalProperties"), dict):
            return node["additionalProperties"]
        if key not in ("[]", "{}") and key in node.get("properties", {}):
            return node["properties"][key]
    for node in _chain(schema):
        # An open location whose `else` warns (keyOnlyLocation): its other fields are accepted with
        # that warning.
        if key not in ("[]", "{}") and isinstance(node.get("else"), dict) and "additionalProperties" not in node:
            return node["else"]
    return None


def _status(schema: Any) -> str:
    chain = _chain(schema)
    if any(node.get(K8S_ONLY) or node.get(LOCAL_ERROR) for node in chain):
        return K8S
    if any(node.get(NOT_ENFORCED) for node in chain):
        return NOT_RUN
    return IMPLEMENTED


def walk(kind: str) -> list[Field]:
    """Every field path of ``kind``'s CRD spec, classified against our schema."""
    ours_spec = _ours(schema_for(kind), "spec")
    found: list[Field] = []

    def visit(crd: dict, ours: Any, path: str, inherited: str | None) -> None:
        children = [(name, sub, f"{path}.{name}") for name, sub in crd.get("properties", {}).items()]
        if isinstance(crd.get("items"), dict):
            children.append(("[]", crd["items"], f"{path}[]"))
        if isinstance(crd.get("additionalProperties"), dict):
            children.append(("{}", crd["additionalProperties"], f"{path}{{}}"))
        for key, sub, sub_path in children:
            mine = _ours(ours, key) if ours is not None else None
            if inherited:
                status = inherited
            elif mine is None:
                status = MISSING
            else:
                status = _status(mine)
            if key not in ("[]", "{}"):
                found.append(Field(kind, sub_path, status))
            # Below a Kubernetes-only or missing field every path shares its fate.
            visit(sub, mine, sub_path, status if status != IMPLEMENTED else None)

    visit(crd_spec(kind), ours_spec, "spec", None)
    return found


def coverage() -> tuple[list[Field], Counter]:
    fields = [field for kind in CRD_FILES for field in walk(kind)]
    return fields, Counter(field.status for field in fields)


def report(fields: list[Field], counts: Counter) -> str:
    total = sum(counts.values())
    return (
        f"{total} CRD field paths: {counts[IMPLEMENTED]} implemented ({100 * counts[IMPLEMENTED] / total:.1f}%), "
        f"{counts[K8S]} Kubernetes-only ({100 * counts[K8S] / total:.1f}%), {counts[NOT_RUN]} accepted but not "
        f"run locally ({100 * counts[NOT_RUN] / total:.1f}%), {counts[MISSING]} missing "
        f"({100 * counts[MISSING] / total:.1f}%)"
    )


def missing_roots(fields: list[Field]) -> list[str]:
    """The shallowest missing paths (a missing field's children are not listed again)."""
    roots: list[str] = []
    for field in fields:
        if field.status == MISSING and not any(field.path.startswith(r + ".") or field.path.startswith(r + "[")
                                               for r in roots):
            roots.append(field.path)
    return roots


if __name__ == "__main__":
    all_fields, all_counts = coverage()
    print(report(all_fields, all_counts))
    if "-v" in sys.argv:
        for kind in CRD_FILES:
            for root in sorted(set(missing_roots([f for f in all_fields if f.kind == kind]))):
                print(kind, root)

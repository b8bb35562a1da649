"""`retry` and `resubmit`: new starting points made from a finished workflow.

Both are pure functions of workflow objects; the runner then drives the result like any other
workflow (a retried one through replay, so its succeeded nodes are answered from the record)."""

from __future__ import annotations

import copy

from reconciler.engine import nodes as N
from reconciler.engine.operator import Operator, call_key
from reconciler.engine.scope import template_scope
from reconciler.engine.submission import apply_parameters
from reconciler.engine.templates import LOCAL, TemplateContext, TemplateLookup, TemplateNotFound

MEMOIZED_FROM = "reconciler.io/memoized-from"
RETRY_DROPS = ("finishedAt", "finishedAtUnix", "message", "progress", "shutdown", "shutdownAtUnix",
               "shutdownPhase", "shutdownExitHandler")


class RetryError(ValueError):
    pass


def formulate_retry(wf: dict) -> dict:
    """The workflow's status with its failed part removed, ready to run again in place.

    A node is kept when it succeeded, or when it is an attempt of a retry node that succeeded (its
    failed attempts are that node's history). Everything else (failed, errored, skipped and
    omitted nodes, the containers above them, the exit handler) is run or decided again; the
    replay answers the kept nodes from the record, so they do not run again.

    "Attempt of" is the structural parent, not any node listing it in `children`: a DAG task's node
    is also a child of every outbound node of the tasks it depends on (Argo's edges), so only the
    Retry node whose children include it makes a node an attempt."""
    status = wf.get("status") or {}
    phase = status.get("phase")
    if phase not in (N.FAILED, N.ERROR):
        raise RetryError(f"workflow {wf['metadata']['name']} is {phase or 'not started'}; only a Failed or "
                         "Errored workflow can be retried")
    nodes = status.get("nodes") or {}
    retry_of = {c: n for n in nodes.values() if n["type"] == N.RETRY for c in n.get("children", []) or []}
    keep: dict[str, dict] = {}
    for node_id, node in nodes.items():
        up = retry_of.get(node_id)
        if node["phase"] == N.SUCCEEDED or (up is not None and up["phase"] == N.SUCCEEDED):
            keep[node_id] = node
    exit_prefix = wf["metadata"]["name"] + ".onExit"  # the exit handler runs again after the retry
    keep = {k: n for k, n in keep.items() if not n["name"].startswith(exit_prefix)}
    new = copy.deepcopy(status)
    for field in RETRY_DROPS:
        new.pop(field, None)
    new["nodes"] = copy.deepcopy(keep)
    for node in new["nodes"].values():
        node["children"] = [c for c in node.get("children", []) or [] if c in keep]
        if not node["children"]:
            node.pop("children", None)
    new["phase"] = N.RUNNING
    return new


def formulate_resubmit(wf: dict, *, memoized: bool, parameters: dict[str, str] | None = None) -> dict:
    """A new Workflow with the same spec and parameters (`parameters` override some, like
    `argo resubmit -p`), and, memoized, a link to this one."""
    meta = wf["metadata"]
    base = meta.get("generateName") or f"{meta['name']}-"
    new_meta = {"generateName": base, "namespace": meta.get("namespace", "default"),
                "labels": dict(meta.get("labels") or {}),
                "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                                if not k.startswith("reconciler.io/")}}
    new_meta["labels"]["workflows.argoproj.io/resubmitted-from-workflow"] = meta["name"]
    if memoized:
        new_meta["annotations"][MEMOIZED_FROM] = meta["name"]
    spec = copy.deepcopy(wf["spec"])
    spec.pop("shutdown", None)
    spec.pop("suspend", None)
    apply_parameters(spec, parameters or {})
    return {"apiVersion": wf.get("apiVersion", "argoproj.io/v1alpha1"), "kind": "Workflow",
            "metadata": new_meta, "spec": spec}


def prior_results(original: dict, lookup: TemplateLookup | None) -> dict[str, dict]:
    """For `resubmit --memoized`: call key -> outputs of every pod that succeeded in `original`."""
    op = Operator(copy.deepcopy(original), lookup=lookup)
    out = {}
    for node in ((original.get("status") or {}).get("nodes") or {}).values():
        if node["type"] != N.POD or node["phase"] != N.SUCCEEDED or not node.get("templateName"):
            continue
        try:
            tmpl = op.resolver.get(TemplateContext(node.get("templateScope", LOCAL)), node["templateName"])
        except TemplateNotFound:
            continue
        inputs = node.get("inputs") or {}
        key = call_key(op.call_body(tmpl, template_scope(inputs)), inputs)
        out[key] = {"workflow": original["metadata"]["name"], "node": node["id"],
                    "outputs": node.get("outputs") or {}}
    return out

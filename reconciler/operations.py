"""What a person can do to workflows, in one place for the CLI and the HTTP API.

Each operation checks its input, writes the store, and raises OperationError with a message a
person can act on (and the HTTP status the API answers with). None of them drives a workflow: a
runner (`reconciler up`, or the CLI's own with --wait) notices the change and acts on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.engine import nodes as N
from reconciler.engine.resubmission import RetryError, formulate_resubmit, formulate_retry
from reconciler.engine.submission import SubmissionError, build_workflow, store_lookup
from reconciler.runner import leases
from reconciler.runner.controls import resume_request
from reconciler.runner.pods import delete_workflow_files
from reconciler.spec import SpecError, check_submission, load_text, validate_documents
from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, Conflict, Invalid, NotFound, StoreError

FINISHED = (N.SUCCEEDED, N.FAILED, N.ERROR)


class OperationError(Exception):
    def __init__(self, message: str, status: int = 400, problems: list | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


def no_workflow(store: ObjectStore, namespace: str, name: str,
                elsewhere: Callable[[str], bool] | None = None) -> OperationError:
    """404 for a workflow not in `namespace`; with `elsewhere` (which namespaces the caller may see), it
    names the namespaces that have a workflow of that name."""
    hint = ""
    if elsewhere is not None:
        from reconciler.listing import namespaces_holding

        found = [ns for ns in namespaces_holding(store, name) if ns != namespace and elsewhere(ns)]
        hint = f"; namespace {', '.join(found)} has one (-n {found[0]})" if found else ""
    return OperationError(f"workflow {name!r} not found in namespace {namespace}{hint}", 404)


def get_workflow(store: ObjectStore, namespace: str, name: str, *,
                 elsewhere: Callable[[str], bool] | None = None) -> dict:
    """The workflow; a 404 names other namespaces holding one of that name that `elsewhere` allows."""
    try:
        return store.get("Workflow", namespace, name)
    except NotFound:
        raise no_workflow(store, namespace, name, elsewhere) from None


def _unfinished(store: ObjectStore, namespace: str, name: str) -> dict:
    wf = get_workflow(store, namespace, name)
    phase = (wf.get("status") or {}).get("phase")
    if phase in FINISHED:
        raise OperationError(f"workflow {name} has already finished ({phase})", 409)
    return wf


def submit_text(store: ObjectStore, text: str, filename: str, namespace: str, parameters: dict[str, str],
                *, annotations: dict | None = None) -> tuple[list[dict], list]:
    """Validate and store every Workflow in a YAML text; nothing is stored if any is invalid.
    Returns the created workflows and the warnings (problems that do not stop a run)."""
    lookup = store_lookup(store, namespace)
    try:
        docs = load_text(text, filename)
    except SpecError as exc:
        raise OperationError("invalid workflow file", 400, exc.problems) from None
    problems = validate_documents(docs, template_lookup=lookup)
    for d in docs:
        if d.obj.get("kind") != "Workflow":
            raise OperationError(f"{filename}:{d.line_of(('kind',))}: kind: submit takes Workflow documents; "
                                 f"use `reconciler apply` for {d.obj.get('kind')}")
        problems.extend(check_submission(d, parameters, template_lookup=lookup))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise OperationError("invalid workflow", 400, errors)
    if not docs:
        raise OperationError(f"{filename}: no Workflow in it")
    built = []
    for d in docs:
        try:
            wf = build_workflow(d.obj, namespace=namespace, parameters=parameters, lookup=lookup)
        except SubmissionError as exc:
            raise OperationError(f"{filename}: {exc}") from None
        if annotations:
            wf["metadata"].setdefault("annotations", {}).update(annotations)
        built.append(wf)
    created = []
    for wf in built:
        try:
            created.append(store.create(wf))
        except AlreadyExists as exc:
            raise OperationError(str(exc), 409) from None
        except StoreError as exc:
            raise OperationError(str(exc), 400) from None
    return created, [p for p in problems if p.severity != "error"]


FROM_KINDS = {"workflowtemplate": "WorkflowTemplate", "wftmpl": "WorkflowTemplate",
              "clusterworkflowtemplate": "ClusterWorkflowTemplate", "cwftmpl": "ClusterWorkflowTemplate",
              "cronworkflow": "CronWorkflow", "cronwf": "CronWorkflow"}


def submit_from(store: ObjectStore, ref: str, namespace: str, parameters: dict[str, str], *,
                annotations: dict | None = None) -> tuple[list[dict], list]:
    """`argo submit --from KIND/NAME`: a Workflow that runs a (Cluster)WorkflowTemplate through a
    workflowTemplateRef, or a CronWorkflow's workflowSpec now (named and labelled as its scheduled runs
    are), with `parameters` as `-p`. Checked and stored as submit_text does."""
    import yaml

    word, _, name = ref.partition("/")
    kind = FROM_KINDS.get(word.lower())
    if kind is None or not name:
        raise OperationError(f"--from {ref}: expected workflowtemplate/NAME, clusterworkflowtemplate/NAME or "
                             "cronwf/NAME")
    ns = "" if kind == "ClusterWorkflowTemplate" else namespace
    try:
        source = store.get(kind, ns, name)
    except NotFound:
        where = "" if not ns else f" in namespace {ns}"
        raise OperationError(f"{kind.lower()} {name!r} not found{where}", 404) from None
    if kind == "CronWorkflow":
        from datetime import datetime, timezone

        from reconciler.schedule.firing import build_scheduled_workflow

        try:
            doc = build_scheduled_workflow(source, datetime.now(timezone.utc), store_lookup(store, namespace))
        except SubmissionError as exc:
            raise OperationError(f"--from {ref}: {exc}") from None
        doc.pop("status", None)
        doc["metadata"].pop("ownerReferences", None)  # a scheduler's mark, not a field a file may carry
    else:
        doc = {"apiVersion": source.get("apiVersion", "argoproj.io/v1alpha1"), "kind": "Workflow",
               "metadata": {"generateName": f"{name}-"},
               "spec": {"workflowTemplateRef": {"name": name, **({"clusterScope": True} if not ns else {})}}}
    return submit_text(store, yaml.safe_dump(doc, sort_keys=False), f"{word}/{name}", namespace, parameters,
                       annotations=annotations)


def suspend(store: ObjectStore, namespace: str, name: str) -> None:
    _unfinished(store, namespace, name)
    store.patch("Workflow", namespace, name, {"spec": {"suspend": True}}, return_object=False)


def resume(store: ObjectStore, namespace: str, name: str, node: str | None = None,
           parameters: dict[str, str] | None = None) -> None:
    """Resume the workflow and all its suspend nodes, or one suspend node (with its outputs)."""
    wf = _unfinished(store, namespace, name)
    if parameters and not node:
        raise OperationError("output parameters need a node: they belong to one suspend node")
    if node:
        found = [n for n in ((wf.get("status") or {}).get("nodes") or {}).values()
                 if node in (n["id"], n["name"], n["displayName"])]
        if not found:
            raise OperationError(f"workflow {name} has no node {node!r}", 404)
        if found[0]["type"] != N.SUSPEND or N.is_fulfilled(found[0]):
            raise OperationError(f"node {node!r} is not a waiting suspend node ({found[0]['type']}, "
                                 f"{found[0]['phase']})", 409)
    patch: dict = {"metadata": {"annotations": resume_request(node, parameters)}}
    if not node:
        patch["spec"] = {"suspend": None}
    store.patch("Workflow", namespace, name, patch, return_object=False)


def shutdown(store: ObjectStore, namespace: str, name: str, how: str) -> None:
    """`Stop` (exit handler runs) or `Terminate` (it does not); Argo's spec.shutdown."""
    if how not in ("Stop", "Terminate"):
        raise OperationError(f"unknown shutdown strategy {how!r}")
    _unfinished(store, namespace, name)
    store.patch("Workflow", namespace, name, {"spec": {"shutdown": how}}, return_object=False)


def retry(store: ObjectStore, namespace: str, name: str, *, claim: dict | None = None) -> dict:
    wf = get_workflow(store, namespace, name)
    try:
        wf["status"] = formulate_retry(wf)
    except RetryError as exc:
        raise OperationError(str(exc), 409) from None
    wf["spec"].pop("shutdown", None)
    ann = wf["metadata"].setdefault("annotations", {})
    ann.update(claim or leases.released_annotations())
    wf["metadata"]["annotations"] = {k: v for k, v in ann.items() if v is not None}
    try:
        return store.update(wf)
    except Conflict:
        raise OperationError(f"workflow {name} changed while retrying it; try again", 409) from None


def resubmit(store: ObjectStore, namespace: str, name: str, *, memoized: bool = False,
             parameters: dict[str, str] | None = None, claim: dict | None = None) -> dict:
    wf = get_workflow(store, namespace, name)
    new = formulate_resubmit(wf, memoized=memoized, parameters=parameters)
    if claim:
        new["metadata"]["annotations"].update(claim)
    return store.create(new)


def delete(store: ObjectStore, home: Path, namespace: str, name: str) -> None:
    """Delete a workflow with its logs, scratch space, volumes and artifacts (a runner driving it
    sees the deletion and kills its steps)."""
    try:
        store.delete("Workflow", namespace, name)
    except NotFound:
        raise no_workflow(store, namespace, name) from None
    delete_workflow_files(home, namespace, name)


def set_semaphore(store: ObjectStore, namespace: str, ref: str, size: int) -> None:
    """Set the ConfigMap key a semaphore's configMapKeyRef names (`CONFIGMAP/KEY`)."""
    cm, sep, key = ref.partition("/")
    if not sep or not cm or not key:
        raise OperationError(f"{ref}: expected CONFIGMAP/KEY, as in a semaphore's configMapKeyRef")
    if size < 0:
        raise OperationError(f"size must be 0 or more, not {size}")
    for _ in range(5):
        try:
            store.patch("ConfigMap", namespace, cm, {"data": {key: str(size)}}, return_object=False)
            return
        except NotFound:
            try:
                store.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": cm, "namespace": namespace}, "data": {key: str(size)}})
                return
            except AlreadyExists:
                continue
            except Invalid as exc:
                raise OperationError(str(exc), 400) from None
    raise OperationError(f"could not write ConfigMap {cm}", 409)

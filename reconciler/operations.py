"""What a person can do to workflows, in one place for the CLI and the HTTP API.

Each operation checks its input, writes the store, and raises OperationError with a message a
person can act on (and the HTTP status the API answers with). None of them drives a workflow: a
runner (`reconciler up`, or the CLI's own with --wait) notices the change and acts on it."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import artifacts_path
from reconciler.engine import nodes as N
from reconciler.engine.resubmission import RetryError, formulate_resubmit, formulate_retry
from reconciler.engine.submission import SubmissionError, build_workflow, store_lookup
from reconciler.ownership import SUSPEND_OVERRIDE, forced_note, git_source, keep_management, refusal
from reconciler.runner import leases
from reconciler.runner.controls import resume_request
from reconciler.spec import Problem, SpecError, check_submission, load_text, validate_documents
from reconciler.store.base import CLUSTER_SCOPED_KINDS, ObjectStore
from reconciler.store.errors import AlreadyExists, Conflict, NotFound, StoreError

FINISHED = (N.SUCCEEDED, N.FAILED, N.ERROR)
APPLY_KINDS = {"WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "ConfigMap"}
CRON = "CronWorkflow"


class OperationError(Exception):
    def __init__(self, message: str, status: int = 400, problems: list | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


def get_workflow(store: ObjectStore, namespace: str, name: str) -> dict:
    try:
        return store.get("Workflow", namespace, name)
    except NotFound:
        raise OperationError(f"workflow {name!r} not found in namespace {namespace}", 404) from None


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
        raise OperationError(f"workflow {name!r} not found in namespace {namespace}", 404) from None
    forget(home, namespace, name)


def forget(home: Path, namespace: str, name: str) -> None:
    for sub in ("logs", "runs", "volumes"):
        shutil.rmtree(Path(home) / sub / namespace / name, ignore_errors=True)
    LocalArtifactRepository(artifacts_path(Path(home))).delete_prefix(f"{namespace}/{name}/")


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
    raise OperationError(f"could not write ConfigMap {cm}", 409)


# ---- apply: templates, cron workflows, ConfigMaps ----------------------------------------------------

def _documents(store: ObjectStore, manifests: list[tuple[str, str]], namespace: str, kinds: set[str],
               other: str) -> tuple[list, list]:
    """Every document of the (filename, YAML text) pairs, validated; OperationError(400) with every
    problem found (warnings included, in file order) if any is an error or a kind outside `kinds`."""
    docs, problems = [], []
    for filename, text in manifests:
        try:
            docs.extend(load_text(text, filename))
        except SpecError as exc:
            problems.extend(exc.problems)
    if any(p.severity == "error" for p in problems):
        raise OperationError("invalid manifest", 400, problems)
    problems.extend(validate_documents(docs, template_lookup=store_lookup(store, namespace)))
    for d in docs:
        if d.obj.get("kind") not in kinds:
            problems.append(Problem(d.filename, d.line_of(("kind",)), "kind",
                                    f"{other} takes {', '.join(sorted(kinds))}; "
                                    f"use `reconciler {'submit' if d.obj.get('kind') == 'Workflow' else 'apply'}` "
                                    f"for {d.obj.get('kind')}"))
    if any(p.severity == "error" for p in problems):
        raise OperationError("invalid manifest", 400, problems)
    if not docs:
        raise OperationError(f"{', '.join(f for f, _ in manifests)}: no object in it")
    return docs, problems


def _key(doc: dict, namespace: str) -> tuple[str, str, str]:
    kind, meta = doc["kind"], doc.get("metadata") or {}
    return kind, "" if kind in CLUSTER_SCOPED_KINDS else (meta.get("namespace") or namespace), meta["name"]


def _current(store: ObjectStore, key: tuple[str, str, str]) -> dict | None:
    try:
        return store.get(*key)
    except NotFound:
        return None


def apply_manifests(store: ObjectStore, manifests: list[tuple[str, str]], namespace: str, *,
                    force: bool = False) -> tuple[list[str], list]:
    """`reconciler apply`: validate every document of the (filename, YAML text) pairs, then create or
    replace each, like `kubectl apply`; nothing is stored if any document is invalid, or (without
    `force`) would replace an object git manages.

    Returns kubectl's verdict lines ("workflowtemplate/x created|configured|unchanged") and the
    warnings, a note per git-managed object replaced with `force` among them. OperationError(400)
    carries every problem found, warnings included, in file order; OperationError(409) the objects git
    manages, each with the file and line that would replace it."""
    docs, problems = _documents(store, manifests, namespace, APPLY_KINDS, "apply")
    currents = [_current(store, _key(d.obj, namespace)) for d in docs]
    refused = [Problem(d.filename, d.line_of(("metadata", "name")), "metadata.name", why)
               for d, cur in zip(docs, currents) if cur is not None and (why := refusal(cur, "apply"))]
    if refused and not force:
        raise OperationError("objects managed by git", 409, refused)
    lines = [apply_object(store, d.obj, namespace) for d in docs]
    notes = [note for cur in currents if cur is not None and (note := forced_note(cur, "replaced"))]
    return lines, problems + notes


def apply_object(store: ObjectStore, doc: dict, namespace: str) -> str:
    """Create or replace one object (in `namespace` unless it names its own); kubectl's verdict line.
    A git-managed object keeps its management labels and annotations, so the sync restores it."""
    obj = copy.deepcopy(doc)
    kind = obj["kind"]
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = _key(obj, namespace)[1]
    label = f"{kind.lower()}/{meta['name']}"
    try:
        current = store.get(kind, meta["namespace"], meta["name"])
    except NotFound:
        store.create(obj)
        return f"{label} created"
    keep_management(obj, current)
    if current.get("spec") == obj.get("spec") and current.get("data") == obj.get("data") and \
            (current["metadata"].get("labels") or {}) == (meta.get("labels") or {}):
        return f"{label} unchanged"
    obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    if "status" in current:
        obj["status"] = current["status"]
    try:
        store.update(obj)
    except Conflict:
        raise OperationError(f"{label} changed while applying it; try again", 409) from None
    return f"{label} configured"


def create_manifests(store: ObjectStore, manifests: list[tuple[str, str]], namespace: str,
                     kinds: set[str], command: str) -> tuple[list[dict], list]:
    """`reconciler cron create`: like apply, but every object must be new (409 naming the first that
    exists, and nothing is created). Returns the created objects and the warnings."""
    docs, problems = _documents(store, manifests, namespace, kinds, command)
    for d in docs:
        kind, ns, name = _key(d.obj, namespace)
        if _current(store, (kind, ns, name)) is not None:
            raise OperationError(f"{kind.lower()} {name!r} already exists in namespace {ns}"
                                 f"{'' if kind not in APPLY_KINDS else '; use `reconciler apply` to replace it'}",
                                 409)
    created = []
    for d in docs:
        obj = copy.deepcopy(d.obj)
        obj.setdefault("metadata", {})["namespace"] = _key(obj, namespace)[1]
        try:
            created.append(store.create(obj))
        except AlreadyExists as exc:
            raise OperationError(str(exc), 409) from None
    return created, problems


# ---- templates and cron workflows by name ---------------------------------------------------------------

def _not_found(kind: str, namespace: str, name: str) -> OperationError:
    where = "" if kind in CLUSTER_SCOPED_KINDS else f" in namespace {namespace}"
    return OperationError(f"{kind.lower()} {name!r} not found{where}", 404)


def get_object(store: ObjectStore, kind: str, namespace: str, name: str) -> dict:
    try:
        return store.get(kind, namespace, name)
    except NotFound:
        raise _not_found(kind, namespace, name) from None


def delete_object(store: ObjectStore, kind: str, namespace: str, name: str, *, force: bool = False) -> str | None:
    """`reconciler template delete` / `cron delete`: refused (409, naming the environment and file) for
    an object git manages, unless `force`; then the next sync recreates it. Returns the note to show
    after a forced delete of a managed object."""
    current = get_object(store, kind, namespace, name)
    why = refusal(current, "delete")
    if why and not force:
        raise OperationError(why, 409)
    try:
        store.delete(kind, namespace, name, resource_version=current["metadata"]["resourceVersion"])
    except NotFound:
        raise _not_found(kind, namespace, name) from None
    except Conflict:
        raise OperationError(f"{kind.lower()} {name} changed while deleting it; try again", 409) from None
    return forced_note(current, "deleted")


def get_cron_workflow(store: ObjectStore, namespace: str, name: str) -> dict:
    return get_object(store, CRON, namespace, name)


def set_cron_suspend(store: ObjectStore, namespace: str, name: str, suspend: bool) -> str | None:
    """`reconciler cron suspend|resume`: set spec.suspend. On a CronWorkflow git manages, a suspension
    also sets the suspend-override annotation, which the sync respects until resume removes it.
    Returns what to tell the person about git (None for a cron nobody syncs)."""
    current = get_cron_workflow(store, namespace, name)
    source = git_source(current)
    patch: dict = {"spec": {"suspend": suspend}}
    if source is not None:
        patch["metadata"] = {"annotations": {SUSPEND_OVERRIDE: "true" if suspend else None}}
    try:
        store.patch(CRON, namespace, name, patch, return_object=False)
    except NotFound:
        raise _not_found(CRON, namespace, name) from None
    if source is None:
        return None
    if suspend:
        return (f"managed by git ({source.describe()}): it stays suspended across syncs until "
                f"`reconciler cron resume {name}`")
    return f"managed by git ({source.describe()}): git's spec.suspend applies again from the next sync"

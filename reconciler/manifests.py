"""What a person does to stored objects other than workflows, for the CLI and the HTTP API: apply and
create manifests (WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows, ConfigMaps), get and delete
templates and cron workflows by name, suspend and resume cron workflows. Objects git manages are refused
unless forced (see reconciler.ownership). Errors are operations.OperationError, as for workflows."""

from __future__ import annotations

import copy
from collections.abc import Callable

from reconciler.engine.submission import store_lookup
from reconciler.operations import OperationError
from reconciler.ownership import SUSPEND_OVERRIDE, forced_note, git_source, keep_management, refusal
from reconciler.spec import Problem, SpecError, load_text, validate_documents
from reconciler.store.base import CLUSTER_SCOPED_KINDS, ObjectStore
from reconciler.store.errors import AlreadyExists, Conflict, Invalid, NotFound

APPLY_KINDS = {"WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "ConfigMap"}
CRON = "CronWorkflow"


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


def _check_may_write(docs: list, namespace: str, may_write: Callable[[str], bool] | None) -> None:
    """OperationError(403), nothing written, unless `may_write(target namespace)` ("" for cluster-scoped
    kinds) allows every document (the API passes the caller's token grant)."""
    if may_write is None:
        return
    refused = [Problem(d.filename, d.line_of(("metadata",)), "metadata.namespace",
                       f"not allowed to write {_key(d.obj, namespace)[1] or 'cluster-scoped objects'}")
               for d in docs if not may_write(_key(d.obj, namespace)[1])]
    if refused:
        raise OperationError("this token may not write where these documents go; nothing applied", 403, refused)


def apply_manifests(store: ObjectStore, manifests: list[tuple[str, str]], namespace: str, *,
                    force: bool = False, may_write: Callable[[str], bool] | None = None) -> tuple[list[str], list]:
    """`reconciler apply`: validate every document of the (filename, YAML text) pairs, then create or
    replace each, like `kubectl apply`; nothing is stored if any document is invalid, or (without
    `force`) would replace an object git manages.

    Returns kubectl's verdict lines ("workflowtemplate/x created|configured|unchanged") and the
    warnings, a note per git-managed object replaced with `force` among them. OperationError(400)
    carries every problem found, warnings included, in file order; OperationError(409) the objects git
    manages, each with the file and line that would replace it; OperationError(403) when `may_write`
    refuses a document's namespace."""
    docs, problems = _documents(store, manifests, namespace, APPLY_KINDS, "apply")
    _check_may_write(docs, namespace, may_write)
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
        try:
            store.create(obj)
        except Invalid as exc:
            raise OperationError(str(exc), 400) from None
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
    except Invalid as exc:
        raise OperationError(str(exc), 400) from None
    return f"{label} configured"


def create_manifests(store: ObjectStore, manifests: list[tuple[str, str]], namespace: str,
                     kinds: set[str], command: str, *,
                     may_write: Callable[[str], bool] | None = None) -> tuple[list[dict], list]:
    """`reconciler cron create`: like apply, but every object must be new (409 naming the first that
    exists, and nothing is created). Returns the created objects and the warnings."""
    docs, problems = _documents(store, manifests, namespace, kinds, command)
    _check_may_write(docs, namespace, may_write)
    for d in docs:
        kind, ns, name = _key(d.obj, namespace)
        if _current(store, (kind, ns, name)) is not None:
            where = f" in namespace {ns}" if ns else ""
            raise OperationError(f"{kind.lower()} {name!r} already exists{where}; `reconciler apply` replaces it",
                                 409)
    created = []
    for d in docs:
        obj = copy.deepcopy(d.obj)
        obj.setdefault("metadata", {})["namespace"] = _key(obj, namespace)[1]
        try:
            created.append(store.create(obj))
        except AlreadyExists as exc:
            raise OperationError(str(exc), 409) from None
        except Invalid as exc:
            raise OperationError(str(exc), 400) from None
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

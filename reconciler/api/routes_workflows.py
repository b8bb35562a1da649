"""/api/v1/workflows and /api/v1/cron-workflows: list, get, submit, delete, controls, logs; cron
workflows' create, delete, suspend and resume."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from reconciler import listing, manifests, operations
from reconciler.runner.logstream import LogNotFound, stream_logs
from reconciler.store.base import CLUSTER_SCOPED_KINDS

from .auth import grant_of, require_read, require_write
from .common import (
    ApiError,
    body_doc,
    check_name,
    check_namespace,
    json_body,
    json_response,
    manifests_of,
    optional_json_body,
    state_of,
)

router = APIRouter(prefix="/api/v1", tags=["workflows"])
read = [Depends(require_read)]
write = [Depends(require_write)]

Scalar = str | int | float | bool
LIST_CACHE_SIZE = 32


def workflow_key(namespace: str, name: str) -> tuple[str, str]:
    return check_namespace(namespace), check_name(name)


def _parameters(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, Scalar) for v in raw.values()):
        raise ApiError(400, "parameters must be an object of name: value (string, number or boolean)")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}


def _object(body: Any) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def list_reply(request: Request, kind: str, namespace: str | None, limit: int | None,
               phase: str | None = None, selector: str | None = None, nodes: bool = False) -> Response:
    """`{"items": [...]}` of one kind (all namespaces without `namespace`), cached by store version.
    Workflows come newest first, in their brief form unless `nodes`, filtered by phase and labels."""
    if namespace:
        check_namespace(namespace)
    try:
        phases, terms = listing.parse_phases(phase), listing.parse_selector(selector)
    except listing.SelectorError as exc:
        raise ApiError(400, str(exc)) from None
    state = state_of(request)
    grant = grant_of(request)
    # A scoped token lists its namespaces only; cluster-scoped objects are shared by all, readable by all.
    scoped = not grant.everywhere and kind not in CLUSTER_SCOPED_KINDS
    key = (kind, namespace or None, limit, phase, selector, nodes, grant.namespaces if scoped else None)
    try:
        version = state.store.current_version()  # read before the list: never cache newer under older
    except NotImplementedError:
        version = None
    cached = state.list_cache.get(key)
    if version is not None and cached is not None and cached[0] == version:
        return Response(cached[1], media_type="application/json")
    if kind == "Workflow":  # newest first, as `reconciler list`; other kinds by (namespace, name)
        items = state.store.list(kind, namespace or None) if nodes else state.store.list_brief(kind, namespace or None)
    else:
        items = state.store.list_brief(kind, namespace or None)
    if scoped:
        items = [o for o in items if grant.sees(o["metadata"].get("namespace"))]
    if kind == "Workflow":
        items = listing.select(items, phases, terms)
    if limit:
        items = items[:limit]
    response = json_response({"items": [listing.brief(w) for w in items] if kind == "Workflow" and not nodes
                              else items})
    if version is not None and not nodes:  # whole workflows can be large: only brief lists are kept
        if len(state.list_cache) >= LIST_CACHE_SIZE:
            state.list_cache.clear()
        state.list_cache[key] = (version, response.body)
    return response


PHASE = Query(None, description="only these phases, comma-separated (Running,Failed): `list --status`")
SELECTOR = Query(None, description="only these labels: key=value,key!=value,key (`list -l`)")
NODES = Query(False, description="whole workflows with spec and nodes, not their brief form (`list -o wide`)")


@router.get("/workflows", dependencies=read, summary="List workflows (without their nodes), newest first")
def list_workflows(request: Request, namespace: str | None = Query(None, description="all namespaces if absent"),
                   limit: int | None = Query(None, ge=1), phase: str | None = PHASE,
                   labelSelector: str | None = SELECTOR, nodes: bool = NODES) -> Response:  # noqa: N803 - the query name
    return list_reply(request, "Workflow", namespace, limit, phase, labelSelector, nodes)


@router.get("/workflows/{namespace}", dependencies=read, summary="List the workflows of a namespace")
def list_namespace_workflows(request: Request, namespace: str, limit: int | None = Query(None, ge=1),
                             phase: str | None = PHASE, labelSelector: str | None = SELECTOR,  # noqa: N803
                             nodes: bool = NODES) -> Response:
    return list_reply(request, "Workflow", check_namespace(namespace), limit, phase, labelSelector, nodes)


@router.get("/workflows/{namespace}/{name}", dependencies=read, summary="A workflow with its node status")
def get_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    # a 404 names other namespaces with a workflow of that name, only those the caller's token may see
    return json_response(operations.get_workflow(state_of(request).store, *key, elsewhere=grant_of(request).sees))


SUBMIT_EXAMPLE = {"manifest": "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n...", "parameters": {"size": "big"}}


@router.post("/workflows/{namespace}", dependencies=write, status_code=201,
             summary="Submit workflows: a YAML manifest, or a Workflow object as JSON",
             openapi_extra=body_doc('{"manifest": YAML text, "parameters": {..}, "filename": for messages}, '
                                    '{"from": "workflowtemplate/NAME" or "cronwf/NAME", "parameters": {..}}, or a '
                                    'Workflow object (also as {"workflow": {..}})', SUBMIT_EXAMPLE))
def submit(request: Request, namespace: str, body: Any = Depends(json_body)) -> Response:
    check_namespace(namespace)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    parameters = _parameters(body.get("parameters"))
    if "from" in body:
        if not isinstance(body["from"], str):
            raise ApiError(400, "from must be a string: workflowtemplate/NAME, clusterworkflowtemplate/NAME or "
                                "cronwf/NAME")
        created, warnings = operations.submit_from(state_of(request).store, body["from"], namespace, parameters)
        return json_response({"items": created, "warnings": [str(w) for w in warnings]}, 201)
    if "manifest" in body:
        text, filename = body["manifest"], body.get("filename") or "manifest"
        if not isinstance(text, str) or not isinstance(filename, str):
            raise ApiError(400, "manifest must be YAML text (a string)")
    else:
        obj = body.get("workflow", body)
        if not isinstance(obj, dict) or obj.get("kind") != "Workflow":
            raise ApiError(400, 'expected {"manifest": "<yaml>"} or a Workflow object (kind: Workflow)')
        text, filename = yaml.safe_dump(obj, sort_keys=False), "request"
    _check_namespaces(text, namespace)
    created, warnings = operations.submit_text(state_of(request).store, text, filename, namespace, parameters)
    return json_response({"items": created, "warnings": [str(w) for w in warnings]}, 201)


def _check_namespaces(text: str, namespace: str) -> None:
    """The path's namespace is where workflows go: a document naming another is refused."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return  # submit_text reports it with its line
    for doc in docs:
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        other = meta.get("namespace") if isinstance(meta, dict) else None
        if other not in (None, "", namespace):
            raise ApiError(400, f"the manifest names namespace {other!r} but was submitted to {namespace!r}")


@router.delete("/workflows/{namespace}/{name}", dependencies=write,
               summary="Delete a workflow with its logs and artifacts")
def delete_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    state = state_of(request)
    operations.delete(state.store, state.home, *key)
    return _done(key, "deleted")


def _done(key: tuple[str, str], action: str) -> Response:
    return json_response({"namespace": key[0], "name": key[1], "action": action})


@router.put("/workflows/{namespace}/{name}/suspend", dependencies=write, summary="No new step starts")
def suspend(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    operations.suspend(state_of(request).store, *key)
    return _done(key, "suspended")


@router.put("/workflows/{namespace}/{name}/resume", dependencies=write,
            summary="Resume the workflow and its suspend nodes, or one suspend node (with output parameters)",
            openapi_extra=body_doc("optional", {"node": "approve", "parameters": {"target": "prod"}}, False))
def resume(request: Request, key: tuple[str, str] = Depends(workflow_key),
           body: Any = Depends(optional_json_body)) -> Response:
    body = _object(body)
    node = body.get("node")
    if node is not None and not isinstance(node, str):
        raise ApiError(400, "node must be a string (a node's id, name or display name)")
    operations.resume(state_of(request).store, *key, node or None, _parameters(body.get("parameters")))
    return _done(key, "resumed")


@router.put("/workflows/{namespace}/{name}/stop", dependencies=write,
            summary="Kill running steps, run the exit handler, end as Failed")
def stop(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    operations.shutdown(state_of(request).store, *key, "Stop")
    return _done(key, "stopped")


@router.put("/workflows/{namespace}/{name}/terminate", dependencies=write,
            summary="Kill running steps and end as Failed, without the exit handler")
def terminate(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    operations.shutdown(state_of(request).store, *key, "Terminate")
    return _done(key, "terminated")


@router.put("/workflows/{namespace}/{name}/retry", dependencies=write,
            summary="Run a finished workflow's failed nodes again")
def retry(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    return json_response(operations.retry(state_of(request).store, *key))


@router.put("/workflows/{namespace}/{name}/resubmit", dependencies=write, status_code=201,
            summary="A new workflow with the same spec (memoized: reuse outputs of succeeded steps)",
            openapi_extra=body_doc("optional", {"memoized": True, "parameters": {"size": "big"}}, False))
def resubmit(request: Request, key: tuple[str, str] = Depends(workflow_key),
             body: Any = Depends(optional_json_body)) -> Response:
    body = _object(body)
    memoized = body.get("memoized", False)
    if not isinstance(memoized, bool):
        raise ApiError(400, "memoized must be true or false")
    created = operations.resubmit(state_of(request).store, *key, memoized=memoized,
                                  parameters=_parameters(body.get("parameters")))
    return json_response(created, 201)


@router.get("/workflows/{namespace}/{name}/log", dependencies=read, response_class=StreamingResponse,
            summary="Pod logs as text lines ('POD: line'; just the line with node=); follow streams until the end")
def logs(request: Request, key: tuple[str, str] = Depends(workflow_key),
         node: str | None = Query(None, description="a pod's id, name, display name or pod name"),
         follow: bool = False) -> StreamingResponse:
    state = state_of(request)
    try:
        lines = stream_logs(state.store, state.home, *key, node, follow)
    except LogNotFound as exc:
        raise ApiError(404, str(exc)) from None
    return StreamingResponse(lines, media_type="text/plain; charset=utf-8",
                             headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.get("/cron-workflows", dependencies=read, tags=["cron-workflows"], summary="List CronWorkflows")
def list_cron_workflows(request: Request, namespace: str | None = Query(None, description="all if absent")
                        ) -> Response:
    return list_reply(request, "CronWorkflow", namespace, None)


@router.get("/cron-workflows/{namespace}/{name}", dependencies=read, tags=["cron-workflows"],
            summary="One CronWorkflow (`reconciler cron get -o json`)")
def get_cron_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    return json_response(manifests.get_cron_workflow(state_of(request).store, *key))


@router.put("/cron-workflows/{namespace}/{name}/suspend", dependencies=write, tags=["cron-workflows"],
            summary="Stop scheduling (spec.suspend: true; held across syncs on a cron git manages)")
def suspend_cron_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    note = manifests.set_cron_suspend(state_of(request).store, *key, True)
    return json_response({"namespace": key[0], "name": key[1], "action": "suspended", "note": note})


@router.put("/cron-workflows/{namespace}/{name}/resume", dependencies=write, tags=["cron-workflows"],
            summary="Schedule again (spec.suspend: false)")
def resume_cron_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key)) -> Response:
    note = manifests.set_cron_suspend(state_of(request).store, *key, False)
    return json_response({"namespace": key[0], "name": key[1], "action": "resumed", "note": note})


@router.delete("/cron-workflows/{namespace}/{name}", dependencies=write, tags=["cron-workflows"],
               summary="Delete a CronWorkflow (409 for one git manages, unless force)")
def delete_cron_workflow(request: Request, key: tuple[str, str] = Depends(workflow_key),
                         force: bool = Query(False, description="also one git manages (the next sync recreates it)")
                         ) -> Response:
    note = manifests.delete_object(state_of(request).store, "CronWorkflow", *key, force=force)
    return json_response({"namespace": key[0], "name": key[1], "action": "deleted", "note": note})


@router.post("/cron-workflows/{namespace}", dependencies=write, tags=["cron-workflows"], status_code=201,
             summary="Create CronWorkflows (`reconciler cron create`; 409 if one exists, and nothing is created)",
             openapi_extra=body_doc('{"manifest": YAML text, "filename": for messages}, or {"manifests": [..]}',
                                    {"manifest": "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\n..."}))
def create_cron_workflows(request: Request, namespace: str, body: Any = Depends(json_body)) -> Response:
    check_namespace(namespace)
    created, warnings = manifests.create_manifests(state_of(request).store, manifests_of(body), namespace,
                                                   {"CronWorkflow"}, "cron create", may_write=grant_of(request).sees)
    return json_response({"items": created, "warnings": [str(w) for w in warnings]}, 201)

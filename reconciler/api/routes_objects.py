"""/api/v1/workflow-templates, /cluster-workflow-templates, /semaphores and /apply: what
`reconciler template list|get|delete`, `semaphore list|set` and `apply` do, through the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from reconciler import manifests, operations

from .auth import check_namespace_access, grant_of, require_read, require_write
from .common import (
    ApiError,
    body_doc,
    check_name,
    check_namespace,
    flag,
    json_body,
    json_response,
    manifests_of,
    state_of,
)
from .routes_workflows import list_reply

router = APIRouter(prefix="/api/v1")
read = [Depends(require_read)]
write = [Depends(require_write)]


@router.get("/workflow-templates", dependencies=read, tags=["templates"],
            summary="List WorkflowTemplates (`reconciler template list -o json`)")
def list_templates(request: Request, namespace: str | None = Query(None, description="all if absent")) -> Response:
    return list_reply(request, "WorkflowTemplate", namespace, None)


@router.get("/cluster-workflow-templates", dependencies=read, tags=["templates"],
            summary="List ClusterWorkflowTemplates (`reconciler template list --cluster -o json`)")
def list_cluster_templates(request: Request) -> Response:
    return list_reply(request, "ClusterWorkflowTemplate", None, None)


@router.get("/semaphores", dependencies=read, tags=["semaphores"],
            summary="Mutexes and semaphores in use: the Lock objects with their holders")
def list_semaphores(request: Request, namespace: str | None = Query(None, description="all if absent")) -> Response:
    return list_reply(request, "Lock", namespace, None)


@router.put("/semaphores/{namespace}", dependencies=write, tags=["semaphores"],
            summary="Set a semaphore's size: the ConfigMap key its configMapKeyRef names",
            openapi_extra=body_doc('{"ref": "CONFIGMAP/KEY", "size": N}', {"ref": "db-locks/warehouse", "size": 2}))
def set_semaphore(request: Request, namespace: str, body: Any = Depends(json_body)) -> Response:
    check_namespace(namespace)
    ref, size = (body.get("ref"), body.get("size")) if isinstance(body, dict) else (None, None)
    if not isinstance(ref, str) or not isinstance(size, int) or isinstance(size, bool):
        raise ApiError(400, 'expected {"ref": "CONFIGMAP/KEY", "size": N} (N a whole number)')
    operations.set_semaphore(state_of(request).store, namespace, ref, size)
    return json_response({"namespace": namespace, "ref": ref, "size": size})


APPLY_EXAMPLE = {"manifest": "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n...", "filename": "etl.yaml"}


@router.post("/apply/{namespace}", dependencies=write, tags=["apply"],
             summary="Create or replace WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and ConfigMaps",
             openapi_extra=body_doc('{"manifest": YAML text, "filename": for messages}, or {"manifests": '
                                    '[{"manifest": .., "filename": ..}, ..]} (all valid, or none applied); '
                                    '"force": true also replaces objects git manages', APPLY_EXAMPLE))
def apply(request: Request, namespace: str, body: Any = Depends(json_body)) -> Response:
    check_namespace(namespace)
    lines, warnings = manifests.apply_manifests(state_of(request).store, manifests_of(body), namespace,
                                                force=flag(body, "force"), may_write=grant_of(request).sees)
    return json_response({"items": lines, "warnings": [str(w) for w in warnings]})


def deleted(namespace: str, name: str, note: str | None) -> Response:
    return json_response({"namespace": namespace, "name": name, "action": "deleted", "note": note})


FORCE = Query(False, description="also an object git manages (the next sync recreates it)")


@router.get("/workflow-templates/{namespace}/{name}", dependencies=read, tags=["templates"],
            summary="One WorkflowTemplate (`reconciler template get -o json`)")
def get_template(request: Request, namespace: str, name: str) -> Response:
    return json_response(manifests.get_object(state_of(request).store, "WorkflowTemplate",
                                               check_namespace(namespace), check_name(name)))


@router.delete("/workflow-templates/{namespace}/{name}", dependencies=write, tags=["templates"],
               summary="Delete a WorkflowTemplate (409 for one git manages, unless force)")
def delete_template(request: Request, namespace: str, name: str, force: bool = FORCE) -> Response:
    note = manifests.delete_object(state_of(request).store, "WorkflowTemplate", check_namespace(namespace),
                                    check_name(name), force=force)
    return deleted(namespace, name, note)


@router.get("/cluster-workflow-templates/{name}", dependencies=read, tags=["templates"],
            summary="One ClusterWorkflowTemplate (`reconciler template get --cluster -o json`)")
def get_cluster_template(request: Request, name: str) -> Response:
    return json_response(manifests.get_object(state_of(request).store, "ClusterWorkflowTemplate", "",
                                               check_name(name)))


@router.delete("/cluster-workflow-templates/{name}", dependencies=write, tags=["templates"],
               summary="Delete a ClusterWorkflowTemplate")
def delete_cluster_template(request: Request, name: str, force: bool = FORCE) -> Response:
    check_namespace_access(request, "")  # shared by every namespace: not for a token limited to some
    note = manifests.delete_object(state_of(request).store, "ClusterWorkflowTemplate", "", check_name(name),
                                    force=force)
    return deleted("", name, note)

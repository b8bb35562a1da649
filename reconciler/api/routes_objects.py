"""/api/v1/workflow-templates, /cluster-workflow-templates, /semaphores and /apply: what
`reconciler template list`, `semaphore list|set` and `apply` do, through the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from reconciler import operations

from .auth import grant_of, require_read, require_write
from .common import ApiError, body_doc, check_namespace, json_body, json_response, state_of
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
                                    '[{"manifest": .., "filename": ..}, ..]} (all valid, or none applied)',
                                    APPLY_EXAMPLE))
def apply(request: Request, namespace: str, body: Any = Depends(json_body)) -> Response:
    check_namespace(namespace)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    entries = body["manifests"] if "manifests" in body else [body]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ApiError(400, "manifests must be a non-empty list of {\"manifest\": .., \"filename\": ..}")
    manifests = []
    for entry in entries:
        text, filename = entry.get("manifest"), entry.get("filename") or "manifest"
        if not isinstance(text, str) or not isinstance(filename, str):
            raise ApiError(400, "manifest must be YAML text (a string), filename a string")
        manifests.append((filename, text))
    lines, warnings = operations.apply_manifests(state_of(request).store, manifests, namespace,
                                                 may_write=grant_of(request).sees)
    return json_response({"items": lines, "warnings": [str(w) for w in warnings]})

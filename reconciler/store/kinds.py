"""The one table from a stored kind to its Kubernetes resource, and the CRDs for the kinds Kubernetes lacks.

Workflows and their templates live in the project's own group `reconciler.io` so that an Argo
controller in the same cluster never picks them up; only namespaces whose environment says
`engine: argo` get Argo's own `argoproj.io/v1alpha1` resources (Argo's controller runs those).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "reconciler.io"
VERSION = "v1"
ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str          # "" is the core group (/api/v1)
    version: str
    plural: str
    namespaced: bool = True
    # With the status subresource a write to the object ignores `status` and a write to /status ignores
    # everything else, so the store splits such writes in two. Workflows go without it, as Argo's own
    # CRD does: the runner writes status and its ownership annotations together, and must do so atomically.
    status_subresource: bool = False
    columns: tuple[tuple[str, str, str], ...] = ()   # (name, type, jsonPath) printed by kubectl get
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection (all namespaces when `namespace` is None) or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


_PHASE = (("Status", "string", ".status.phase"), ("Age", "date", ".metadata.creationTimestamp"))
_ARGO_KINDS = {
    "Workflow": ("workflows", True, ("wf",)),
    "WorkflowTemplate": ("workflowtemplates", True, ("wftmpl",)),
    "CronWorkflow": ("cronworkflows", True, ("cwf", "cronwf")),
    "ClusterWorkflowTemplate": ("clusterworkflowtemplates", False, ("clusterwftmpl", "cwft")),
}


def _own(kind: str, plural: str, namespaced: bool, short: tuple[str, ...], *, status: bool,
         columns: tuple[tuple[str, str, str], ...] = ()) -> Resource:
    return Resource(kind, GROUP, VERSION, plural, namespaced, status, columns, short)


RESOURCES: dict[str, Resource] = {
    "Workflow": _own("Workflow", "workflows", True, ("rwf",), status=False, columns=_PHASE + (
        ("Message", "string", ".status.message"),)),
    "WorkflowTemplate": _own("WorkflowTemplate", "workflowtemplates", True, ("rwftmpl",), status=False,
                             columns=(("Age", "date", ".metadata.creationTimestamp"),)),
    "ClusterWorkflowTemplate": _own("ClusterWorkflowTemplate", "clusterworkflowtemplates", False, ("rcwft",),
                                    status=False, columns=(("Age", "date", ".metadata.creationTimestamp"),)),
    "CronWorkflow": _own("CronWorkflow", "cronworkflows", True, ("rcwf",), status=True, columns=(
        ("Schedule", "string", ".spec.schedule"), ("Suspended", "boolean", ".spec.suspend"),
        ("Last", "date", ".status.lastScheduledTime"))),
    "Lock": _own("Lock", "locks", True, (), status=True, columns=(
        ("Holders", "string", ".status.holders"), ("Age", "date", ".metadata.creationTimestamp"))),
    "Environment": _own("Environment", "environments", True, ("renv",), status=True, columns=(
        ("Phase", "string", ".status.phase"), ("Commit", "string", ".status.lastAppliedCommit"),
        ("Message", "string", ".status.message"))),
    "WebhookDelivery": _own("WebhookDelivery", "webhookdeliveries", True, (), status=True,
                            columns=(("Age", "date", ".metadata.creationTimestamp"),)),
    "ConfigMap": Resource("ConfigMap", "", "v1", "configmaps"),
    "Lease": Resource("Lease", "coordination.k8s.io", "v1", "leases"),
    "Namespace": Resource("Namespace", "", "v1", "namespaces", namespaced=False),
}


def resource_for(kind: str, namespace: str | None = None, argo_namespaces: frozenset[str] = frozenset()) -> Resource:
    """The resource objects of `kind` live in; KeyError names a kind the table lacks."""
    if kind in _ARGO_KINDS and namespace and namespace in argo_namespaces:
        return argo_resource(kind)
    try:
        return RESOURCES[kind]
    except KeyError:
        raise KeyError(f"kind {kind!r} has no Kubernetes resource (known: {', '.join(sorted(RESOURCES))})") from None


def argo_resource(kind: str) -> Resource:
    plural, namespaced, short = _ARGO_KINDS[kind]
    return Resource(kind, ARGO_GROUP, ARGO_VERSION, plural, namespaced, False, (), short)


def presented_api_version(res: Resource) -> str:
    """The apiVersion callers see: Argo's kinds are Argo's whichever group stores them."""
    return f"{ARGO_GROUP}/{ARGO_VERSION}" if res.kind in _ARGO_KINDS else res.api_version


def own_resources() -> list[Resource]:
    return [r for r in RESOURCES.values() if r.group == GROUP]


def custom_resource_definition(res: Resource) -> dict:
    """The apiextensions.k8s.io/v1 CRD for one of the project's own kinds."""
    version: dict = {
        "name": res.version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "description": f"{res.kind}: validated by the reconciler itself (reconciler lint), stored as is here.",
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            # ConfigMap-like kinds (environments' data) and anything future keep unknown top-level keys.
            "x-kubernetes-preserve-unknown-fields": True,
        }},
    }
    if res.status_subresource:
        version["subresources"] = {"status": {}}
    if res.columns:
        version["additionalPrinterColumns"] = [
            {"name": name, "type": typ, "jsonPath": path} for name, typ, path in res.columns]
    names = {"kind": res.kind, "listKind": f"{res.kind}List", "plural": res.plural, "singular": res.kind.lower()}
    if res.short_names:
        names["shortNames"] = list(res.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{res.plural}.{res.group}", "labels": {"app.kubernetes.io/part-of": "reconciler"}},
        "spec": {"group": res.group, "names": names, "scope": "Namespaced" if res.namespaced else "Cluster",
                 "versions": [version]},
    }


def all_crds() -> list[dict]:
    return [custom_resource_definition(r) for r in own_resources()]

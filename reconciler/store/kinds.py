"""The one table from a stored kind to its Kubernetes resource, and the CRDs for the kinds Kubernetes lacks.

Workflows and their templates live in the project's own group `reconciler.io` so that an Argo
controller in the same cluster never picks them up; only namespaces whose environment says
`engine: argo` get Argo's own `argoproj.io/v1alpha1` resources (Argo's controller runs those).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "reconciler.io"
VERSION = "v1alpha1"
# The apiVersion the rest of the code (and the embedded store) gives the project-only kinds.
LOCAL_API_VERSION = "reconciler.io/v1"
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
    columns: tuple[tuple[str, str, str, str, int], ...] = ()  # (name, type, jsonPath, description, priority)
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


_AGE = ("Age", "date", ".metadata.creationTimestamp", "", 0)
_ARGO_KINDS = {
    "Workflow": ("workflows", True, ("wf",)),
    "WorkflowTemplate": ("workflowtemplates", True, ("wftmpl",)),
    "CronWorkflow": ("cronworkflows", True, ("cwf", "cronwf")),
    "ClusterWorkflowTemplate": ("clusterworkflowtemplates", False, ("clusterwftmpl", "cwft")),
}


def _own(kind: str, plural: str, namespaced: bool, short: str, *, status: bool, columns: tuple = ()) -> Resource:
    return Resource(kind, GROUP, VERSION, plural, namespaced, status, (*columns, _AGE), (short,) if short else ())


# Argo's kinds mirror Argo's CRDs: no status subresource. The project's own kinds have it.
RESOURCES: dict[str, Resource] = {
    "Workflow": _own("Workflow", "workflows", True, "rwf", status=False, columns=(
        ("Phase", "string", ".status.phase", "The workflow's phase", 0),
        ("Message", "string", ".status.message", "Why it is in that phase", 1))),
    "WorkflowTemplate": _own("WorkflowTemplate", "workflowtemplates", True, "rwftmpl", status=False),
    "ClusterWorkflowTemplate": _own("ClusterWorkflowTemplate", "clusterworkflowtemplates", False, "rcwftmpl",
                                    status=False),
    "CronWorkflow": _own("CronWorkflow", "cronworkflows", True, "rcwf", status=False, columns=(
        ("Schedule", "string", ".spec.schedule", "Cron schedule", 0),
        ("Suspended", "boolean", ".spec.suspend", "Whether the schedule is suspended", 0),
        ("Last-Scheduled", "date", ".status.lastScheduledTime", "When it last started a workflow", 1))),
    "Lock": _own("Lock", "locks", True, "", status=True, columns=(
        ("Holders", "string", ".status.holders", "Who holds the lock", 1),)),
    "Environment": _own("Environment", "environments", True, "renv", status=True, columns=(
        ("Phase", "string", ".status.phase", "Synced, Failed, ...", 0),
        ("Commit", "string", ".status.lastAppliedCommit", "The last commit applied", 0),
        ("Message", "string", ".status.message", "Why it is in that phase", 1))),
    "WebhookDelivery": _own("WebhookDelivery", "webhookdeliveries", True, "", status=True),
    "ConfigMap": Resource("ConfigMap", "", "v1", "configmaps"),
    "Lease": Resource("Lease", "coordination.k8s.io", "v1", "leases"),
    "Namespace": Resource("Namespace", "", "v1", "namespaces", namespaced=False),
}
_OWN_DESCRIPTION = {
    "Lock": "Lock of the reconciler: a semaphore's or mutex's holders and waiters.",
    "Environment": "Environment of the reconciler: one environment of the workflow repository and its sync status.",
    "WebhookDelivery": "WebhookDelivery of the reconciler: a push webhook already handled (replays are ignored).",
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
    if res.kind in _ARGO_KINDS:
        return f"{ARGO_GROUP}/{ARGO_VERSION}"
    return LOCAL_API_VERSION if res.group == GROUP else res.api_version


def own_resources() -> list[Resource]:
    return [r for r in RESOURCES.values() if r.group == GROUP]


def custom_resource_definition(res: Resource) -> dict:
    """The apiextensions.k8s.io/v1 CRD of one of the project's own resources (what `reconciler crds`
    prints and the Helm chart ships): spec and status kept as they are, since the daemon validates spec
    with its own JSON Schemas (reconciler/spec/schemas/)."""
    argo = res.kind in _ARGO_KINDS
    schema: dict = {
        "type": "object",
        "description": f"{res.kind} of the reconciler (Argo's {res.kind} format)." if argo else _OWN_DESCRIPTION[
            res.kind],
    }
    if argo:
        schema["required"] = ["metadata", "spec"]
    schema["properties"] = {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
    columns = []
    for name, typ, path, description, priority in res.columns:
        column: dict = {"name": name, "type": typ, "jsonPath": path}
        if description:
            column["description"] = description
        if priority:
            column["priority"] = priority
        columns.append(column)
    version: dict = {"name": res.version, "served": True, "storage": True, "additionalPrinterColumns": columns,
                     "schema": {"openAPIV3Schema": schema}}
    if res.status_subresource:
        version["subresources"] = {"status": {}}
    names: dict = {"kind": res.kind, "listKind": f"{res.kind}List", "plural": res.plural,
                   "singular": res.kind.lower()}
    if res.short_names:
        names["shortNames"] = list(res.short_names)
    names["categories"] = ["reconciler"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{res.plural}.{res.group}", "labels": {"app.kubernetes.io/part-of": "reconciler"}},
        "spec": {"group": res.group, "scope": "Namespaced" if res.namespaced else "Cluster", "names": names,
                 "versions": [version]},
    }


def all_crds() -> list[dict]:
    return [custom_resource_definition(r) for r in own_resources()]

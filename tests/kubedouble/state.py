"""The Kubernetes API server double's storage: resource types, objects, one resourceVersion counter (as
etcd's revision) and a bounded event history for watches. Errors are raised as ApiError(status body),
worded and shaped as the real server words them (errors.py)."""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import patching
from .errors import ApiError, bad_request, conflict, invalid, not_found

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphanumerics


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False
    builtin: bool = True
    short_names: list = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTINS = [
    ResourceType("", "v1", "namespaces", "Namespace", False, True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, True),
]


class ClusterState:
    """Everything the double stores, behind one lock; `changed` wakes watchers."""

    def __init__(self, history: int = 1000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.objects: dict[tuple[str, str, str, str], dict] = {}   # (group, plural, ns, name)
        self.events: deque = deque(maxlen=history)                   # (rv, rt, ns, type, obj)
        self.oldest = 1                                              # history starts after this rv
        for rt in BUILTINS:
            self.types[(rt.group, rt.version, rt.plural)] = rt
        for ns in ("default", "kube-system", "kube-public"):
            self.create(self.type_of("", "v1", "namespaces"), None, {"apiVersion": "v1", "kind": "Namespace",
                                                                    "metadata": {"name": ns}})

    # -- types -----------------------------------------------------------------------------------

    def type_of(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for group, version, _ in self.types:
            if version not in out.setdefault(group, []):
                out[group].append(version)
        return out

    def _register_crd(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            rt = ResourceType(spec["group"], version["name"], names["plural"], names["kind"],
                              spec.get("scope") == "Namespaced", "status" in (version.get("subresources") or {}),
                              builtin=False, short_names=names.get("shortNames") or [])
            self.types[(rt.group, rt.version, rt.plural)] = rt
        crd.setdefault("status", {})["conditions"] = [
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]
        crd["status"]["acceptedNames"] = names

    # -- reads -----------------------------------------------------------------------------------

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict:
        obj = self.objects.get((rt.group, rt.plural, ns or "", name))
        if obj is None:
            raise not_found(rt, name)
        return copy.deepcopy(obj)

    def list(self, rt: ResourceType, ns: str | None) -> list[dict]:
        keys = sorted(k for k in self.objects if k[0] == rt.group and k[1] == rt.plural and (ns is None or k[2] == ns))
        return [copy.deepcopy(self.objects[k]) for k in keys]

    # -- writes ----------------------------------------------------------------------------------

    def create(self, rt: ResourceType, ns: str | None, obj: dict, manager: str = "double") -> dict:
        with self.lock:
            meta = self._check_body(rt, ns, obj)
            if meta.get("resourceVersion"):
                raise ApiError(500, "InternalError",
                               "Internal error occurred: resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                prefix = meta.get("generateName")
                if not prefix:
                    raise invalid(rt, "", [("metadata.name", "Required value: name or generateName is required")])
                meta["name"] = prefix[:58] + "".join(
                    _SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in uuid.uuid4().bytes[:5])
            self._check_name(rt, meta["name"])
            if rt.namespaced:
                if ("", "namespaces", "", ns) not in self.objects:
                    raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                                   {"name": ns, "kind": "namespaces"})
                meta["namespace"] = ns
            key = (rt.group, rt.plural, ns or "", meta["name"])
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": rt.group, "kind": rt.plural})
            if rt.status_subresource and not rt.builtin:
                obj.pop("status", None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
            if not rt.builtin:
                meta["generation"] = 1
            meta["managedFields"] = meta.get("managedFields") or [{"manager": manager, "operation": "Update", "apiVersion": rt.api_version,
                                      "time": _now(), "fieldsType": "FieldsV1", "fieldsV1": {}}]
            if rt.kind == "CustomResourceDefinition":
                self._register_crd(obj)
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Active"}
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            return self._write(rt, key, obj, "ADDED")

    def replace(self, rt: ResourceType, ns: str | None, name: str, obj: dict, sub: str | None = None,
                manager: str | None = None) -> dict:
        """PUT: an update of the object (or its status); the caller's resourceVersion is the precondition."""
        with self.lock:
            meta = self._check_body(rt, ns, obj)
            if meta.get("name") != name:
                raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                                  f"({name})")
            old = self.get(rt, ns, name)
            wanted = meta.get("resourceVersion")
            if not wanted and not rt.builtin:
                raise invalid(rt, name, [("metadata.resourceVersion",
                                          "Invalid value: 0x0: must be specified for an update")])
            if wanted and str(wanted) != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            patching.record_update(old, obj, manager or "unknown")
            return self._commit(rt, old, obj, sub)

    def patch(self, rt: ResourceType, ns: str | None, name: str, content_type: str, body, sub: str | None,
              manager: str | None, force: bool) -> tuple[dict, bool]:
        """PATCH: (the object, whether an apply created it)."""
        with self.lock:
            if content_type == "application/apply-patch+yaml":
                try:
                    old = self.get(rt, ns, name)
                except ApiError:
                    if sub:
                        raise
                    applied = patching.apply(_empty(rt, name), body, manager, force, lambda why: conflict(rt, name, why))
                    return self.create(rt, ns, applied, manager or "unknown"), True
                new = patching.apply(old, body, manager, force, lambda why: conflict(rt, name, why))
            else:
                old = self.get(rt, ns, name)
                new = patching.patch(old, content_type, body, rt.builtin, lambda msg: invalid(rt, name, [("", msg)]))
                patching.record_update(old, new, manager or "unknown")
            wanted = (new.get("metadata") or {}).get("resourceVersion")
            if wanted and str(wanted) != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            new.setdefault("metadata", {})["name"] = name
            return self._commit(rt, old, new, sub), False

    def delete(self, rt: ResourceType, ns: str | None, name: str, options: dict) -> dict:
        with self.lock:
            old = self.get(rt, ns, name)
            wanted = ((options or {}).get("preconditions") or {})
            if wanted.get("resourceVersion") and wanted["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name, "the ResourceVersion in the precondition "
                               f"({wanted['resourceVersion']}) does not match the ResourceVersion in record "
                               f"({old['metadata']['resourceVersion']}). The object might have been modified")
            if wanted.get("uid") and wanted["uid"] != old["metadata"]["uid"]:
                raise conflict(rt, name, "the UID in the precondition does not match the UID in record")
            key = (rt.group, rt.plural, ns or "", name)
            del self.objects[key]
            self.rv += 1
            old["metadata"]["resourceVersion"] = str(self.rv)
            self._record(rt, old, "DELETED")
            if rt.kind == "Namespace":
                for other in [k for k in self.objects if k[2] == name]:
                    gone = self.objects.pop(other)
                    self.rv += 1
                    gone["metadata"]["resourceVersion"] = str(self.rv)
                    other_rt = next(t for t in self.types.values() if (t.group, t.plural) == other[:2])
                    self._record(other_rt, gone, "DELETED")
            return old

    # -- internals -------------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, old: dict, new: dict, sub: str | None) -> dict:
        new = copy.deepcopy(new)
        if rt.status_subresource and not rt.builtin:
            if sub == "status":
                new = {**old, "status": new.get("status")}
            else:
                new["status"] = old.get("status")
                if new["status"] is None:
                    new.pop("status")
        meta = new.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "namespace", "generation", "resourceVersion"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        meta.setdefault("managedFields", old["metadata"].get("managedFields", []))
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if _without_managed(new) == _without_managed(old):
            return old  # a no-op write keeps its resourceVersion and sends no event, as the real server does
        if not rt.builtin and _spec_part(new, rt) != _spec_part(old, rt):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(new)
        return self._write(rt, (rt.group, rt.plural, old["metadata"].get("namespace", ""), meta["name"]), new,
                           "MODIFIED")

    def _write(self, rt: ResourceType, key: tuple, obj: dict, kind: str) -> dict:
        self.rv += 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._record(rt, obj, kind)
        return copy.deepcopy(obj)

    def _record(self, rt: ResourceType, obj: dict, kind: str) -> None:
        if len(self.events) == self.events.maxlen:
            self.oldest = self.events[0][0]
        self.events.append((self.rv, rt, obj["metadata"].get("namespace", ""), kind, copy.deepcopy(obj)))
        self.changed.notify_all()

    def compact(self) -> None:
        """Forget all history, as etcd's compaction does (watches from older versions get 410)."""
        with self.lock:
            self.events.clear()
            self.oldest = self.rv

    def _check_body(self, rt: ResourceType, ns: str | None, obj: object) -> dict:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (None, rt.api_version):
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                              f"API version ({rt.api_version})" if obj.get("kind") == rt.kind else
                              f"{obj.get('kind')} in version \"{rt.version}\" cannot be handled as a {rt.kind}")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        body_ns = meta.get("namespace")
        if rt.namespaced and body_ns and body_ns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not rt.namespaced:
            meta.pop("namespace", None)
        for field_name in ("labels", "annotations"):
            values = meta.get(field_name) or {}
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise bad_request(f"metadata.{field_name} must map strings to strings")
        return meta

    def _check_name(self, rt: ResourceType, name: str) -> None:
        rule = _LABEL if rt.kind == "Namespace" else _SUBDOMAIN
        limit = 63 if rt.kind == "Namespace" else 253
        if len(name) > limit or not rule.fullmatch(name):
            what = "RFC 1123 label" if rt.kind == "Namespace" else "lowercase RFC 1123 subdomain"
            raise invalid(rt, name, [("metadata.name", f'Invalid value: "{name}": a {what} must consist of lower '
                                      "case alphanumeric characters, '-' or '.', and must start and end with an "
                                      "alphanumeric character")])


def _empty(rt: ResourceType, name: str) -> dict:
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": name}}


def _without_managed(obj: dict) -> dict:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}


def _spec_part(obj: dict, rt: ResourceType) -> dict:
    skip = {"metadata", "status"} if rt.status_subresource else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip and k not in ("apiVersion", "kind")}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

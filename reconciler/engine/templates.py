"""Finding the template a step or task runs: local, by templateRef, or inline, with templateDefaults."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

# (kind, namespace, name) -> the stored object, or None
TemplateLookup = Callable[[str, str, str], "dict | None"]

LOCAL = "local"


class TemplateNotFound(Exception):
    pass


def merge_defaults(template: dict, defaults: dict | None) -> dict:
    """Template values win over templateDefaults; maps merge key by key (Argo's strategic merge)."""
    if not defaults:
        return template
    merged = copy.deepcopy(defaults)
    _merge_into(merged, template)
    return merged


def _merge_into(base: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


@dataclass(frozen=True)
class TemplateContext:
    """Where template names resolve: the workflow itself or a (Cluster)WorkflowTemplate."""

    scope: str  # "local", "namespaced/<name>" or "cluster/<name>"


class TemplateResolver:
    """Resolves template references for one workflow, caching referenced templates in its status
    (as Argo's `status.storedTemplates`) so a running workflow is unaffected by later edits."""

    def __init__(self, wf: dict, spec: dict, lookup: TemplateLookup | None) -> None:
        self.wf = wf
        self.spec = spec
        self.lookup = lookup
        self.local = {t["name"]: t for t in spec.get("templates", [])}
        self.defaults = spec.get("templateDefaults")
        self._stored: dict = wf.setdefault("status", {}).setdefault("storedTemplates", {})
        self._merged: dict[tuple[str, str], dict] = {}

    def get(self, ctx: TemplateContext, name: str) -> dict:
        key = (ctx.scope, name)
        cached = self._merged.get(key)
        if cached is not None:
            return cached
        if ctx.scope == LOCAL:
            tmpl = self.local.get(name)
        else:
            tmpl = self._stored.get(f"{ctx.scope}/{name}")
            if tmpl is None:
                tmpl = self._fetch(ctx.scope, name)
        if tmpl is None:
            where = "the workflow" if ctx.scope == LOCAL else ctx.scope
            raise TemplateNotFound(f"template {name!r} not found in {where}")
        merged = merge_defaults(tmpl, self.defaults)
        self._merged[key] = merged
        return merged

    def _fetch(self, scope: str, name: str) -> dict | None:
        kind_word, _, obj_name = scope.partition("/")
        kind = "ClusterWorkflowTemplate" if kind_word == "cluster" else "WorkflowTemplate"
        namespace = "" if kind_word == "cluster" else self.wf["metadata"].get("namespace", "default")
        obj = self.lookup(kind, namespace, obj_name) if self.lookup else None
        if obj is None:
            raise TemplateNotFound(f"{kind} {obj_name!r} not found")
        for tmpl in obj.get("spec", {}).get("templates", []):
            if tmpl.get("name") == name:
                self._stored[f"{scope}/{name}"] = copy.deepcopy(tmpl)
                return self._stored[f"{scope}/{name}"]
        return None

    def resolve_call(self, ctx: TemplateContext, call: dict) -> tuple[TemplateContext, dict]:
        """The template a step/task/hook runs, and the context its own references resolve in."""
        if "templateRef" in call:
            ref = call["templateRef"]
            kind_word = "cluster" if ref.get("clusterScope") else "namespaced"
            new_ctx = TemplateContext(f"{kind_word}/{ref['name']}")
            return new_ctx, self.get(new_ctx, ref["template"])
        if "inline" in call:
            tmpl = dict(call["inline"])
            tmpl.setdefault("name", call.get("name", "inline"))
            return ctx, merge_defaults(tmpl, self.defaults)
        return ctx, self.get(ctx, call["template"])


# Template kinds Argo has that the local engine does not run; lint says so too (schemas/common.json).
NOT_RUN_HERE = ("resource", "plugin")


def template_type(tmpl: dict) -> str:
    for kind in ("container", "script", "steps", "dag", "suspend", "http", "data", "containerSet"):
        if kind in tmpl:
            return kind
    for kind in NOT_RUN_HERE:
        if kind in tmpl:
            raise TemplateNotFound(
                f"template {tmpl.get('name')!r} is a {kind} template: the local engine cannot run it")
    raise TemplateNotFound(f"template {tmpl.get('name')!r} has no container, script, steps, dag or suspend")


def is_leaf(tmpl: dict) -> bool:
    return template_type(tmpl) in ("container", "script", "suspend", "http", "data", "containerSet")

"""Variables a template sees: workflow globals, inputs, and the outputs of sibling steps/tasks."""

from __future__ import annotations

import json
from typing import Any

from reconciler.artifacts.base import key_only
from reconciler.engine import nodes as N
from reconciler.spec.expressions.expr import evaluate as evaluate_expr
from reconciler.spec.expressions.templating import build_env, substitute


class InputError(Exception):
    """A template's inputs cannot be resolved (missing parameter, bad enum value...)."""


def global_scope(wf: dict, spec: dict, now: float) -> dict[str, Any]:
    meta = wf["metadata"]
    status = wf.get("status", {})
    scope: dict[str, Any] = {
        "workflow.name": meta["name"],
        "workflow.namespace": meta.get("namespace", "default"),
        "workflow.uid": meta.get("uid", ""),
        "workflow.creationTimestamp": meta.get("creationTimestamp", ""),
        "workflow.serviceAccountName": spec.get("serviceAccountName", "default"),
        "workflow.mainEntrypoint": spec.get("entrypoint", ""),
    }
    params = {}
    for p in spec.get("arguments", {}).get("parameters", []):
        value = p.get("value", p.get("default"))
        if value is not None:
            params[p["name"]] = _as_text(value)
            scope[f"workflow.parameters.{p['name']}"] = params[p["name"]]
    scope["workflow.parameters"] = json.dumps(params, separators=(",", ":"))
    for key, value in (meta.get("labels") or {}).items():
        scope[f"workflow.labels.{key}"] = value
    for key, value in (meta.get("annotations") or {}).items():
        scope[f"workflow.annotations.{key}"] = value
    scheduled = (meta.get("annotations") or {}).get("workflows.argoproj.io/scheduled-time")
    if scheduled:
        scope["workflow.scheduledTime"] = scheduled
    outputs = status.get("outputs") or {}
    for p in outputs.get("parameters", []):
        scope[f"workflow.outputs.parameters.{p['name']}"] = p.get("value", "")
    for a in outputs.get("artifacts", []):
        scope[f"workflow.outputs.artifacts.{a['name']}"] = a
    started = status.get("startedAtUnix")
    if started:
        scope["workflow.duration"] = round(now - started, 6)
    return scope


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def resolve_inputs(tmpl: dict, arguments: dict, scope: dict[str, Any], configmaps=None) -> dict:
    """Bind a call's arguments to the template's declared inputs, as Argo's ProcessArgs does."""
    given = {p["name"]: p for p in arguments.get("parameters", []) or []}
    params = []
    for decl in tmpl.get("inputs", {}).get("parameters", []) or []:
        name = decl["name"]
        arg = given.get(name)
        value: Any = None
        if arg is not None and "value" in arg:
            value = arg["value"]
        elif arg is not None and "valueFrom" in arg:
            value = _value_from(arg["valueFrom"], scope, configmaps, name)
        elif "value" in decl:
            value = substitute(_as_text(decl["value"]), scope)
        elif "valueFrom" in decl:
            value = _value_from(decl["valueFrom"], scope, configmaps, name)
        elif "default" in decl:
            value = decl["default"]
        if value is None:
            raise InputError(f"inputs.parameters.{name} was not supplied")
        value = _as_text(value)
        enum = decl.get("enum")
        if enum and value not in [_as_text(e) for e in enum]:
            raise InputError(f"inputs.parameters.{name}: value {value!r} is not one of {enum}")
        params.append({"name": name, "value": value})
    given_arts = {a["name"]: a for a in arguments.get("artifacts", []) or []}
    arts = []
    for decl in tmpl.get("inputs", {}).get("artifacts", []) or []:
        name = decl["name"]
        art = _resolve_artifact_source(given_arts.get(name), decl, scope)
        if art is None:
            if decl.get("optional"):
                continue
            raise InputError(f"inputs.artifacts.{name} was not supplied")
        art = dict(art)
        art["name"] = name
        if decl.get("path"):
            art["path"] = decl["path"]
        arts.append(art)
    inputs: dict = {}
    if params:
        inputs["parameters"] = params
    if arts:
        inputs["artifacts"] = arts
    return inputs


def _value_from(value_from: dict, scope: dict, configmaps, name: str) -> Any:
    if "configMapKeyRef" in value_from:
        ref = value_from["configMapKeyRef"]
        data = configmaps(ref["name"]) if configmaps else None
        if data is None or ref.get("key") not in data:
            if "default" in value_from:
                return value_from["default"]
            raise InputError(f"inputs.parameters.{name}: ConfigMap {ref['name']!r} key {ref.get('key')!r} not found")
        return data[ref["key"]]
    if "expression" in value_from:
        return evaluate_expr(value_from["expression"], build_env(scope))
    if "parameter" in value_from:
        return substitute(value_from["parameter"], scope)
    return value_from.get("default")


def reference_name(text: str) -> str | None:
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}") and not text.startswith("{{="):
        return text[2:-2].strip()
    return None


def _resolve_artifact_source(arg: dict | None, decl: dict, scope: dict) -> dict | None:
    for source in (arg, decl):
        if not source:
            continue
        if "raw" in source:
            return {"raw": {"data": substitute(source["raw"].get("data", ""), scope)}}
        if "from" in source:
            ref = reference_name(source["from"])
            found = scope.get(ref) if ref else None
            if not isinstance(found, dict):
                raise InputError(f"artifact {decl['name']}: {source['from']} did not resolve to an artifact")
            return found
        if "fromExpression" in source:
            found = evaluate_expr(source["fromExpression"], build_env(scope))
            if found is None:
                return None
            if not isinstance(found, dict):
                raise InputError(f"artifact {decl['name']}: fromExpression did not yield an artifact")
            return found
        if "key" in source:
            return source
        key = key_only(source)
        if key is not None:
            return {"key": f"{scope.get('workflow.namespace', 'default')}/{substitute(key, scope)}"}
    return None


def add_node_outputs(scope: dict, prefix: str, node: dict) -> None:
    """Expose one finished step/task under `steps.NAME.*` / `tasks.NAME.*`."""
    scope[f"{prefix}.id"] = node["id"]
    scope[f"{prefix}.ip"] = node.get("podIP", "")
    scope[f"{prefix}.status"] = node["phase"]
    scope[f"{prefix}.startedAt"] = node.get("startedAt", "")
    scope[f"{prefix}.finishedAt"] = node.get("finishedAt", "")
    outputs = node.get("outputs") or {}
    if "exitCode" in outputs:
        scope[f"{prefix}.exitCode"] = outputs["exitCode"]
    if "result" in outputs:
        scope[f"{prefix}.outputs.result"] = outputs["result"]
    for p in outputs.get("parameters", []) or []:
        scope[f"{prefix}.outputs.parameters.{p['name']}"] = p.get("value", "")
    for a in outputs.get("artifacts", []) or []:
        scope[f"{prefix}.outputs.artifacts.{a['name']}"] = a


def add_aggregate_outputs(scope: dict, prefix: str, children: list[dict]) -> None:
    """Loop outputs, as Argo aggregates them: JSON lists across the iterations."""
    results: list[Any] = []
    param_maps: list[dict] = []
    by_name: dict[str, list] = {}
    for child in children:
        if child["phase"] != N.SUCCEEDED:
            continue
        outputs = child.get("outputs") or {}
        if "result" in outputs:
            try:
                results.append(json.loads(outputs["result"]))
            except (ValueError, TypeError):
                results.append(outputs["result"])
        params = outputs.get("parameters") or []
        if params:
            param_maps.append({p["name"]: p.get("value", "") for p in params})
            for p in params:
                by_name.setdefault(p["name"], []).append(p.get("value", ""))
    scope[f"{prefix}.outputs.result"] = json.dumps(results, separators=(",", ":"))
    scope[f"{prefix}.outputs.parameters"] = json.dumps(param_maps, separators=(",", ":"))
    for name, values in by_name.items():
        scope[f"{prefix}.outputs.parameters.{name}"] = json.dumps(_json_values(values), separators=(",", ":"))
    phases = [c["phase"] for c in children]
    scope[f"{prefix}.status"] = (
        N.FAILED if any(p in N.FAILED_OR_ERROR for p in phases) else N.SUCCEEDED
    )


def _json_values(values: list[str]) -> list:
    """Argo's aggregatedJSONValueList: parsed values when every one is a JSON object or list,
    else the strings as they are."""
    parsed = []
    for value in values:
        try:
            item = json.loads(value)
        except (ValueError, TypeError):
            return values
        if not isinstance(item, (dict, list)):
            return values
        parsed.append(item)
    return parsed


def template_scope(inputs: dict) -> dict[str, Any]:
    """A template's own variables; callers chain them in front of the workflow globals."""
    scope: dict[str, Any] = {}
    for p in inputs.get("parameters", []) or []:
        scope[f"inputs.parameters.{p['name']}"] = p["value"]
    if inputs.get("parameters"):
        scope["inputs.parameters"] = json.dumps(inputs["parameters"], separators=(",", ":"))
    for a in inputs.get("artifacts", []) or []:
        if a.get("path"):
            scope[f"inputs.artifacts.{a['name']}.path"] = a["path"]
        scope[f"inputs.artifacts.{a['name']}"] = a
    return scope


def collect_template_outputs(tmpl: dict, scope: dict) -> dict:
    """Outputs of a steps/dag template, from `valueFrom.parameter`/`expression` and `from`/`fromExpression`."""
    decl = tmpl.get("outputs") or {}
    outputs: dict = {}
    params = []
    for p in decl.get("parameters", []) or []:
        vf = p.get("valueFrom") or {}
        value: Any = None
        try:
            if "parameter" in vf:
                ref = reference_name(vf["parameter"])
                value = scope.get(ref) if ref else substitute(vf["parameter"], scope)
            elif "expression" in vf:
                value = evaluate_expr(vf["expression"], build_env(scope))
            elif "value" in p:
                value = substitute(_as_text(p["value"]), scope)
        except Exception as exc:  # an expression error must fail the node, not the engine
            raise InputError(f"outputs.parameters.{p['name']}: {exc}") from exc
        if value is None:
            value = vf.get("default")
        if value is None:
            raise InputError(f"outputs.parameters.{p['name']}: no value")
        entry = {"name": p["name"], "value": _as_text(value)}
        if p.get("globalName"):
            entry["globalName"] = p["globalName"]
        params.append(entry)
    arts = []
    for a in decl.get("artifacts", []) or []:
        found = _resolve_artifact_source(a, a, scope)
        if found is None:
            if a.get("optional"):
                continue
            raise InputError(f"outputs.artifacts.{a['name']}: no artifact")
        entry = dict(found)
        entry["name"] = a["name"]
        if a.get("globalName"):
            entry["globalName"] = a["globalName"]
        arts.append(entry)
    if params:
        outputs["parameters"] = params
    if arts:
        outputs["artifacts"] = arts
    return outputs

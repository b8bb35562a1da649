"""What a finished pod produced, in Argo's terms, and the workflow-global outputs it publishes."""

from __future__ import annotations

from reconciler.engine import nodes as N
from reconciler.engine.actions import PodFinished
from reconciler.limits import current as current_limits
from reconciler.limits import human, setting


def pod_outputs(tmpl: dict, event: PodFinished) -> tuple[dict, str, str]:
    """A finished pod's outputs as its template declares them, and the phase they imply (a declared
    output that is missing makes a succeeded pod an Error, as in Argo)."""
    outputs: dict = {}
    phase, message = event.phase, event.message
    if event.exit_code is not None:
        outputs["exitCode"] = str(event.exit_code)
    stdout = event.stdout
    outputs["result"] = stdout[:-1] if stdout.endswith("\n") else stdout
    params = []
    for decl in (tmpl.get("outputs") or {}).get("parameters", []) or []:
        vf = decl.get("valueFrom") or {}
        value = event.parameters.get(decl["name"])
        if value is None and "default" in vf:
            value = str(vf["default"])
        if value is None and "path" in vf and phase == N.SUCCEEDED:
            phase, message = N.ERROR, f"outputs.parameters.{decl['name']}: {vf['path']} not found"
        if value is None:
            continue
        entry = {"name": decl["name"], "value": value}
        if decl.get("globalName"):
            entry["globalName"] = decl["globalName"]
        params.append(entry)
    if params:
        outputs["parameters"] = params
    if event.artifacts:
        globals_by_name = {a["name"]: a.get("globalName") for a in (tmpl.get("outputs") or {}).get("artifacts", [])}
        arts = []
        for art in event.artifacts:
            entry = dict(art)
            if globals_by_name.get(art["name"]):
                entry["globalName"] = globals_by_name[art["name"]]
            arts.append(entry)
        outputs["artifacts"] = arts
    if event.artifact_errors and phase == N.SUCCEEDED:
        phase, message = N.ERROR, "; ".join(event.artifact_errors)
    return outputs, phase, message


def outputs_size(outputs: dict | None) -> int:
    """What a node's outputs cost the status: its result and parameter values (characters)."""
    if not outputs:
        return 0
    params = outputs.get("parameters") or []
    return len(outputs.get("result") or "") + sum(len(str(p.get("value") or "")) for p in params)


def bound_outputs(kept: int, outputs: dict, phase: str, message: str) -> tuple[dict, str, str]:
    """A finished pod's outputs, unless they would bring what the workflow keeps (`kept`) over
    limits.workflow_output_bytes: then the pod is an Error and keeps only its exit code."""
    limit, size = current_limits().workflow_output_bytes, outputs_size(outputs)
    if kept + size <= limit:
        return outputs, phase, message
    slim = {k: v for k, v in outputs.items() if k == "exitCode"}
    return slim, N.ERROR, (f"this step's outputs ({human(size)}) would bring the workflow's kept outputs to "
                           f"{human(kept + size)}, over the {human(limit)} limit ({setting('workflow_output_bytes')})")


def publish_globals(status: dict, outputs: dict) -> bool:
    """Copy outputs with a `globalName` into the workflow's `status.outputs`; True if any."""
    changed = False
    gout = status.setdefault("outputs", {})
    for p in outputs.get("parameters", []) or []:
        if p.get("globalName"):
            params = [x for x in gout.get("parameters", []) if x["name"] != p["globalName"]]
            params.append({"name": p["globalName"], "value": p.get("value", "")})
            gout["parameters"] = params
            changed = True
    for a in outputs.get("artifacts", []) or []:
        if a.get("globalName"):
            arts = [x for x in gout.get("artifacts", []) if x["name"] != a["globalName"]]
            entry = {k: v for k, v in a.items() if k != "globalName"}
            entry["name"] = a["globalName"]
            arts.append(entry)
            gout["artifacts"] = arts
            changed = True
    return changed

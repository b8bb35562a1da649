"""What a person asks of a running workflow, as written in the workflow object, and applying it.

Whole-workflow controls are Argo's spec fields: `spec.suspend: true` and `spec.shutdown: Stop |
Terminate`. Resuming one node (optionally with its output parameters, like `argo node set`) is a
request annotation `reconciler.io/request-<id>` holding JSON; the runner applies it, and removes
it in the same write that records the effect, so a request is applied exactly once even across a
crash (resuming an already resumed node is a no-op anyway).
"""

from __future__ import annotations

import json
import logging
import secrets
import time

from reconciler.engine import nodes as N
from reconciler.engine.operator import Operator

log = logging.getLogger(__name__)

REQUEST_PREFIX = "reconciler.io/request-"
SHUTDOWN_MESSAGES = {"Stop": "Stopped", "Terminate": "Terminated"}


def resume_request(node: str | None = None, parameters: dict[str, str] | None = None) -> dict:
    """The annotation a client writes to ask for a resume (of every suspend node, or of one)."""
    key = f"{REQUEST_PREFIX}{time.time_ns():x}{secrets.token_hex(2)}"
    body = {"action": "resume", "node": node or "", "parameters": parameters or {}}
    return {key: json.dumps(body, separators=(",", ":"))}


def apply_controls(op: Operator, obj: dict, *, draining: bool = False) -> dict:
    """Bring `op` in line with the controls written in `obj`; returns the annotations to remove."""
    spec = obj.get("spec") or {}
    done = {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in sorted(k for k in annotations if k.startswith(REQUEST_PREFIX)):
        done[key] = None
        try:
            request = json.loads(annotations[key])
        except ValueError:
            log.warning("workflow %s: request %s is not JSON; dropped", op.name, key)
            continue
        if not isinstance(request, dict) or request.get("action") != "resume":
            log.warning("workflow %s: unknown request %s: %r; dropped", op.name, key, request)
            continue
        if op.finished:
            continue
        params = request.get("parameters") or {}
        error = op.resume(request.get("node") or None, {str(k): str(v) for k, v in params.items()})
        if error:
            log.warning("workflow %s: resume: %s", op.name, error)
    # After the requests: `reconciler resume` resumes the suspend nodes that were waiting, then lifts
    # the suspension; suspend nodes reached while suspended start waiting only now, as in Argo.
    if not op.finished:
        op.set_suspended(bool(spec.get("suspend")) or draining)
        how = spec.get("shutdown")
        if how in SHUTDOWN_MESSAGES and not op.root.forced:
            op.shutdown(N.FAILED, SHUTDOWN_MESSAGES[how], run_exit_handler=how == "Stop")
    return done

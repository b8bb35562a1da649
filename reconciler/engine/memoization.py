"""Memoization (Argo's `memoize`, cached in ConfigMaps) and the call keys of `resubmit --memoized`."""

from __future__ import annotations

import hashlib
import json

from reconciler.engine import nodes as N
from reconciler.spec.expressions.durations import parse_duration
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.templating import substitute, substitute_object


def call_key(tmpl: dict, inputs: dict) -> str:
    """What makes two calls the same for `resubmit --memoized`: the template and its resolved inputs."""
    text = json.dumps({"template": tmpl, "inputs": inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]




class MemoMixin:
    """Part of Operator (see operator.py)."""

    def _memo_hit(self, kind, name, display, ctx, tmpl, inputs, owner, parent_id, boundary_id,
                  status: dict, outputs: dict) -> str:
        node_type = N.POD if kind in ("container", "script") else {"steps": N.STEPS, "dag": N.DAG}.get(kind, N.SUSPEND)
        node = self.create_node(name, display, node_type, owner=owner, parent_id=parent_id,
                                boundary_id=boundary_id, tmpl=tmpl, ctx=ctx, phase=N.PENDING, inputs=inputs)
        node["memoizationStatus"] = status
        self.complete(node["id"], N.SUCCEEDED, "", outputs)
        return node["id"]

    def call_body(self, tmpl: dict, scope: dict) -> dict:
        """The template as this call would run it (references it cannot resolve yet stay as written)."""
        try:
            return substitute_object(tmpl, self.scoped(scope))
        except (ExpressionError, ValueError):
            return tmpl

    def _memo_lookup(self, memoize: dict, scope: dict) -> tuple[dict, dict | None]:
        """The cache entry for this call, if one exists and is younger than maxAge."""
        key = substitute(str(memoize.get("key", "")), self.scoped(scope))
        cache = ((memoize.get("cache") or {}).get("configMap") or {}).get("name", "")
        memo = {"key": key, "cacheName": cache}
        data = (self.configmaps(cache) if self.configmaps else None) or {}
        raw = data.get(key)
        if not raw:
            return memo, None
        try:
            entry = json.loads(raw)
            created = N.parse_rfc3339(entry.get("creationTimestamp")) or 0.0
        except (ValueError, TypeError, AttributeError):
            return memo, None
        if not _valid_outputs(entry.get("outputs")):
            return memo, None  # a ConfigMap anyone may edit: an entry of another shape is a miss
        max_age = memoize.get("maxAge")
        if max_age and self.clock() - created > parse_duration(str(max_age)):
            return memo, None
        return memo, entry.get("outputs") or {}


def _valid_outputs(outputs: object) -> bool:
    """Outputs as a node records them: lists of named objects (an exit code and a result as text)."""
    if outputs is None:
        return True
    if not isinstance(outputs, dict):
        return False
    for kind in ("parameters", "artifacts"):
        items = outputs.get(kind) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str)
                                                  for i in items):
            return False
    return all(isinstance(outputs.get(k, ""), str) for k in ("result", "exitCode"))

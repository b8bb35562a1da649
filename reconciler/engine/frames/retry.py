"""`retryStrategy`: a Retry node whose children are the attempts `name(0)`, `name(1)`, ..."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.engine import nodes as N
from reconciler.engine.frames.base import Frame
from reconciler.engine.scope import template_scope
from reconciler.spec.expressions.durations import parse_duration
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.expr import evaluate as evaluate_expr
from reconciler.spec.expressions.templating import build_env, substitute

if TYPE_CHECKING:
    from reconciler.engine.operator import Operator
    from reconciler.engine.templates import TemplateContext


class RetryFrame(Frame):
    def __init__(self, op: Operator, node_id: str, ctx: TemplateContext, tmpl: dict, inputs: dict,
                 boundary_id: str | None, extra_scope: dict) -> None:
        super().__init__(op, node_id)
        self.ctx = ctx
        self.tmpl = tmpl
        self.inputs = inputs
        self.boundary_id = boundary_id
        self.extra_scope = extra_scope
        self.strategy = tmpl.get("retryStrategy") or {}

    def start(self) -> None:
        self.attempt()

    def attempt(self) -> None:
        node = self.node
        i = len(node.get("children", []))
        node.pop("message", None)
        self.op.touch(self.node_id)
        self.op.execute(f"{node['name']}({i})", f"{node['displayName']}({i})", self.ctx, self.tmpl, self.inputs,
                        owner=self, parent_id=self.node_id, boundary_id=self.boundary_id, in_retry=True,
                        extra_scope={**self.extra_scope, "retries": str(i)})

    def on_timer(self, purpose: str) -> None:
        if not N.is_fulfilled(self.node) and not self.op.status.get("shutdown"):
            self.attempt()

    def child_done(self, child_id: str) -> None:
        child = self.op.nodes[child_id]
        outputs = child.get("outputs")
        if child["phase"] == N.SUCCEEDED:
            self.op.complete(self.node_id, N.SUCCEEDED, "", outputs)
            return
        try:
            delay = self.retry_delay(child)
        except (ExpressionError, ValueError) as exc:
            self.op.complete(self.node_id, N.ERROR, f"retryStrategy: {exc}", outputs)
            return
        if delay is None:
            self.op.complete(self.node_id, child["phase"], child.get("message", ""), outputs)
        elif delay <= 0:
            self.attempt()
        else:
            self.node["message"] = f"Backoff for {_human(delay)}"
            self.op.touch(self.node_id)
            self.op.set_timer(self.node_id, self.op.clock() + delay, "retry")

    def retry_delay(self, child: dict) -> float | None:
        """Seconds to wait before the next attempt, or None when retrying is over."""
        if self.op.status.get("shutdown"):
            return None
        scope = self.op.scoped(template_scope(self.inputs))
        attempts = len(self.node.get("children", []))
        limit = self.strategy.get("limit")
        if limit is not None and attempts > int(substitute(str(limit), scope)):
            return None
        policy = self.strategy.get("retryPolicy") or ("Always" if self.strategy.get("expression") else "OnFailure")
        phase = child["phase"]
        if policy == "OnFailure" and phase != N.FAILED:
            return None
        if policy in ("OnError", "OnTransientError") and phase != N.ERROR:
            return None
        expression = self.strategy.get("expression")
        if expression:
            outputs = child.get("outputs") or {}
            last = {
                "exitCode": outputs.get("exitCode", "-1"),
                "status": phase,
                "duration": str(int(N.duration_seconds(child, self.op.clock()))),
                "message": child.get("message", ""),
            }
            env = build_env({**scope, "lastRetry.exitCode": last["exitCode"], "lastRetry.status": phase,
                             "lastRetry.duration": last["duration"], "lastRetry.message": last["message"]})
            if not evaluate_expr(substitute(str(expression), scope), env):
                return None
        backoff = self.strategy.get("backoff") or {}
        if not backoff.get("duration"):
            return 0.0
        delay = parse_duration(substitute(str(backoff["duration"]), scope))
        factor = float(substitute(str(backoff.get("factor", 1)), scope) or 1)
        delay *= factor ** (attempts - 1)
        if backoff.get("cap"):
            delay = min(delay, parse_duration(substitute(str(backoff["cap"]), scope)))
        if backoff.get("maxDuration"):
            first = self.op.nodes[self.node["children"][0]]
            started = first.get("startedAtUnix") or self.op.clock()
            if self.op.clock() + delay > started + parse_duration(substitute(str(backoff["maxDuration"]), scope)):
                return None
        return delay


def _human(seconds: float) -> str:
    return f"{seconds:g} seconds" if seconds != 1 else "1 second"

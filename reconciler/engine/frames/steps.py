"""`steps`: groups run one after another; the steps of a group run in parallel."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from reconciler.engine import nodes as N
from reconciler.engine.frames.base import HookedFrame
from reconciler.engine.loops import LoopError, expand_items, has_loop, item_label, item_scope
from reconciler.engine.scope import (
    InputError,
    add_aggregate_outputs,
    add_node_outputs,
    collect_template_outputs,
)
from reconciler.spec.expressions.conditions import evaluate_when
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.templating import substitute

if TYPE_CHECKING:
    from reconciler.engine.operator import Operator
    from reconciler.engine.templates import TemplateContext


class StepsFrame(HookedFrame):
    def __init__(self, op: Operator, node_id: str, ctx: TemplateContext, tmpl: dict, scope: dict) -> None:
        super().__init__(op, node_id, ctx)
        self.tmpl = tmpl
        self.groups = tmpl.get("steps") or []
        self.scope = scope
        self.index = -1
        self.limit = int(tmpl["parallelism"]) if tmpl.get("parallelism") else None
        self.group: StepGroupFrame | None = None

    def start(self) -> None:
        self.next_group()

    def next_group(self) -> None:
        self.index += 1
        if self.index >= len(self.groups):
            try:
                outputs = collect_template_outputs(self.tmpl, self.op.scoped(self.scope))
            except InputError as exc:
                self.finish(N.ERROR, str(exc), None)
                return
            self.finish(N.SUCCEEDED, "", outputs)
            return
        name = f"{self.node['name']}[{self.index}]"
        node = self.op.create_node(name, f"[{self.index}]", N.STEP_GROUP, owner=self, parent_id=self.node_id,
                                   boundary_id=self.node_id, tmpl=None, ctx=self.ctx)
        self.group = StepGroupFrame(self, node["id"], self.groups[self.index] or [])
        self.op.frames[node["id"]] = self.group
        self.group.start()

    def child_done(self, child_id: str) -> None:
        node = self.op.nodes[child_id]
        if node["phase"] in N.FAILED_OR_ERROR:
            self.finish(N.FAILED, node.get("message") or N.failure_message(node), None)
            return
        self.next_group()

    def finish(self, phase: str, message: str, outputs: dict | None) -> None:
        """Complete the Steps node, first recording (as Argo's updateOutboundNodes does, whatever
        the phase) the outbound nodes of the last step group's steps: what a DAG task that depends
        on this one hangs off. The steps' own `children` layout is unchanged."""
        if self.group is not None:
            outbound = [out for c in self.group.members for out in N.outbound_nodes(self.op.nodes, c)]
            if outbound:
                self.node["outboundNodes"] = outbound
        self.op.complete(self.node_id, phase, message, outputs)


class StepGroupFrame(HookedFrame):
    def __init__(self, steps: StepsFrame, node_id: str, group: list[dict]) -> None:
        super().__init__(steps.op, node_id, steps.ctx)
        self.steps = steps
        self.group_steps = group
        self.queue: deque[tuple[dict, str, str, dict]] = deque()
        self.active = 0
        self.children_of: dict[str, list[str]] = {}
        self.members: list[str] = []  # the step nodes (not their exit hooks), in creation order
        self.looped: set[str] = set()
        self.busy = False
        self.done = False

    def hook_scope(self) -> dict:
        return self.steps.scope

    def start(self) -> None:
        scope = self.op.scoped(self.steps.scope)
        base = self.node["name"]
        for step in self.group_steps:
            name = step["name"]
            self.children_of[name] = []
            if not has_loop(step):
                self.plan(step, f"{base}.{name}", name, {})
                continue
            self.looped.add(name)
            try:
                items = expand_items(step, scope, len(self.op.nodes))
            except (LoopError, ExpressionError) as exc:
                self.immediate(step, f"{base}.{name}", name, N.ERROR, str(exc))
                continue
            if not items:
                self.immediate(step, f"{base}.{name}", name, N.SKIPPED_PHASE, "Skipped, empty params")
                continue
            for i, item in enumerate(items):
                label = f"{name}({i}:{item_label(item)})"
                self.plan(step, f"{base}.{label}", label, item_scope(item))
        self.run()

    def immediate(self, step: dict, name: str, display: str, phase: str, message: str) -> None:
        node = self.op.create_node(name, display, N.SKIPPED, owner=self, parent_id=self.node_id,
                                   boundary_id=self.steps.node_id, tmpl=None, ctx=self.ctx, phase=phase,
                                   message=message)
        self.children_of[step["name"]].append(node["id"])
        self.members.append(node["id"])

    def plan(self, step: dict, name: str, display: str, extra: dict) -> None:
        scope = self.op.scoped({**self.steps.scope, **extra} if extra else self.steps.scope)
        when = step.get("when")
        if when is not None:
            text = substitute(str(when), scope)
            try:
                run = evaluate_when(text)
            except ExpressionError as exc:
                self.immediate(step, name, display, N.ERROR, f"when '{text}': {exc}")
                return
            if not run:
                self.immediate(step, name, display, N.SKIPPED_PHASE, f"when '{text}' evaluated false")
                return
        self.queue.append((step, name, display, scope))

    def run(self) -> None:
        if self.busy:
            return
        self.busy = True
        limit = self.steps.limit
        try:
            while self.queue and (limit is None or self.active < limit):
                step, name, display, scope = self.queue.popleft()
                self.active += 1
                child_id = N.node_id(self.op.name, name)
                self.children_of[step["name"]].append(child_id)
                self.members.append(child_id)
                self.call_of[child_id] = step
                self.prefix_of[child_id] = f"steps.{step['name']}"
                self.op.call(step, name, display, self.ctx, scope, owner=self,
                             parent_id=self.node_id, boundary_id=self.steps.node_id)
        finally:
            self.busy = False
        self.check_done()

    def settled(self, child_id: str) -> None:
        self.active -= 1
        self.run()

    def check_done(self) -> None:
        if self.done or self.queue or self.active or self.busy:
            return
        self.done = True
        scope = self.steps.scope
        failure = ""
        for step in self.group_steps:
            ids = self.children_of.get(step["name"], [])
            children = [self.op.nodes[i] for i in ids]
            prefix = f"steps.{step['name']}"
            if step["name"] in self.looped:
                add_aggregate_outputs(scope, prefix, [c for c in children if c["type"] != N.SKIPPED])
            elif children:
                add_node_outputs(scope, prefix, children[0])
            for child in children:
                if child["phase"] in N.FAILED_OR_ERROR and not N.continues_on(step.get("continueOn"), child["phase"]):
                    failure = failure or N.failure_message(child)
        self.op.complete(self.node_id, N.FAILED if failure else N.SUCCEEDED, failure, None)

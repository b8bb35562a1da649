"""The frame protocol, exit hooks shared by steps and tasks, and the workflow root."""

from __future__ import annotations

import json
from collections import ChainMap
from typing import TYPE_CHECKING

from reconciler.engine import nodes as N
from reconciler.engine.scope import InputError, add_node_outputs, resolve_inputs
from reconciler.engine.templates import LOCAL, TemplateContext, TemplateNotFound
from reconciler.spec.expressions.errors import ExpressionError

if TYPE_CHECKING:
    from reconciler.engine.operator import Operator


class Frame:
    """Owner of some nodes: told when each of them is fulfilled."""

    def __init__(self, op: Operator, node_id: str | None) -> None:
        self.op = op
        self.node_id = node_id

    def child_done(self, child_id: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def on_timer(self, purpose: str) -> None:
        pass

    @property
    def node(self) -> dict:
        return self.op.nodes[self.node_id]


class HookedFrame(Frame):
    """Runs a step's or task's `hooks.exit` (or legacy `onExit`) after it completes, before the
    frame treats it as settled: Argo waits for exit hooks before moving on."""

    def __init__(self, op: Operator, node_id: str | None, ctx: TemplateContext) -> None:
        super().__init__(op, node_id)
        self.ctx = ctx
        self.call_of: dict[str, dict] = {}
        self.prefix_of: dict[str, str] = {}
        self.hook_of: dict[str, str] = {}

    def child_done(self, child_id: str) -> None:
        original = self.hook_of.pop(child_id, None)
        if original is not None:
            self.settled(original)
            return
        call = self.call_of.get(child_id)
        node = self.op.nodes[child_id]
        hook = _exit_hook(call) if call else None
        if hook and node["phase"] in N.COMPLETED and node["type"] != N.SKIPPED:
            own: dict = {}
            add_node_outputs(own, self.prefix_of[child_id], node)
            scope = ChainMap(own, self.hook_scope())
            hook_id = self.op.call(hook, f"{node['name']}.onExit", f"{node['displayName']}.onExit", self.ctx,
                                   scope, owner=self, parent_id=self.hook_parent(child_id),
                                   boundary_id=self.node_id)
            if not N.is_fulfilled(self.op.nodes[hook_id]):
                self.hook_of[hook_id] = child_id
                return
        self.settled(child_id)

    def hook_scope(self) -> dict:
        return {}

    def hook_parent(self, child_id: str) -> str:
        return self.node_id

    def settled(self, child_id: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _exit_hook(call: dict) -> dict | None:
    hooks = call.get("hooks") or {}
    if "exit" in hooks:
        return hooks["exit"]
    if call.get("onExit"):
        return {"template": call["onExit"]}
    return None


class RootFrame(Frame):
    """Runs the entrypoint, then the workflow's exit handler, then decides the workflow's phase."""

    def __init__(self, op: Operator) -> None:
        super().__init__(op, None)
        self.main_id: str | None = None
        self.exit_id: str | None = None
        self.in_exit_handler = False
        self.forced: tuple[str, str] | None = None

    def start(self) -> None:
        op = self.op
        spec = op.spec
        ctx = TemplateContext(LOCAL)
        try:
            tmpl = op.resolver.get(ctx, spec["entrypoint"])
            inputs = resolve_inputs(tmpl, spec.get("arguments") or {}, op.scoped({}), op.configmaps)
        except (TemplateNotFound, InputError, ExpressionError, KeyError) as exc:
            op.finish_workflow(N.ERROR, str(exc))
            return
        # Known before executing: a memoized or failing entrypoint reports back at once.
        self.main_id = N.node_id(op.name, op.name)
        op.execute(op.name, op.name, ctx, tmpl, inputs, owner=self, parent_id=None, boundary_id=None)

    def child_done(self, child_id: str) -> None:
        op = self.op
        if child_id == self.main_id and self.exit_id is None:
            if self.forced and not self.forced_exit_handler:
                self._finalize()
                return
            handler = op.spec.get("onExit") or ((op.spec.get("hooks") or {}).get("exit") or {}).get("template")
            if handler:
                main = op.nodes[child_id]
                op.exit_vars = {
                    "workflow.status": self.forced[0] if self.forced else main["phase"],
                    "workflow.failures": json.dumps(_failures(op.nodes), separators=(",", ":")),
                }
                op._globals = None
                scope: dict = {}
                self.in_exit_handler = True
                self.exit_id = N.node_id(op.name, f"{op.name}.onExit")
                op.call({"template": handler}, f"{op.name}.onExit", f"{op.name}.onExit",
                                       TemplateContext(LOCAL), scope, owner=self, parent_id=None,
                                       boundary_id=None)
                return
            self._finalize()
        elif child_id == self.exit_id:
            self._finalize()

    def _finalize(self) -> None:
        op = self.op
        main = op.nodes.get(self.main_id) if self.main_id else None
        if self.forced:
            phase, message = self.forced
        else:
            phase = main["phase"] if main else N.ERROR
            message = main.get("message", "") if main and phase != N.SUCCEEDED else ""
        if self.exit_id:
            exit_node = op.nodes[self.exit_id]
            if exit_node["phase"] in N.FAILED_OR_ERROR and phase == N.SUCCEEDED:
                phase, message = exit_node["phase"], f"exit handler failed: {exit_node.get('message', '')}"
        op.finish_workflow(phase, message)

    forced_exit_handler = True

    def shutdown(self, phase: str, message: str, run_exit_handler: bool) -> None:
        self.forced = (phase, message)
        self.forced_exit_handler = run_exit_handler
        main = self.op.nodes.get(self.main_id) if self.main_id else None
        if main is not None and N.is_fulfilled(main) and self.exit_id is None:
            self.child_done(self.main_id)
        elif main is not None and not N.is_fulfilled(main):
            # Containers whose children were all killed settle through the normal frame logic;
            # anything still open (a suspended or waiting node) is closed here.
            for node in list(self.op.nodes.values()):
                if not N.is_fulfilled(node) and node["id"] != self.main_id:
                    self.op.complete(node["id"], N.FAILED, message, None)
            if not N.is_fulfilled(self.op.nodes[self.main_id]):
                self.op.complete(self.main_id, N.FAILED, message, None)


def _failures(nodes: dict) -> list[dict]:
    return [
        {"displayName": n["displayName"], "message": n.get("message", ""), "templateName": n.get("templateName", ""),
         "phase": n["phase"], "podName": n.get("podName", ""), "finishedAt": n.get("finishedAt", "")}
        for n in nodes.values()
        if n["type"] == N.POD and n["phase"] in N.FAILED_OR_ERROR
    ]

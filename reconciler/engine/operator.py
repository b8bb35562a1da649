"""The workflow state machine: status + event -> new status + actions.

One `Operator` holds one workflow's object in memory. Container frames (steps, DAGs, retries,
loops) are in-memory controllers for nodes that have children; everything they know is derived
from the workflow's spec and node statuses, so the object in the store stays the truth."""

from __future__ import annotations

import time
from collections import ChainMap, deque
from collections.abc import Callable
from typing import Any

from reconciler.engine import nodes as N
from reconciler.engine.actions import PodFinished, ReleaseLocks, RunPod, SaveMemo, SetTimer
from reconciler.engine.controls import ControlsMixin
from reconciler.engine.frames import Frame, RootFrame
from reconciler.engine.memoization import MemoMixin, call_key
from reconciler.engine.outputs import bound_outputs, outputs_size, pod_outputs, publish_globals
from reconciler.engine.replay import Replay
from reconciler.engine.scope import InputError, global_scope, resolve_inputs, template_scope
from reconciler.engine.templates import (
    LOCAL,
    TemplateContext,
    TemplateLookup,
    TemplateNotFound,
    TemplateResolver,
    is_leaf,
    template_type,
)
from reconciler.spec.expressions.durations import parse_duration
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.templating import substitute, substitute_object

TERMINAL_WORKFLOW = frozenset({N.SUCCEEDED, N.FAILED, N.ERROR})
ConfigMapLookup = Callable[[str], "dict | None"]
# Where a new node is linked: one parent, several (a DAG task's dependencies' outbound nodes), none.
Parents = str | list[str] | None
# (node id, substituted template) -> None when the node may start, else why it waits.
LockGate = Callable[[str, dict], "str | None"]


class Operator(ControlsMixin, MemoMixin):
    outputs_kept: int | None = None  # bytes of outputs in the nodes, counted once on first need

    def __init__(
        self,
        wf: dict,
        *,
        lookup: TemplateLookup | None = None,
        configmaps: ConfigMapLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.wf = wf
        self.name: str = wf["metadata"]["name"]
        status = wf.setdefault("status", {})
        self.status = status
        self.spec: dict = status.get("storedWorkflowTemplateSpec") or wf["spec"]
        self.nodes: dict[str, dict] = status.setdefault("nodes", {})
        self.clock = clock
        self.configmaps = configmaps
        self.resolver = TemplateResolver(wf, self.spec, lookup)
        self.dirty: set[str] = set()
        self.status_dirty = True
        self.actions: list = []
        self.owner: dict[str, Frame] = {}
        self.frames: dict[str, Frame] = {}
        self.children_of: dict[str, list[str]] = {}
        self.pod_queue: deque[str] = deque()
        self.pending_pods: dict[str, RunPod] = {}
        self.running_pods: set[str] = set()
        self.timers: dict[str, tuple[float, str]] = {}
        self._globals: dict | None = None
        self.exit_vars: dict[str, str] = {}  # workflow.status/failures, once the exit handler runs
        self.parallelism = self.spec.get("parallelism")
        self.root = RootFrame(self)
        self.replay: Replay | None = None
        self.suspended = False               # spec.suspend: no new pod starts
        self.gate: LockGate | None = None    # template-level synchronization, owned by the runner
        self.locked: set[str] = set()        # nodes holding locks, released when they finish
        self.lock_waiting: set[str] = set()
        self.waiting_frames: dict[str, tuple[Frame, dict]] = {}
        self.held_suspends: dict[str, tuple[dict, dict]] = {}  # suspend nodes reached while suspended
        self.prior: dict[str, dict] | None = None  # resubmit --memoized: call key -> earlier result

    # ---- public events -------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.status.get("phase") in TERMINAL_WORKFLOW

    def start(self) -> None:
        now = self.clock()
        self.status["phase"] = N.RUNNING
        self.status["startedAt"] = N.now_rfc3339(now)
        self.status["startedAtUnix"] = now
        self.status_dirty = True
        problem = self._runtime_problem()
        if problem:
            self.finish_workflow(N.FAILED, f"invalid spec: {problem}")
            return
        self._set_deadline(now)
        self.root.start()

    def on_pod_finished(self, event: PodFinished) -> None:
        node = self.nodes.get(event.node_id)
        self.running_pods.discard(event.node_id)
        if node is None or N.is_fulfilled(node):
            self._drain_pod_queue()
            return
        tmpl = self.resolver.get(TemplateContext(node.get("templateScope", LOCAL)), node["templateName"])
        outputs, phase, message = pod_outputs(tmpl, event)
        if self.outputs_kept is None:
            self.outputs_kept = sum(outputs_size(n.get("outputs")) for n in self.nodes.values())
        outputs, phase, message = bound_outputs(self.outputs_kept, outputs, phase, message)
        self.outputs_kept += outputs_size(outputs)
        if event.started_at:
            node["startedAt"] = N.now_rfc3339(event.started_at)
            node["startedAtUnix"] = event.started_at
        self.complete(event.node_id, phase, message, outputs, finished_at=event.finished_at)
        self._drain_pod_queue()

    def on_timer(self, key: str) -> None:
        entry = self.timers.pop(key, None)
        if entry is None:
            return
        _, purpose = entry
        if purpose == "workflow-deadline":
            self.shutdown(N.FAILED, "Max duration limit exceeded", run_exit_handler=True)
            return
        frame = self.frames.get(key)
        if purpose == "suspend":
            node = self.nodes.get(key)
            if node and not N.is_fulfilled(node):
                self.complete(key, N.SUCCEEDED, "", None)
        elif frame is not None:
            frame.on_timer(purpose)

    def next_timer(self) -> float | None:
        return min((at for at, _ in self.timers.values()), default=None)

    def due_timers(self, now: float) -> list[str]:
        return [key for key, (at, _) in self.timers.items() if at <= now]

    def take_actions(self) -> list:
        actions, self.actions = self.actions, []
        return actions

    # ---- node bookkeeping ----------------------------------------------------------------
    def globals(self) -> dict[str, Any]:
        if self._globals is None:
            self._globals = global_scope(self.wf, self.spec, self.clock())
            self._globals.update(self.exit_vars)
        return self._globals

    def scoped(self, local: dict) -> ChainMap:
        """A template's variables in front of the workflow's, without copying either."""
        return ChainMap(local, self.globals())

    def touch(self, node_id: str) -> None:
        self.dirty.add(node_id)

    def create_node(
        self,
        name: str,
        display: str,
        node_type: str,
        *,
        owner: Frame,
        parent_id: Parents,
        boundary_id: str | None,
        tmpl: dict | None,
        ctx: TemplateContext | None,
        phase: str = N.RUNNING,
        message: str = "",
        inputs: dict | None = None,
    ) -> dict:
        node = N.new_node(
            self.name,
            name,
            display,
            node_type,
            template_name=tmpl.get("name") if tmpl else None,
            template_scope=ctx.scope if ctx else LOCAL,
            boundary_id=boundary_id,
            phase=phase,
            now=self.clock(),
            message=message,
        )
        if inputs:
            node["inputs"] = inputs
        node_id = node["id"]
        self.nodes[node_id] = node
        self.owner[node_id] = owner
        # One parent (a container's child) or, for a DAG task, several: the outbound nodes of the
        # tasks it depends on, as Argo links them (see frames/dag.py).
        for pid in (parent_id,) if isinstance(parent_id, str) else parent_id or ():
            self.nodes[pid].setdefault("children", []).append(node_id)
            self.touch(pid)
        self.touch(node_id)
        return node

    def complete(
        self,
        node_id: str,
        phase: str,
        message: str,
        outputs: dict | None,
        *,
        finished_at: float | None = None,
    ) -> None:
        node = self.nodes[node_id]
        if N.is_fulfilled(node):
            return
        now = finished_at or self.clock()
        node["phase"] = phase
        node["finishedAt"] = N.now_rfc3339(now)
        node["finishedAtUnix"] = now
        if message:
            node["message"] = message
        elif "message" in node and phase == N.SUCCEEDED:
            del node["message"]
        if outputs:
            node["outputs"] = outputs
            if publish_globals(self.status, outputs):
                self._globals = None
                self.status_dirty = True
        memo = node.get("memoizationStatus")
        if memo and not memo.get("hit") and phase == N.SUCCEEDED:
            self.actions.append(SaveMemo(memo["cacheName"], memo["key"], node_id, outputs or {}))
        self.touch(node_id)
        if node_id in self.locked:
            self.locked.discard(node_id)
            self.actions.append(ReleaseLocks(node_id))
        self.lock_waiting.discard(node_id)
        self.frames.pop(node_id, None)
        owner = self.owner.get(node_id)
        if owner is not None:
            owner.child_done(node_id)

    def set_timer(self, key: str, at: float, purpose: str) -> None:
        self.timers[key] = (at, purpose)
        self.actions.append(SetTimer(key, at, purpose))

    # ---- executing a template ------------------------------------------------------------
    def execute(
        self,
        name: str,
        display: str,
        ctx: TemplateContext,
        tmpl: dict,
        inputs: dict,
        *,
        owner: Frame,
        parent_id: Parents,
        boundary_id: str | None,
        in_retry: bool = False,
        extra_scope: dict | None = None,
    ) -> str:
        """Create the node for one template call and set it going. Returns the node id."""
        from reconciler.engine.frames import RetryFrame

        kind = template_type(tmpl)
        if tmpl.get("retryStrategy") and not in_retry:
            node = self.create_node(name, display, N.RETRY, owner=owner, parent_id=parent_id,
                                    boundary_id=boundary_id, tmpl=tmpl, ctx=ctx, inputs=inputs)
            frame = RetryFrame(self, node["id"], ctx, tmpl, inputs, boundary_id, extra_scope or {})
            self.frames[node["id"]] = frame
            frame.start()
            return node["id"]
        scope = template_scope(inputs)
        if extra_scope:
            scope.update(extra_scope)
        memo = None
        recorded = self.replay.memo(N.node_id(self.name, name)) if self.replay else None
        if recorded is not None:
            memo = {k: v for k, v in recorded.items() if k != "hit"}
            if recorded.get("hit"):
                rec = self.replay.recorded[N.node_id(self.name, name)]
                return self._memo_hit(kind, name, display, ctx, tmpl, inputs, owner, parent_id, boundary_id,
                                      recorded, rec.get("outputs") or {})
        elif tmpl.get("memoize"):
            try:
                memo, hit = self._memo_lookup(tmpl["memoize"], scope)
            except (ExpressionError, ValueError) as exc:
                return self._error_node(name, display, ctx, f"memoize: {exc}", owner, parent_id, boundary_id)
            if hit is not None:
                return self._memo_hit(kind, name, display, ctx, tmpl, inputs, owner, parent_id, boundary_id,
                                      {**memo, "hit": True}, hit)
        elif self.prior and kind in ("container", "script"):
            key = call_key(self.call_body(tmpl, scope), inputs)
            earlier = self.prior.get(key)
            if earlier is not None:
                status = {"key": key, "cacheName": earlier["workflow"], "hit": True}
                return self._memo_hit(kind, name, display, ctx, tmpl, inputs, owner, parent_id, boundary_id,
                                      status, earlier["outputs"])
        node_id = self._execute_kind(kind, name, display, ctx, tmpl, inputs, scope, owner, parent_id, boundary_id)
        if memo is not None and node_id in self.nodes:
            self.nodes[node_id]["memoizationStatus"] = {**memo, "hit": False}
            self.touch(node_id)
        return node_id

    def _execute_kind(self, kind, name, display, ctx, tmpl, inputs, scope, owner, parent_id, boundary_id) -> str:
        from reconciler.engine.frames import DagFrame, StepsFrame

        if kind in ("container", "script"):
            return self._create_pod(name, display, ctx, tmpl, inputs, scope, owner, parent_id, boundary_id)
        if kind == "suspend":
            node = self.create_node(name, display, N.SUSPEND, owner=owner, parent_id=parent_id,
                                    boundary_id=boundary_id, tmpl=tmpl, ctx=ctx, inputs=inputs)
            if self.replay is not None and self.replay.suspend_node(node["id"]):
                return node["id"]
            if self.suspended and self.replay is None:
                # Argo creates no node while the workflow is suspended: this one starts waiting (and
                # its duration starts running) only when the workflow is resumed.
                node["phase"] = N.PENDING
                node["message"] = "Workflow suspended"
                self.held_suspends[node["id"]] = (tmpl, scope)
                return node["id"]
            try:
                self._start_suspend(node["id"], tmpl, scope)
            except (ExpressionError, ValueError) as exc:
                self.complete(node["id"], N.ERROR, f"suspend.duration: {exc}", None)
            return node["id"]
        node_type = N.STEPS if kind == "steps" else N.DAG
        node = self.create_node(name, display, node_type, owner=owner, parent_id=parent_id,
                                boundary_id=boundary_id, tmpl=tmpl, ctx=ctx, inputs=inputs)
        cls = StepsFrame if kind == "steps" else DagFrame
        frame = cls(self, node["id"], ctx, tmpl, scope)
        self.frames[node["id"]] = frame
        if tmpl.get("synchronization") and self.gate is not None:
            if self.replay is not None:  # it held its locks the first time; it still does
                self.locked.add(node["id"])
            else:
                sync = substitute_object(tmpl["synchronization"], self.scoped(scope))
                self.waiting_frames[node["id"]] = (frame, {"synchronization": sync})
                self._start_waiting_frames()
                return node["id"]
        frame.start()
        return node["id"]

    def _start_suspend(self, node_id: str, tmpl: dict, scope: dict) -> None:
        duration = (tmpl.get("suspend") or {}).get("duration")
        if duration is not None:
            seconds = parse_duration(substitute(str(duration), self.scoped(scope)))
            self.set_timer(node_id, self.clock() + seconds, "suspend")

    def call(
        self,
        call: dict,
        name: str,
        display: str,
        ctx: TemplateContext,
        scope,
        *,
        owner: Frame,
        parent_id: Parents,
        boundary_id: str,
    ) -> str:
        """Run a step/task/hook `call` whose fields still hold `{{...}}` of the caller's `scope`."""
        try:
            new_ctx, tmpl = self.resolver.resolve_call(ctx, call)
            full = self.scoped(scope)
            arguments = _substitute_arguments(call.get("arguments") or {}, full)
            inputs = resolve_inputs(tmpl, arguments, full, self.configmaps)
        except (TemplateNotFound, InputError, ExpressionError, KeyError) as exc:
            return self._error_node(name, display, ctx, str(exc), owner, parent_id, boundary_id)
        return self.execute(name, display, new_ctx, tmpl, inputs, owner=owner,
                            parent_id=parent_id, boundary_id=boundary_id)

    def _error_node(self, name, display, ctx, message: str, owner, parent_id, boundary_id) -> str:
        """A call that cannot start: a node that ends in Error with `message`, as Argo records one."""
        node = self.create_node(name, display, N.SKIPPED, owner=owner, parent_id=parent_id,
                                boundary_id=boundary_id, tmpl=None, ctx=ctx, phase=N.PENDING)
        self.complete(node["id"], N.ERROR, message, None)
        return node["id"]

    def _create_pod(self, name, display, ctx, tmpl, inputs, scope, owner, parent_id, boundary_id) -> str:
        node = self.create_node(name, display, N.POD, owner=owner, parent_id=parent_id,
                                boundary_id=boundary_id, tmpl=tmpl, ctx=ctx, phase=N.PENDING, inputs=inputs)
        node_id = node["id"]
        if self.status.get("shutdown") and not self.root.in_exit_handler:
            self.complete(node_id, N.FAILED, self.status["shutdown"], None)
            return node_id
        pod_name = self.pod_name(tmpl.get("name", "pod"), name)
        scope = dict(scope)
        scope["pod.name"] = pod_name
        scope["node.name"] = name
        for kind in ("artifacts", "parameters"):
            for out in (tmpl.get("outputs") or {}).get(kind, []) or []:
                path = out.get("path") or (out.get("valueFrom") or {}).get("path")
                if path:
                    scope[f"outputs.{kind}.{out['name']}.path"] = path
        try:
            body = substitute_object(tmpl, self.scoped(scope))
            timeout = None
            if body.get("timeout"):
                timeout = parse_duration(body["timeout"])
            if body.get("activeDeadlineSeconds") is not None:
                ads = parse_duration(body["activeDeadlineSeconds"])
                timeout = ads if timeout is None else min(timeout, ads)
        except (ExpressionError, ValueError) as exc:
            self.complete(node_id, N.ERROR, str(exc), None)
            return node_id
        # The substituted template is what ran: keep it for retries, logs and memoization.
        action = RunPod(node_id, pod_name, body, list(inputs.get("artifacts", [])), timeout, self.volumes())
        self.pending_pods[node_id] = action
        self.pod_queue.append(node_id)
        self._drain_pod_queue()
        return node_id

    def pod_name(self, template_name: str, node_name: str) -> str:
        if node_name == self.name:
            return self.name
        prefix = f"{self.name}-{template_name}"
        if len(prefix) > 52:
            prefix = prefix[:52]
        return f"{prefix}-{N.fnv32a(node_name)}"

    def volumes(self) -> dict:
        vols = {v["metadata"]["name"]: v for v in self.spec.get("volumeClaimTemplates", []) or []}
        vols.update({v["name"]: v for v in self.spec.get("volumes", []) or []})
        return vols

    def _drain_pod_queue(self) -> None:
        if self.replay is not None:
            self.replay.drain()
            return
        limit = self.parallelism
        blocked: list[str] = []
        while self.pod_queue and (not limit or len(self.running_pods) < int(limit)):
            if (self.status.get("shutdown") or self.suspended) and not self.root.in_exit_handler:
                break
            node_id = self.pod_queue.popleft()
            action = self.pending_pods.get(node_id)
            node = self.nodes.get(node_id)
            if action is None or node is None or N.is_fulfilled(node):
                self.pending_pods.pop(node_id, None)
                continue
            if self.gate is not None and action.template.get("synchronization"):
                waiting = self.gate(node_id, action.template)
                if waiting is not None:
                    if node.get("message") != waiting:
                        node["message"] = waiting
                        self.touch(node_id)
                    self.lock_waiting.add(node_id)
                    blocked.append(node_id)
                    continue
                self.locked.add(node_id)
                self.lock_waiting.discard(node_id)
                node.pop("message", None)
            del self.pending_pods[node_id]
            node["phase"] = N.RUNNING
            node["podName"] = action.pod_name
            self.touch(node_id)
            self.running_pods.add(node_id)
            self.actions.append(action)
        self.pod_queue.extendleft(reversed(blocked))

    # ---- whole-workflow transitions ------------------------------------------------------

    def _runtime_problem(self) -> str | None:
        """What Argo's controller re-validates when a run starts, whoever submitted it."""
        for p in (self.spec.get("arguments") or {}).get("parameters", []) or []:
            enum = p.get("enum")
            if enum and "value" in p and str(p["value"]) not in [str(e) for e in enum]:
                return f"spec.arguments.parameters.{p['name']}: value {p['value']!r} is not one of {enum}"
        for tmpl in self.spec.get("templates", []) or []:
            try:
                merged = self.resolver.get(TemplateContext(LOCAL), tmpl["name"])
                if merged.get("timeout") and not is_leaf(merged):
                    return f"{template_type(merged).capitalize()} template doesn't support timeout field"
            except TemplateNotFound as exc:
                return str(exc)
        return None


def _substitute_arguments(arguments: dict, scope: dict) -> dict:
    """Parameters are text and get substituted; an artifact's `from`/`fromExpression` names an
    artifact object in the caller's scope, resolved later, so it stays as written."""
    out = dict(arguments)
    if "parameters" in arguments:
        out["parameters"] = substitute_object(arguments["parameters"], scope)
    if "artifacts" in arguments:
        arts = []
        for art in arguments["artifacts"] or []:
            keep = {k: art[k] for k in ("from", "fromExpression") if k in art}
            rest = substitute_object({k: v for k, v in art.items() if k not in keep}, scope)
            arts.append({**rest, **keep})
        out["artifacts"] = arts
    return out

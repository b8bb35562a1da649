"""`dag`: tasks start when their `depends`/`dependencies` are resolved; loops become task groups.

Nodes are linked as Argo links them (its dag.go `connectDependencies`): the DAG node's `children`
are its tasks without dependencies; any other task's node is a child of each outbound node (see
`nodes.outbound_nodes`) of each task it depends on, so a node's `children` are the nodes that
depend on it; the DAG node's `outboundNodes` are its target tasks' outbound nodes. Loop items are
children of their TaskGroup node. The frame itself never reads these links: it keeps its own maps
(`task_node`, the task groups' `item_ids`). One addition to Argo's rule: a dependency without
outbound nodes (a memoized or never-started DAG/Steps node, which Argo leaves unlinked) links its
dependents to its own node, so every node stays reachable from the root through `children`.
"""

from __future__ import annotations

import re
from collections import ChainMap, deque
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
from reconciler.spec.expressions.depends import TaskResult, parse_depends
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.templating import substitute

if TYPE_CHECKING:
    from reconciler.engine.operator import Operator
    from reconciler.engine.templates import TemplateContext

_TOKENS = re.compile(r"(&&|\|\||!|\(|\)|\s+)")


def expand_depends(text: str, tasks: dict[str, dict]) -> str:
    """Spell out a bare task name the way Argo's ancestry.go does, honouring its continueOn."""
    out = []
    for token in _TOKENS.split(text):
        if token in tasks:
            alts = [f"{token}.Succeeded", f"{token}.Skipped", f"{token}.Daemoned"]
            cont = tasks[token].get("continueOn") or {}
            if cont.get("failed"):
                alts.append(f"{token}.Failed")
            if cont.get("error"):
                alts.append(f"{token}.Errored")
            out.append("(" + " || ".join(alts) + ")")
        else:
            out.append(token)
    return "".join(out)


class DagFrame(HookedFrame):
    def __init__(self, op: Operator, node_id: str, ctx: TemplateContext, tmpl: dict, scope: dict) -> None:
        super().__init__(op, node_id, ctx)
        self.tmpl = tmpl
        self.scope = scope
        dag = tmpl["dag"]
        self.tasks: dict[str, dict] = {t["name"]: t for t in dag.get("tasks", [])}
        index = {name: i for i, name in enumerate(self.tasks)}
        self.limit = int(tmpl["parallelism"]) if tmpl.get("parallelism") else None
        self.logic = {}
        self.deps: dict[str, frozenset[str]] = {}
        for name, task in self.tasks.items():
            if task.get("depends"):
                expr = parse_depends(expand_depends(str(task["depends"]), self.tasks))
            elif task.get("dependencies"):
                expr = parse_depends(" && ".join(expand_depends(d, self.tasks) for d in task["dependencies"]))
            else:
                expr = None
            self.logic[name] = expr
            self.deps[name] = frozenset(expr.task_names()) if expr else frozenset()
        # The dependencies in spec order: the order a task's node is linked to them.
        self.dep_order = {name: sorted(deps, key=index.__getitem__) for name, deps in self.deps.items()}
        dependents: dict[str, list[str]] = {name: [] for name in self.tasks}
        for name, deps in self.deps.items():
            for dep in deps:
                dependents[dep].append(name)
        target = dag.get("target")
        if target:
            self.targets = [t for t in substitute(str(target), op.scoped(scope)).split() if t]
            self.run_set = self._ancestors(self.targets)
        else:
            self.targets = [n for n in self.tasks if not dependents[n]]
            self.run_set = set(self.tasks)
        self.dependents = {n: [d for d in ds if d in self.run_set] for n, ds in dependents.items()}
        self.remaining = {n: len([d for d in self.deps[n] if d in self.run_set]) for n in self.run_set}
        self.task_node: dict[str, str] = {}
        self.name_of: dict[str, str] = {}
        self.settled_tasks: set[str] = set()
        self.work: deque[str] = deque()
        self.queue: deque[tuple[str, dict, str, str, dict]] = deque()
        self.groups: dict[str, TaskGroupFrame] = {}
        self.active = 0
        self.busy = False
        self.done = False

    def _ancestors(self, targets: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = [t for t in targets if t in self.tasks]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.deps[name])
        return seen

    def hook_scope(self) -> dict:
        return self.scope

    def start(self) -> None:
        missing = [t for t in self.targets if t not in self.tasks]
        if missing:
            self.op.complete(self.node_id, N.ERROR, f"target {missing[0]!r} is not a task of this DAG", None)
            return
        self.work.extend(n for n in self.tasks if n in self.run_set and self.remaining[n] == 0)
        self.run()

    # ---- scheduling ------------------------------------------------------------------------
    def run(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            while True:
                if self.work:
                    self.resolve(self.work.popleft())
                elif self.queue and (self.limit is None or self.active < self.limit):
                    self.launch(*self.queue.popleft())
                else:
                    break
        finally:
            self.busy = False
        self.check_done()

    def resolve(self, name: str) -> None:
        task = self.tasks[name]
        node_name = f"{self.node['name']}.{name}"
        logic = self.logic[name]
        if logic is not None:
            results = {dep: self.result_of(dep) for dep in self.deps[name]}
            try:
                go = logic.evaluate(results)
            except ExpressionError as exc:
                self.immediate(name, node_name, N.ERROR, str(exc))
                return
            if not go:
                self.immediate(name, node_name, N.OMITTED, "omitted: depends condition not met")
                return
        when = task.get("when")
        if when is not None:
            text = substitute(str(when), self.op.scoped(self.scope))
            try:
                if not evaluate_when(text):
                    self.immediate(name, node_name, N.SKIPPED_PHASE, f"when '{text}' evaluated false")
                    return
            except ExpressionError as exc:
                self.immediate(name, node_name, N.ERROR, f"when '{text}': {exc}")
                return
        if has_loop(task):
            try:
                items = expand_items(task, self.op.scoped(self.scope), len(self.op.nodes))
            except (LoopError, ExpressionError) as exc:
                self.immediate(name, node_name, N.ERROR, f"task {name}: {exc}")
                return
            if not items:
                self.immediate(name, node_name, N.SKIPPED_PHASE, "Skipped, empty params")
                return
            self.active += 1
            group_node = self.op.create_node(node_name, name, N.TASK_GROUP, owner=self,
                                             parent_id=self.parents_of(name), boundary_id=self.node_id,
                                             tmpl=None, ctx=self.ctx)
            self.bind(name, group_node["id"])
            group = TaskGroupFrame(self, group_node["id"], task, items)
            self.groups[name] = group
            self.op.frames[group_node["id"]] = group
            group.start()
            return
        self.queue.append((name, task, node_name, name, self.scope))

    def launch(self, name: str, task: dict, node_name: str, display: str, scope: dict) -> None:
        self.active += 1
        # Bound before the call: a call that fails at once reports back before returning.
        self.bind(name, N.node_id(self.op.name, node_name))
        self.op.call(task, node_name, display, self.ctx, scope, owner=self,
                     parent_id=self.parents_of(name), boundary_id=self.node_id)

    def parents_of(self, name: str) -> list[str]:
        """Where a task's node hangs: the DAG node for a task without dependencies, else every
        outbound node of every task it depends on (all settled by now)."""
        deps = self.dep_order[name]
        if not deps:
            return [self.node_id]
        parents: list[str] = []
        seen: set[str] = set()
        for dep in deps:
            for out in self.outbound_of(dep) or [self.task_node[dep]]:
                if out not in seen:
                    seen.add(out)
                    parents.append(out)
        return parents

    def outbound_of(self, name: str) -> list[str]:
        """A task's outbound nodes; a loop's are its items' (the group's own list of them)."""
        group = self.groups.get(name)
        if group is not None and group.item_ids:
            return [out for item in group.item_ids for out in N.outbound_nodes(self.op.nodes, item)]
        return N.outbound_nodes(self.op.nodes, self.task_node[name])

    def bind(self, name: str, child_id: str) -> None:
        self.task_node[name] = child_id
        self.name_of[child_id] = name
        self.call_of[child_id] = self.tasks[name]
        self.prefix_of[child_id] = f"tasks.{name}"

    def immediate(self, name: str, node_name: str, phase: str, message: str) -> None:
        node = self.op.create_node(node_name, name, N.SKIPPED, owner=self, parent_id=self.parents_of(name),
                                   boundary_id=self.node_id, tmpl=None, ctx=self.ctx, phase=phase, message=message)
        self.task_node[name] = node["id"]
        self.settle(name)

    def items_of(self, name: str) -> list[dict]:
        """A looped task's item nodes (empty for any other task)."""
        group = self.groups.get(name)
        return [self.op.nodes[i] for i in group.item_ids] if group is not None else []

    def result_of(self, name: str) -> TaskResult:
        node = self.op.nodes[self.task_node[name]]
        return TaskResult(node["phase"], tuple(item["phase"] for item in self.items_of(name)))

    def settled(self, child_id: str) -> None:
        name = self.name_of.get(child_id)
        if name is None:
            return
        self.active -= 1
        self.settle(name)
        self.run()

    def settle(self, name: str) -> None:
        self.settled_tasks.add(name)
        node = self.op.nodes[self.task_node[name]]
        prefix = f"tasks.{name}"
        if node["type"] == N.TASK_GROUP:
            add_aggregate_outputs(self.scope, prefix, [k for k in self.items_of(name) if k["type"] != N.SKIPPED])
        add_node_outputs(self.scope, prefix, node)
        for dep in self.dependents.get(name, ()):
            self.remaining[dep] -= 1
            if self.remaining[dep] == 0:
                self.work.append(dep)

    # ---- completion ------------------------------------------------------------------------
    def check_done(self) -> None:
        if self.done or self.busy or self.active or self.queue or self.work:
            return
        if len(self.settled_tasks) < len(self.run_set):
            return
        self.done = True
        self.set_outbound()
        phase = self.assess()
        if phase != N.SUCCEEDED:
            failed = next((self.task_node[t] for t in self.targets if t in self.task_node and
                           self.op.nodes[self.task_node[t]]["phase"] in N.FAILED_OR_ERROR), None)
            culprit = failed or next((cid for cid in self.task_node.values()
                                      if self.op.nodes[cid]["phase"] in N.FAILED_OR_ERROR), None)
            message = N.failure_message(self.op.nodes[culprit]) if culprit else "a target task failed"
            self.op.complete(self.node_id, phase, message, None)
            return
        try:
            outputs = collect_template_outputs(self.tmpl, self.op.scoped(self.scope))
        except InputError as exc:
            self.op.complete(self.node_id, N.ERROR, str(exc), None)
            return
        self.op.complete(self.node_id, N.SUCCEEDED, "", outputs)

    def set_outbound(self) -> None:
        """Argo's updateOutboundNodesForTargetTasks: what a task depending on this DAG hangs off."""
        outbound = [out for t in self.targets if t in self.task_node for out in self.outbound_of(t)]
        if outbound:
            self.node["outboundNodes"] = outbound
            self.op.touch(self.node_id)

    def assess(self) -> str:
        """Argo's assessDAGPhase: walk from the roots carrying each branch's last completed phase
        (an omitted task inherits it), then judge the target tasks by their branch phase."""
        target_phase: dict[str, str] = {t: "" for t in self.targets}
        roots = [n for n in self.run_set if not [d for d in self.deps[n] if d in self.run_set]]
        queue = deque((r, N.SUCCEEDED) for r in roots)
        seen: set[tuple[str, str]] = set(queue)
        while queue:
            name, branch = queue.popleft()
            node = self.op.nodes.get(self.task_node.get(name, ""))
            if node is None:
                continue
            if node["phase"] in N.COMPLETED:
                branch = node["phase"]
            if name in target_phase and target_phase[name] not in N.FAILED_OR_ERROR:
                target_phase[name] = branch
            for dep in self.dependents.get(name, ()):
                key = (dep, branch)
                if key not in seen:
                    seen.add(key)
                    queue.append(key)
        result = N.SUCCEEDED
        for name in self.targets:
            branch = target_phase.get(name, "")
            if branch in N.FAILED_OR_ERROR and not N.continues_on(self.tasks[name].get("continueOn"), branch):
                return branch
        return result


class TaskGroupFrame(HookedFrame):
    """The iterations of one looped DAG task."""

    def __init__(self, dag: DagFrame, node_id: str, task: dict, items: list) -> None:
        super().__init__(dag.op, node_id, dag.ctx)
        self.dag = dag
        self.task = task
        self.items = items
        self.pending = 0
        self.item_ids: list[str] = []  # the item nodes, in the order they were called
        self.queue: deque[tuple[str, str, dict]] = deque()
        self.busy = False
        self.done = False

    def hook_scope(self) -> dict:
        return self.dag.scope

    def start(self) -> None:
        name = self.task["name"]
        for i, item in enumerate(self.items):
            label = f"{name}({i}:{item_label(item)})"
            self.queue.append((f"{self.dag.node['name']}.{label}", label, ChainMap(item_scope(item), self.dag.scope)))
        self.run()

    def run(self) -> None:
        if self.busy:
            return
        self.busy = True
        limit = self.dag.limit
        try:
            while self.queue and (limit is None or self.pending < limit):
                node_name, display, scope = self.queue.popleft()
                self.pending += 1
                child_id = N.node_id(self.op.name, node_name)
                self.item_ids.append(child_id)
                self.call_of[child_id] = self.task
                self.prefix_of[child_id] = f"tasks.{self.task['name']}"
                self.op.call(self.task, node_name, display, self.ctx, scope, owner=self,
                             parent_id=self.node_id, boundary_id=self.dag.node_id)
        finally:
            self.busy = False
        self.check_done()

    def settled(self, child_id: str) -> None:
        self.pending -= 1
        self.run()

    def check_done(self) -> None:
        if self.done or self.busy or self.pending or self.queue:
            return
        self.done = True
        kids = [self.op.nodes[c] for c in self.item_ids]
        failed = [k for k in kids if k["phase"] in N.FAILED_OR_ERROR
                  and not N.continues_on(self.task.get("continueOn"), k["phase"])]
        if failed:
            self.op.complete(self.node_id, N.FAILED, N.failure_message(failed[0]), None)
        else:
            self.op.complete(self.node_id, N.SUCCEEDED, "", None)

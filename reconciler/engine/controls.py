"""Whole-workflow transitions of the operator: rebuilding after a restart, resuming suspend
nodes, suspending, locks granted late, finishing and shutting down (stop, terminate, deadline)."""

from __future__ import annotations

from reconciler.engine import nodes as N
from reconciler.engine.actions import KillPod
from reconciler.engine.replay import Replay
from reconciler.engine.templates import LOCAL, TemplateContext


class ControlsMixin:
    """Part of Operator (see operator.py); split off to keep each file about one thing."""

    def resume_from_status(self) -> None:
        """Rebuild the frames of a workflow that was running (see replay.py), without running
        again any node whose result is recorded."""
        recorded = dict(self.nodes)
        self.nodes.clear()
        shutdown = None
        if self.status.get("shutdown"):
            shutdown = (self.status.get("shutdownAtUnix") or 0.0, self.status.get("shutdownPhase", N.FAILED),
                        self.status.pop("shutdown"), bool(self.status.get("shutdownExitHandler", True)))
        real_clock = self.clock
        self.replay = Replay(self, recorded, real_clock)
        self.clock = self.replay.clock
        try:
            self.replay.run(lambda: (self._set_deadline(self.clock()), self.root.start()), shutdown)
        finally:
            self.clock = real_clock
            self.replay = None
        self._drain_pod_queue()

    def _set_deadline(self, started: float) -> None:
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is not None:
            self.set_timer(self.name + "/deadline", started + float(deadline), "workflow-deadline")

    def resume(self, selector: str | None = None, parameters: dict[str, str] | None = None) -> str | None:
        """Resume suspend nodes: every waiting one, or the one named (id, name or display name),
        setting its declared output parameters like `argo node set`. Returns an error, or None."""
        parameters = parameters or {}
        # Nodes reached while the workflow was suspended do not exist yet as far as Argo is concerned.
        waiting = [n for n in self.nodes.values()
                   if n["type"] == N.SUSPEND and not N.is_fulfilled(n) and n["id"] not in self.held_suspends]
        if selector:
            waiting = [n for n in waiting if selector in (n["id"], n["name"], n["displayName"])]
            if not waiting:
                return f"no suspended node {selector!r} in workflow {self.name}"
        outputs_of = {}
        for node in waiting:
            tmpl = self.resolver.get(TemplateContext(node.get("templateScope", LOCAL)), node["templateName"])
            decls = (tmpl.get("outputs") or {}).get("parameters", []) or []
            unknown = set(parameters) - {d["name"] for d in decls}
            if unknown and selector:
                return f"node {node['displayName']!r} has no output parameter {sorted(unknown)[0]!r}"
            params = []
            for decl in decls:
                value = parameters.get(decl["name"])
                if value is None and "default" in (decl.get("valueFrom") or {}):
                    value = str(decl["valueFrom"]["default"])
                if value is not None:
                    entry = {"name": decl["name"], "value": str(value)}
                    if decl.get("globalName"):
                        entry["globalName"] = decl["globalName"]
                    params.append(entry)
            outputs_of[node["id"]] = {"parameters": params} if params else None
        for node in waiting:
            self.timers.pop(node["id"], None)
            self.complete(node["id"], N.SUCCEEDED, "", outputs_of[node["id"]])
        return None

    def set_suspended(self, suspended: bool) -> None:
        if suspended != self.suspended:
            self.suspended = suspended
            if not suspended:
                for node_id, (tmpl, scope) in list(self.held_suspends.items()):
                    del self.held_suspends[node_id]
                    node = self.nodes[node_id]
                    if not N.is_fulfilled(node):
                        node["phase"] = N.RUNNING
                        node.pop("message", None)
                        self.touch(node_id)
                        self._start_suspend(node_id, tmpl, scope)
                self._drain_pod_queue()

    def retry_lock_waiters(self) -> None:
        if self.waiting_frames:
            self._start_waiting_frames()
        if self.lock_waiting:
            self._drain_pod_queue()

    def _start_waiting_frames(self) -> None:
        """A steps or DAG template with `synchronization` starts its children once it holds the locks."""
        for node_id, (frame, sync) in list(self.waiting_frames.items()):
            node = self.nodes[node_id]
            if N.is_fulfilled(node):
                del self.waiting_frames[node_id]
                continue
            waiting = self.gate(node_id, sync) if self.gate else None
            if waiting is not None:
                if node.get("message") != waiting:
                    node["message"] = waiting
                    self.touch(node_id)
                continue
            del self.waiting_frames[node_id]
            self.locked.add(node_id)
            node.pop("message", None)
            self.touch(node_id)
            frame.start()

    def finish_workflow(self, phase: str, message: str = "") -> None:
        self.stop_daemons(None, "the workflow ended")
        now = self.clock()
        self.status["phase"] = phase
        self.status["finishedAt"] = N.now_rfc3339(now)
        self.status["finishedAtUnix"] = now
        if message:
            self.status["message"] = message
        total = [n for n in self.nodes.values() if n["type"] == N.POD]
        done = sum(1 for n in total if N.is_fulfilled(n))
        self.status["progress"] = f"{done}/{len(total)}"
        self.timers.clear()
        self.status_dirty = True

    def shutdown(self, phase: str, message: str, *, run_exit_handler: bool) -> None:
        """Stop starting nodes, kill running ones, fail whatever has not finished."""
        if self.root.forced or self.finished:
            return
        # Decided before any node is closed: closing the last one settles the root at once.
        self.root.forced = (phase, message)
        self.root.forced_exit_handler = run_exit_handler
        self.status["shutdown"] = message
        # Recorded so a replay can shut down at the same point of the run.
        self.status["shutdownAtUnix"] = self.clock()
        self.status["shutdownPhase"] = phase
        self.status["shutdownExitHandler"] = run_exit_handler
        self.status_dirty = True
        for node_id in list(self.running_pods):
            self.actions.append(KillPod(node_id, message))
        self.pod_queue.clear()
        self.pending_pods.clear()
        for node in list(self.nodes.values()):
            if not N.is_fulfilled(node) and node["type"] in (N.POD, N.SUSPEND):
                self.running_pods.discard(node["id"])
                self.timers.pop(node["id"], None)
                self.complete(node["id"], N.FAILED, message, None)
        self.root.shutdown(phase, message, run_exit_handler)

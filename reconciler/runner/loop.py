"""The runner: owns workflows (by lease), drives their operators, persists, then acts.

The order is the crash-safety rule of DESIGN.md: a status change reaches the store before the
action it implies is taken, and a pod's result is recorded before anything reacts to it. Every
write to a workflow is a compare-and-swap on the version this runner last wrote, so a runner that
lost its lease learns it at its next write; an external change (a control, a request) shows up as
a conflict or in the store's change feed, and is read and applied before writing again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconciler import metrics
from reconciler.artifacts.base import ArtifactRepository
from reconciler.engine import nodes as N
from reconciler.engine.actions import KillPod, ReleaseLocks, RunPod, SaveMemo
from reconciler.engine.operator import Operator
from reconciler.engine.resubmission import MEMOIZED_FROM, prior_results
from reconciler.engine.submission import store_lookup
from reconciler.executors.base import Executor, PodResult
from reconciler.executors.local import reap_orphans
from reconciler.runner import leases
from reconciler.runner.controls import SHUTDOWN_MESSAGES, apply_controls
from reconciler.runner.locks import LockManager, holder_is_stale, namespace_cap, requests_for
from reconciler.runner.patching import status_patch
from reconciler.runner.pods import build_job, finished_event, run_dir, save_memo
from reconciler.store.base import ENGINE_RECONCILER, ObjectStore
from reconciler.store.errors import Conflict, NotFound

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
SCAN_SECONDS = 2.0
RETRY_LOCKS_SECONDS = 1.0
Key = tuple[str, str]


def _ctx(key: Key, node: str | None = None) -> dict:
    """The fields a JSON log line carries for a workflow (see logs.py)."""
    return {"namespace": key[0], "workflow": key[1], **({"node": node} if node else {})}


def _key(obj: dict) -> Key:
    return obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]


class WorkflowRunner:
    def __init__(
        self,
        store: ObjectStore,
        executor: Executor,
        artifacts: ArtifactRepository,
        home: Path,
        *,
        clock: Callable[[], float] = time.time,
        identity: str | None = None,
        lease_seconds: float = leases.DEFAULT_SECONDS,
        max_running: int | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.artifacts = artifacts
        self.home = Path(home)
        self.clock = clock
        self.identity = identity or leases.my_identity()
        self.lease_seconds = lease_seconds
        self.max_running = max_running
        self.lookup = store_lookup(store)
        self.ops: dict[Key, Operator] = {}
        self.rv: dict[Key, str] = {}
        self.renewed: dict[Key, float] = {}
        self.waiting: set[Key] = set()            # owned, not yet admitted (caps, workflow locks)
        self.meta_patch: dict[Key, dict] = {}     # annotation changes to send with the next write
        self.op_of_node: dict[str, Operator] = {}
        self.jobs: dict[str, RunPod] = {}
        self.locks = LockManager(store, lambda holder: holder_is_stale(holder, self.ops, self.store))
        self.serving = False
        self.draining = False
        self.cursor: str | None = None
        self._log_dirs: set[Path] = set()
        self._last_scan = self._last_lock_retry = 0.0
        self._released = False

    # ---- taking workflows ------------------------------------------------------------------------
    def claim_patch(self) -> dict:
        """Annotations that make a new workflow ours from its creation (submit --wait)."""
        return leases.lease_annotations(self.identity, self.clock(), self.lease_seconds)

    def claim(self, namespace: str, name: str) -> Operator | None:
        """Take the workflow's lease if it is free, expired or ours; None if it is not ours to drive."""
        key = (namespace, name)
        if key in self.ops:
            return self.ops[key]
        try:
            obj = self.store.get("Workflow", namespace, name)
        except NotFound:
            return None
        if (obj.get("status") or {}).get("phase") in (N.SUCCEEDED, N.FAILED, N.ERROR):
            return None
        if self.store.engine_of(namespace) != ENGINE_RECONCILER:
            return None  # Argo's controller runs this namespace's workflows; we only read them
        if not leases.claimable(obj, self.identity, self.clock()):
            return None
        patch = {"metadata": {"annotations": self.claim_patch()}}
        try:
            meta = self.store.patch("Workflow", namespace, name, patch,
                                    resource_version=obj["metadata"]["resourceVersion"], return_object=False)
        except (Conflict, NotFound):
            return None
        obj["metadata"] = meta["metadata"]
        self.rv[key] = meta["metadata"]["resourceVersion"]
        self.renewed[key] = self.clock()
        return self._take_over(obj)

    def _take_over(self, obj: dict) -> Operator:
        key = _key(obj)
        op = Operator(obj, lookup=self.lookup, configmaps=self.configmaps(key[0]), clock=self.clock)
        op.gate = lambda node_id, tmpl: self.locks.acquire(
            f"{key[0]}/{key[1]}/{node_id}", requests_for(tmpl.get("synchronization"), key[0]))
        original = (obj["metadata"].get("annotations") or {}).get(MEMOIZED_FROM)
        if original:
            try:
                op.prior = prior_results(self.store.get("Workflow", key[0], original), self.lookup)
            except NotFound:
                log.warning("workflow %s/%s: %s was deleted; nothing to reuse", key[0], key[1], original,
                            extra=_ctx(key))
        self.ops[key] = op
        phase = op.status.get("phase")
        if not phase or phase == N.PENDING:
            self.waiting.add(key)
            self._admit(key)
        else:
            # A runner died driving it: its pods may still run (tmpdir isolation has no die-with-parent).
            killed = reap_orphans(run_dir(self.home, *key))
            if killed:
                log.info("workflow %s/%s: killed %d process group(s) left by a previous runner", *key, killed,
                         extra=_ctx(key))
            log.info("workflow %s/%s: resumed from its recorded status", *key, extra=_ctx(key))
            op.resume_from_status()
            self._apply_controls(op, obj)
            self.flush(op)
        return op

    def _admit(self, key: Key) -> bool:
        op = self.ops[key]
        spec = op.wf.get("spec") or {}
        if spec.get("shutdown") in SHUTDOWN_MESSAGES:
            self.waiting.discard(key)
            op.finish_workflow(N.FAILED, SHUTDOWN_MESSAGES[spec["shutdown"]])
            self.flush(op)
            return True
        if self.draining:
            return False
        requests = [namespace_cap(key[0], self.max_running), *requests_for(op.spec.get("synchronization"), key[0])]
        waiting = self.locks.acquire(f"{key[0]}/{key[1]}", requests)
        if waiting is not None:
            if op.status.get("phase") != N.PENDING or op.status.get("message") != waiting:
                op.status["phase"] = N.PENDING
                op.status["message"] = waiting
                op.status_dirty = True
                self.flush(op)
            return False
        self.waiting.discard(key)
        op.status.pop("message", None)
        op.start()
        metrics.observe_workflow_started(key[0], op.wf["metadata"].get("creationTimestamp"), self.clock())
        log.info("workflow %s/%s: started", *key, extra=_ctx(key))
        self._apply_controls(op, op.wf)
        self.flush(op)
        return True

    def _apply_controls(self, op: Operator, obj: dict) -> None:
        done = apply_controls(op, obj, draining=self.draining)
        if done:
            self.meta_patch.setdefault(_key(op.wf), {}).update(done)

    # ---- lookups the engine needs ----------------------------------------------------------------
    def configmaps(self, namespace: str) -> Callable[[str], dict | None]:
        def get(name: str) -> dict | None:
            obj = self.lookup("ConfigMap", namespace, name)
            return (obj or {}).get("data") if obj else None

        return get

    # ---- driving ---------------------------------------------------------------------------------
    def adopt(self, wf: dict) -> Operator | None:
        return self.claim(*_key(wf))

    def run(self, namespace: str, name: str, *, on_change: Callable[[dict], None] | None = None,
            stop: threading.Event | None = None) -> dict:
        """Drive one workflow to its end in this process; `on_change` sees each persisted state."""
        op = self.claim(namespace, name)
        if op is None:
            return self.store.get("Workflow", namespace, name)
        if on_change:
            on_change(op.wf)
        self.cursor = self.store.current_version()
        while (namespace, name) in self.ops:  # until finished, deleted, or taken by another runner
            if stop is not None and stop.is_set():
                self.drain()
                break
            if self.step() and on_change:
                on_change(op.wf)
        return op.wf

    def serve(self, stop: threading.Event, *, grace: float = 10.0) -> None:
        """The daemon's loop: drive every unfinished workflow of the store until `stop` is set."""
        self.serving = True
        self.cursor = self.store.current_version()
        self._scan()
        while not stop.is_set():
            self.step()
        self.drain(grace)

    def step(self) -> bool:
        """One turn: wait for results or timers, feed them to the operators, persist, act."""
        now = self.clock()
        timeout = POLL_SECONDS
        for op in self.ops.values():
            at = op.next_timer()
            if at is not None:
                timeout = max(0.0, min(timeout, at - now))
        if self._released and self.waiting:
            timeout = 0.0  # a slot was just freed: admit the next workflow now, not after a nap
        results = self.executor.poll(timeout) if self.executor.running() else self._idle(timeout)
        self._feed(results)
        changed = bool(results)
        now = self.clock()
        changed |= self._watch()
        if self.serving and now - self._last_scan >= SCAN_SECONDS:
            self._scan()
        if self._released or now - self._last_lock_retry >= RETRY_LOCKS_SECONDS:
            self._released = False
            self._last_lock_retry = now
            for key in sorted(self.waiting, key=self._created):
                if key in self.ops:
                    changed |= self._admit(key)
            for op in list(self.ops.values()):
                op.retry_lock_waiters()
        for op in list(self.ops.values()):
            for key in op.due_timers(now):
                op.on_timer(key)
                changed = True
            if op.dirty or op.status_dirty:
                changed = True
            self.flush(op)
        return changed

    def _feed(self, results: list[PodResult]) -> None:
        for result in results:
            op = self.op_of_node.pop(result.node_id, None)
            action = self.jobs.pop(result.node_id, None)
            if op is None or _key(op.wf) not in self.ops:
                continue
            event = finished_event(self.home, self.artifacts, op.wf["metadata"], action, result, self._log_dirs)
            op.on_pod_finished(event)
            log.debug("workflow %s/%s: node %s %s", *_key(op.wf), result.node_id, event.phase,
                      extra=_ctx(_key(op.wf), result.node_id))
            if event.started_at and event.finished_at:
                metrics.observe_node_finished(_key(op.wf)[0], event.phase, event.finished_at - event.started_at)

    def _idle(self, timeout: float) -> list[PodResult]:
        if timeout > 0:
            time.sleep(timeout)
        return []

    def _created(self, key: Key) -> str:
        op = self.ops.get(key)
        return (op.wf["metadata"].get("creationTimestamp", "") if op else "") + key[1]

    # ---- noticing other writers ------------------------------------------------------------------
    def _watch(self) -> bool:
        try:
            changes, self.cursor = self.store.changes(self.cursor, "Workflow")
        except Conflict:  # fell behind the retained history: look at everything again
            self.cursor = self.store.current_version()
            changes = []
            self._last_scan = 0.0
        seen: set[Key] = set()
        changed = False
        for change in changes:
            key = (change.namespace, change.name)
            if key in seen:
                continue
            if key in self.ops:
                if change.type == "DELETED":
                    self._drop(key, "deleted")
                    changed = True
                elif change.resource_version != self.rv.get(key):
                    seen.add(key)
            elif self.serving and change.type != "DELETED" and not self.draining:
                seen.add(key)
        for key in seen:
            if key in self.ops:
                changed |= self._refresh(self.ops[key])
            else:
                changed |= self.claim(*key) is not None
        return changed

    def _scan(self) -> None:
        """Pick up what the change feed cannot show: leases that expired, holders that died."""
        self._last_scan = self.clock()
        if self.draining:
            return
        now = self.clock()
        for obj in self.store.list_brief("Workflow"):
            key = _key(obj)
            if key in self.ops or (obj.get("status") or {}).get("phase") in (N.SUCCEEDED, N.FAILED, N.ERROR):
                continue
            if leases.claimable(obj, self.identity, now):
                self.claim(*key)

    def _refresh(self, op: Operator) -> bool:
        """Re-read an owned workflow after someone else wrote it. False if it is no longer ours."""
        key = _key(op.wf)
        try:
            obj = self.store.get("Workflow", *key)
        except NotFound:
            self._drop(key, "deleted")
            return False
        holder = leases.lease_of(obj)[0]
        if holder != self.identity:  # taken over (ours had expired), or finished and released
            self._drop(key, f"lease now held by {holder}" if holder else "lease released by another runner")
            return False
        self.rv[key] = obj["metadata"]["resourceVersion"]
        op.wf["spec"] = obj.get("spec", op.wf.get("spec"))
        op.wf["metadata"]["annotations"] = obj["metadata"].get("annotations") or {}
        if key in self.waiting:
            if (obj.get("spec") or {}).get("shutdown") in SHUTDOWN_MESSAGES:
                self._admit(key)
            return True
        self._apply_controls(op, obj)
        return True

    def _drop(self, key: Key, why: str) -> None:
        op = self.ops.pop(key, None)
        self.waiting.discard(key)
        self.rv.pop(key, None)
        self.meta_patch.pop(key, None)
        if op is None:
            return
        log.warning("workflow %s/%s: no longer driven here (%s)", *key, why, extra=_ctx(key))
        prefix = f"{key[0]}/{key[1]}"
        for holder in [h for h in self.locks.held if h == prefix or h.startswith(prefix + "/")]:
            # Not ours to free any more; forgetting them lets a dead new owner's holds be seen as stale.
            del self.locks.held[holder]
        for node_id in list(op.running_pods):
            self.executor.kill(node_id, why)
            self.op_of_node.pop(node_id, None)
        if why == "deleted":
            self.locks.release(f"{key[0]}/{key[1]}")
            for node_id in list(op.locked):
                self.locks.release(f"{key[0]}/{key[1]}/{node_id}")

    # ---- persisting, then acting -----------------------------------------------------------------
    def flush(self, op: Operator) -> None:
        key = _key(op.wf)
        if key not in self.ops:
            return
        now = self.clock()
        renew = now - self.renewed.get(key, 0.0) >= self.lease_seconds / 3
        done = op.finished and not op.running_pods
        for _ in range(5):
            if not (op.dirty or op.status_dirty or renew or done or key in self.meta_patch):
                break
            patch = status_patch(op) if (op.dirty or op.status_dirty) else {}
            annotations = dict(self.meta_patch.get(key, {}))
            if done:
                annotations.update(leases.released_annotations())
            elif renew:
                annotations.update(leases.lease_annotations(self.identity, now, self.lease_seconds))
            if annotations:
                patch["metadata"] = {"annotations": annotations}
            try:
                meta = self.store.patch("Workflow", *key, patch, resource_version=self.rv.get(key),
                                        return_object=False)
            except Conflict:
                if not self._refresh(op):
                    return
                continue
            except NotFound:
                self._drop(key, "deleted")
                return
            self.rv[key] = meta["metadata"]["resourceVersion"]
            self.renewed[key] = now
            self.meta_patch.pop(key, None)
            op.dirty.clear()
            op.status_dirty = False
            break
        self._act(op)
        if done:
            self._finish(key, op)

    def _act(self, op: Operator) -> None:
        ns = op.wf["metadata"].get("namespace", "default")
        for action in op.take_actions():
            if isinstance(action, RunPod):
                if self.draining:
                    continue  # recorded as running; the next runner starts it (at least once)
                job = build_job(self.home, self.artifacts, op.wf["metadata"], action)
                self.jobs[action.node_id] = action
                self.op_of_node[action.node_id] = op
                self.executor.start(job)
            elif isinstance(action, KillPod):
                self.executor.kill(action.node_id, action.reason)
            elif isinstance(action, SaveMemo):
                save_memo(self.store, ns, action, self.clock())
            elif isinstance(action, ReleaseLocks):
                self.locks.release(f"{ns}/{op.name}/{action.node_id}")
                self._released = True

    def _finish(self, key: Key, op: Operator) -> None:
        status = op.status
        if status.get("startedAtUnix") and status.get("finishedAtUnix"):
            seconds = status["finishedAtUnix"] - status["startedAtUnix"]
            metrics.observe_workflow_finished(key[0], status["phase"], seconds)
        log.info("workflow %s/%s: %s%s", *key, status.get("phase"),
                 f": {status['message']}" if status.get("message") else "", extra=_ctx(key))
        self.ops.pop(key, None)
        self.rv.pop(key, None)
        self.renewed.pop(key, None)
        self.locks.release(f"{key[0]}/{key[1]}")
        for node_id in list(op.locked):
            self.locks.release(f"{key[0]}/{key[1]}/{node_id}")
        self._released = True

    # ---- stopping --------------------------------------------------------------------------------
    def drain(self, grace: float = 10.0) -> None:
        """SIGTERM: start nothing new, give running pods `grace` seconds, save state, let go.

        Pods still running after the grace period are killed and stay recorded as running, so the
        next runner runs them again (the at-least-once rule) rather than recording a kill."""
        self.draining = True
        for op in self.ops.values():
            op.set_suspended(True)
        deadline = time.monotonic() + grace
        while self.executor.running() and time.monotonic() < deadline:
            self._feed(self.executor.poll(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))))
            for op in list(self.ops.values()):
                self.flush(op)
        for op in list(self.ops.values()):
            self.flush(op)
        self.executor.close()
        for key, op in list(self.ops.items()):
            if op.finished:
                continue
            try:
                self.store.patch("Workflow", *key, {"metadata": {"annotations": leases.released_annotations()}},
                                 resource_version=self.rv.get(key), return_object=False)
            except (Conflict, NotFound):
                pass
        self.ops.clear()

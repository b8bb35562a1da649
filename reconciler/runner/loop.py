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
from reconciler.engine.actions import KillPod, PodFinished, ReleaseLocks, RunPod, SaveMemo
from reconciler.engine.operator import Operator
from reconciler.engine.resubmission import MEMOIZED_FROM, prior_results
from reconciler.engine.submission import store_lookup
from reconciler.executors.base import Executor, JobKey, PodResult
from reconciler.executors.daemonside import WithDaemonSide
from reconciler.executors.local import reap_orphans
from reconciler.runner import crashes, leases
from reconciler.runner.controls import SHUTDOWN_MESSAGES, apply_controls
from reconciler.runner.letting_go import POLL_SECONDS, Key, LettingGo, key_of, log_fields
from reconciler.runner.locks import LockManager, holder_is_stale, namespace_cap, requests_for
from reconciler.runner.mounts import MountError
from reconciler.runner.patching import status_patch
from reconciler.runner.pods import build_job, finished_event, remove_scratch_later, run_dir, save_memo
from reconciler.store.base import ENGINE_RECONCILER, ObjectStore
from reconciler.store.errors import Conflict, NotFound

log = logging.getLogger(__name__)

SCAN_SECONDS = 2.0
RETRY_LOCKS_SECONDS = 1.0


class WorkflowRunner(LettingGo):
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
        max_deaths: int = crashes.DEFAULT_MAX_DEATHS,
        keep_scratch: bool = False,
    ) -> None:
        self.store = store
        # http and data templates are run by the daemon, not as processes (executors/daemonside.py).
        self.executor = WithDaemonSide(executor, artifacts)
        self.artifacts = artifacts
        self.home = Path(home)
        self.clock = clock
        self.identity = identity or leases.my_identity()
        self.lease_seconds = lease_seconds
        self.max_running = max_running
        self.max_deaths = max_deaths              # see crashes.py; 0: never give up
        self.driving: set[Key] = set()            # workflows whose `driving` annotation names us
        self.keep_scratch = keep_scratch
        self.lookup = store_lookup(store)
        self.ops: dict[Key, Operator] = {}
        self.rv: dict[Key, str] = {}
        self.renewed: dict[Key, float] = {}
        self.waiting: set[Key] = set()            # owned, not yet admitted (caps, workflow locks)
        self.meta_patch: dict[Key, dict] = {}     # annotation changes to send with the next write
        # By (namespace, node id): node ids repeat across namespaces (same workflow name).
        self.op_of_node: dict[JobKey, Operator] = {}
        self.jobs: dict[JobKey, RunPod] = {}
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
        annotations = self.claim_patch()
        replaying = (obj.get("status") or {}).get("phase") == N.RUNNING
        if replaying:
            # Replaying is risky too: say we drive it before starting, and count the runner that
            # died driving it (crashes.py).
            counts = crashes.death_counts(obj, self.identity)
            limit = crashes.over_limit(obj, counts, self.max_deaths)
            if limit is not None:
                self._give_up(key, obj, *limit)
                return None
            annotations.update({crashes.DRIVING: self.identity, crashes.DEATHS: crashes.deaths_annotation(counts)})
        try:
            meta = self.store.patch("Workflow", namespace, name, {"metadata": {"annotations": annotations}},
                                    resource_version=obj["metadata"]["resourceVersion"], return_object=False)
        except (Conflict, NotFound):
            return None
        obj["metadata"] = meta["metadata"]
        self.rv[key] = meta["metadata"]["resourceVersion"]
        self.renewed[key] = self.clock()
        if replaying:
            self.driving.add(key)
        with self.guard(key):
            return self._take_over(obj)
        return None

    def _take_over(self, obj: dict) -> Operator:
        key = key_of(obj)
        op = Operator(obj, lookup=self.lookup, configmaps=self.configmaps(key[0]), clock=self.clock)
        op.gate = lambda node_id, tmpl: self.locks.acquire(
            f"{key[0]}/{key[1]}/{node_id}", requests_for(tmpl.get("synchronization"), key[0]))
        original = (obj["metadata"].get("annotations") or {}).get(MEMOIZED_FROM)
        if original:
            try:
                op.prior = prior_results(self.store.get("Workflow", key[0], original), self.lookup)
            except NotFound:
                log.warning("workflow %s/%s: %s was deleted; nothing to reuse", key[0], key[1], original,
                            extra=log_fields(key))
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
                         extra=log_fields(key))
            log.info("workflow %s/%s: resumed from its recorded status", *key, extra=log_fields(key))
            op.resume_from_status()
            counts = crashes.death_counts(obj, self.identity)
            if counts.pop(crashes.WHOLE, None):  # the replay itself went through this time
                self.meta_patch.setdefault(key, {})[crashes.DEATHS] = crashes.deaths_annotation(counts)
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
        log.info("workflow %s/%s: started", *key, extra=log_fields(key))
        self._apply_controls(op, op.wf)
        self.flush(op)
        return True

    def _apply_controls(self, op: Operator, obj: dict) -> None:
        done = apply_controls(op, obj, draining=self.draining)
        if done:
            self.meta_patch.setdefault(key_of(op.wf), {}).update(done)

    # ---- lookups the engine needs ----------------------------------------------------------------
    def configmaps(self, namespace: str) -> Callable[[str], dict | None]:
        def get(name: str) -> dict | None:
            obj = self.lookup("ConfigMap", namespace, name)
            return (obj or {}).get("data") if obj else None

        return get

    # ---- driving ---------------------------------------------------------------------------------
    def adopt(self, wf: dict) -> Operator | None:
        return self.claim(*key_of(wf))

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
            for key in sorted(self.waiting, key=self._admission_order):
                if key in self.ops:
                    with self.guard(key):
                        changed |= self._admit(key)
            for key, op in list(self.ops.items()):
                with self.guard(key):
                    op.retry_lock_waiters()
        for key, op in list(self.ops.items()):
            with self.guard(key):
                for timer in op.due_timers(now):
                    op.on_timer(timer)
                    changed = True
                if op.dirty or op.status_dirty:
                    changed = True
                self.flush(op)
        return changed

    def _feed(self, results: list[PodResult]) -> None:
        for result in results:
            op = self.op_of_node.pop(result.key, None)
            action = self.jobs.pop(result.key, None)
            if op is None or key_of(op.wf) not in self.ops:
                continue
            with self.guard(key_of(op.wf)):
                self._feed_one(op, action, result)

    def _feed_one(self, op: Operator, action: RunPod | None, result: PodResult) -> None:
        event = finished_event(self.home, self.artifacts, op.wf["metadata"], action, result, self._log_dirs)
        if not self.keep_scratch:
            remove_scratch_later(result.scratch_dir)  # its log and outputs are saved now
        op.on_pod_finished(event)
        log.debug("workflow %s/%s: node %s %s", *key_of(op.wf), result.node_id, event.phase,
                  extra=log_fields(key_of(op.wf), result.node_id))
        if event.started_at and event.finished_at:
            metrics.observe_node_finished(key_of(op.wf)[0], event.phase, event.finished_at - event.started_at)

    def _idle(self, timeout: float) -> list[PodResult]:
        if timeout > 0:
            time.sleep(timeout)
        return []

    def _admission_order(self, key: Key) -> tuple[int, str]:
        """Waiting workflows are admitted by spec.priority (higher first, Argo's queue), then age."""
        op = self.ops.get(key)
        if op is None:
            return (0, key[1])
        try:
            priority = int(op.spec.get("priority") or 0)
        except (TypeError, ValueError):
            priority = 0
        return (-priority, op.wf["metadata"].get("creationTimestamp", "") + key[1])

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
                with self.guard(key):
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
            key = key_of(obj)
            if key in self.ops or (obj.get("status") or {}).get("phase") in (N.SUCCEEDED, N.FAILED, N.ERROR):
                continue
            if leases.claimable(obj, self.identity, now):
                self.claim(*key)

    def _refresh(self, op: Operator) -> bool:
        """Re-read an owned workflow after someone else wrote it. False if it is no longer ours."""
        key = key_of(op.wf)
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

    # ---- persisting, then acting -----------------------------------------------------------------
    def flush(self, op: Operator) -> None:
        key = key_of(op.wf)
        if key not in self.ops:
            return
        now = self.clock()
        renew = now - self.renewed.get(key, 0.0) >= self.lease_seconds / 3
        done = op.finished and not op.running_pods
        for _ in range(5):
            # Steps about to start or running: the write before they start says who drives them.
            driving = bool(op.running_pods) and not done
            flip = driving != (key in self.driving)
            if not (op.dirty or op.status_dirty or renew or done or flip or key in self.meta_patch):
                break
            patch = status_patch(op) if (op.dirty or op.status_dirty) else {}
            annotations = dict(self.meta_patch.get(key, {}))
            if flip:
                annotations[crashes.DRIVING] = self.identity if driving else None
            if done:
                annotations.update({**crashes.released(), crashes.DEATHS: None})
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
            if flip:
                (self.driving.add if driving else self.driving.discard)(key)
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
                try:
                    job = build_job(self.home, self.artifacts, op.wf["metadata"], action)
                except MountError as exc:  # the step's own input is wrong: its error, not the runner's
                    op.on_pod_finished(PodFinished(action.node_id, N.ERROR, str(exc)))
                    continue
                except (OSError, ValueError) as exc:  # a bad path or input artifact: this pod fails, not the runner
                    op.on_pod_finished(PodFinished(action.node_id, N.ERROR, f"{type(exc).__name__}: {exc}"))
                    continue
                self.jobs[job.key] = action
                self.op_of_node[job.key] = op
                self.executor.start(job)
            elif isinstance(action, KillPod):
                self.executor.kill((ns, action.node_id), action.reason)
            elif isinstance(action, SaveMemo):
                save_memo(self.store, ns, action, self.clock())
            elif isinstance(action, ReleaseLocks):
                self.locks.release(f"{ns}/{op.name}/{action.node_id}")
                self._released = True

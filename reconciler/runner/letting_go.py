"""The runner letting a workflow go: when it finishes, is deleted or taken over, when driving it
fails (the workflow ends in Error, the runner carries on), when the daemon died too often driving
it, and when the daemon stops (SIGTERM). Part of WorkflowRunner (loop.py)."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.engine.operator import Operator
from reconciler.executors.local import reap_orphans
from reconciler.runner import crashes
from reconciler.runner.pods import run_dir
from reconciler.store.errors import Conflict, NotFound, StoreError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
Key = tuple[str, str]


def log_fields(key: Key, node: str | None = None) -> dict:
    """The fields a JSON log line carries for a workflow (see logs.py)."""
    return {"namespace": key[0], "workflow": key[1], **({"node": node} if node else {})}


def key_of(obj: dict) -> Key:
    return obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]


class LettingGo:
    """Part of WorkflowRunner (loop.py): its state is the runner's."""

    def _give_up(self, key: Key, obj: dict, message: str, node_messages: dict[str, str]) -> None:
        """The daemon died too often driving this workflow: fail it without running anything."""
        reap_orphans(run_dir(self.home, *key))
        log.error("workflow %s/%s: %s", *key, message, extra=log_fields(key))
        crashes.fail_in_store(self.store, key, message, self.clock(), node_messages=node_messages,
                              identity=self.identity)

    @contextmanager
    def guard(self, key: Key) -> Iterator[None]:
        """Whatever goes wrong while driving one workflow fails that workflow, not the runner.

        Store errors are not the workflow's fault (the store retries what is transient; what is
        left is the daemon's problem), nor is stopping the process."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any engine bug or bad input: contain it here
            self.fail_workflow(key, f"the runner failed while driving this workflow: {type(exc).__name__}: {exc}",
                               exc)

    def fail_workflow(self, key: Key, message: str, exc: BaseException | None = None) -> None:
        """Stop driving `key` (its steps killed, its locks freed) and record it as Error with `message`."""
        where = "".join(traceback.format_exception(exc, limit=-8)) if exc is not None else ""  # the deepest frames
        log.error("workflow %s/%s: %s%s", *key, message, f"\n{where}" if where else "", extra=log_fields(key))
        op = self._forget(key, "workflow failed")
        if op is not None:
            self._release_locks(key, op)
        crashes.fail_in_store(self.store, key, message, self.clock(), identity=self.identity)
        self._released = True

    def _drop(self, key: Key, why: str) -> None:
        op = self._forget(key, why)
        if op is None:
            return
        log.warning("workflow %s/%s: no longer driven here (%s)", *key, why, extra=log_fields(key))
        if why == "deleted":
            self._release_locks(key, op)
            return
        prefix = f"{key[0]}/{key[1]}"
        for holder in [h for h in self.locks.held if h == prefix or h.startswith(prefix + "/")]:
            # Not ours to free any more; forgetting them lets a dead new owner's holds be seen as stale.
            del self.locks.held[holder]

    def _forget(self, key: Key, why: str) -> Operator | None:
        """Stop driving `key` here: its running steps are killed; returns its operator, if any."""
        op = self.ops.pop(key, None)
        self.waiting.discard(key)
        self.rv.pop(key, None)
        self.renewed.pop(key, None)
        self.meta_patch.pop(key, None)
        self.driving.discard(key)
        if op is None:
            return None
        for node_id in list(op.running_pods):
            job = (key[0], node_id)  # executors key jobs by (namespace, node id): node ids repeat across namespaces
            self.executor.kill(job, why)
            self.op_of_node.pop(job, None)
            self.jobs.pop(job, None)
        return op

    def _release_locks(self, key: Key, op: Operator) -> None:
        self.locks.release(f"{key[0]}/{key[1]}")
        for node_id in list(op.locked):
            self.locks.release(f"{key[0]}/{key[1]}/{node_id}")

    def _finish(self, key: Key, op: Operator) -> None:
        status = op.status
        # Outcomes are counted by the daemon from the store (reconciler/outcomes.py), whoever ran them.
        log.info("workflow %s/%s: %s%s", *key, status.get("phase"),
                 f": {status['message']}" if status.get("message") else "", extra=log_fields(key))
        self._forget(key, "finished")
        self._release_locks(key, op)
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
            self._flush_all()
        self._flush_all()
        self.executor.close()
        for key, op in list(self.ops.items()):
            if op.finished:
                continue
            try:  # a clean stop: the next runner must not count it as a death (crashes.py)
                self.store.patch("Workflow", *key, {"metadata": {"annotations": crashes.released()}},
                                 resource_version=self.rv.get(key), return_object=False)
            except (Conflict, NotFound):
                pass
        self.ops.clear()
        self.driving.clear()

    def _flush_all(self) -> None:
        for key, op in list(self.ops.items()):
            with self.guard(key):
                self.flush(op)

"""Rebuilding an operator's in-memory frames from a workflow's recorded status.

Frames (steps, DAGs, retries, loops) live only in memory. After a restart, or a `retry`, the
operator runs the workflow again from its entrypoint with a replay clock, and every node whose
result is already recorded is answered from the record instead of being run: a pod that finished
gets its recorded result at its recorded finish time, a resumed suspend node is resumed again, a
recorded memoization hit stays a hit. Events are fed in recorded-time order, with the operator's
own timers (retry backoff, suspend durations, deadlines) firing in between, so the frames take the
same decisions as the first time. Pods whose result was never recorded are run again for real:
the at-least-once rule for a node that was running when the daemon died.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.engine import nodes as N
from reconciler.engine.actions import RunPod, SaveMemo

if TYPE_CHECKING:
    from reconciler.engine.operator import Operator

log = logging.getLogger(__name__)

# Events at the same instant: a shutdown goes before the completions it caused.
_SHUTDOWN, _COMPLETION = 0, 1


class Replay:
    def __init__(self, op: Operator, recorded: dict[str, dict], real_clock: Callable[[], float]) -> None:
        self.op = op
        self.recorded = recorded
        self.real_clock = real_clock
        self.now = 0.0
        self.events: list[tuple[float, int, int, str]] = []
        self.seq = 0
        self.deferred: list[tuple[str, RunPod]] = []

    def clock(self) -> float:
        return self.now

    def fulfilled(self, node_id: str) -> dict | None:
        rec = self.recorded.get(node_id)
        return rec if rec is not None and N.is_fulfilled(rec) else None

    def push(self, at: float | None, order: int, node_id: str) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at or self.now, order, self.seq, node_id))

    # ---- hooks the operator calls while replaying ----------------------------------------------
    def drain(self) -> None:
        """Pods leave the queue at once: recorded ones wait for their recorded result, the others
        are held back until the replay is over and then queued for real, in the same order."""
        op = self.op
        while op.pod_queue:
            node_id = op.pod_queue.popleft()
            action = op.pending_pods.pop(node_id, None)
            node = op.nodes.get(node_id)
            if action is None or node is None or N.is_fulfilled(node):
                continue
            rec = self.fulfilled(node_id)
            if rec is None:
                self.deferred.append((node_id, action))
                continue
            node["phase"] = N.RUNNING
            node["podName"] = action.pod_name
            op.running_pods.add(node_id)
            self.push(rec.get("finishedAtUnix"), _COMPLETION, node_id)

    def suspend_node(self, node_id: str) -> bool:
        """True when the suspend node was resumed (or closed) in the record: it will be again."""
        rec = self.fulfilled(node_id)
        if rec is None:
            return False
        self.push(rec.get("finishedAtUnix"), _COMPLETION, node_id)
        return True

    def memo(self, node_id: str) -> dict | None:
        rec = self.recorded.get(node_id)
        return rec.get("memoizationStatus") if rec else None

    # ---- the replay itself ------------------------------------------------------------------
    def run(self, start: Callable[[], None], shutdown: tuple[float, str, str, bool] | None) -> None:
        op = self.op
        self.now = op.status.get("startedAtUnix") or self.real_clock()
        if shutdown is not None:
            at, phase, message, exit_handler = shutdown
            self.seq += 1
            heapq.heappush(self.events, (at, _SHUTDOWN, self.seq, f"{phase}\0{message}\0{int(exit_handler)}"))
        start()
        real_now = self.real_clock()
        while True:
            next_event = self.events[0][0] if self.events else math.inf
            next_timer = op.next_timer()
            if next_timer is not None and next_timer <= next_event and next_timer <= real_now:
                self.now = max(self.now, next_timer)
                for key in op.due_timers(next_timer):
                    op.on_timer(key)
                continue
            if not self.events:
                break
            at, order, _, payload = heapq.heappop(self.events)
            self.now = max(self.now, at)
            if order == _SHUTDOWN:
                phase, message, exit_handler = payload.split("\0")
                op.shutdown(phase, message, run_exit_handler=exit_handler == "1")
            else:
                self._complete(payload)
        self._finish()

    def _complete(self, node_id: str) -> None:
        op = self.op
        rec = self.recorded[node_id]
        op.running_pods.discard(node_id)
        node = op.nodes.get(node_id)
        if node is None or N.is_fulfilled(node):
            return
        for key in ("startedAt", "startedAtUnix"):
            if key in rec:
                node[key] = rec[key]
        op.complete(node_id, rec["phase"], rec.get("message", ""), rec.get("outputs"),
                    finished_at=rec.get("finishedAtUnix"))
        op._drain_pod_queue()

    def _finish(self) -> None:
        op = self.op
        # Nothing actually ran: kills and timers are bookkeeping, and a memo whose node finished
        # is saved again in case the daemon died between recording it and saving it.
        op.actions = [a for a in op.actions if isinstance(a, SaveMemo)]
        dirty = set()
        for node_id, node in op.nodes.items():
            rec = self.recorded.get(node_id)
            if rec is None:
                dirty.add(node_id)
            elif N.is_fulfilled(rec) and N.is_fulfilled(node):
                # A finished DAG task still gains children (the tasks that depend on it, linked as
                # they start), so the record's may lack some the replay linked again (a retried
                # workflow dropped them) or name some it did not reach: keep both.
                kids = _merged(node.get("children"), rec.get("children"))
                if kids != (rec.get("children") or []):
                    rec = {**rec, "children": kids}
                    dirty.add(node_id)
                op.nodes[node_id] = rec
            else:
                for key in ("startedAt", "startedAtUnix"):
                    if key in rec:
                        node[key] = rec[key]
                if node != rec:
                    dirty.add(node_id)
        lost = [nid for nid in self.recorded if nid not in op.nodes]
        for node_id in lost:
            op.nodes[node_id] = self.recorded[node_id]
        if lost:
            log.warning("workflow %s: %d recorded node(s) were not reached again on replay: %s",
                        op.name, len(lost), ", ".join(sorted(lost)[:5]))
        op.dirty = dirty
        op.status_dirty = True
        for node_id, action in self.deferred:
            node = op.nodes.get(node_id)
            if node is not None and not N.is_fulfilled(node):
                node["phase"] = N.PENDING
                op.pending_pods[node_id] = action
                op.pod_queue.append(node_id)
        self.deferred = []


def _merged(replayed: list[str] | None, recorded: list[str] | None) -> list[str]:
    """The replayed children in their order, then any recorded ones the replay did not link."""
    out = list(replayed or [])
    if recorded:
        have = set(out)
        out.extend(c for c in recorded if c not in have)
    return out

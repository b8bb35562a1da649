"""Workflow outcomes counted from the store's change feed, whoever ran the workflow.

A workflow is run by the daemon's runner, by `reconciler submit --wait/--watch` or `resubmit --wait`
in a terminal (its own runner, in its own process), or by another replica; all of them write to the
same store. The daemon watches the store's change feed and counts each finished workflow once into
`reconciler_workflows_finished_total` and `reconciler_workflow_duration_seconds`.

The rule that keeps counts from doubling, across restarts too:
- a run is counted when the feed shows it finished with `status.finishedAtUnix` at or after the
  moment this process started watching; it is keyed by (uid, finishedAtUnix) and the last
  KEEP_KEYS keys are remembered, so the later edits of a finished workflow (labels, a deletion of
  its pods' logs) are not counted again, while a retried workflow that finishes again is a new run;
- a restarted daemon starts the feed at "now": what finished before is never counted again (the
  counter restarts from zero, as every Prometheus counter does after a restart), and what finished
  while no daemon ran is not counted at all (`reconciler_workflows` still shows it by phase);
- a workflow deleted before the next poll (POLL_SECONDS) after it finished is not counted.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from reconciler import metrics
from reconciler.store.base import ObjectStore
from reconciler.store.errors import Conflict

log = logging.getLogger("reconciler.metrics")

FINISHED = ("Succeeded", "Failed", "Error")
KEEP_KEYS = 10_000
POLL_SECONDS = 1.0


class WorkflowOutcomes:
    """Counts finished workflows from `store.changes`; poll() from one thread."""

    def __init__(self, store: ObjectStore, now: float) -> None:
        self.store = store
        self.since = now  # runs that finished earlier belong to an earlier process (or to nobody)
        self.cursor = store.current_version()
        self._counted: OrderedDict[tuple[str, float], None] = OrderedDict()

    def poll(self) -> int:
        """Count what finished since the last poll; returns how many were counted."""
        try:
            changes, self.cursor = self.store.changes(self.cursor, "Workflow")
        except Conflict:  # fell behind the feed's retained history: skip ahead, never count twice
            self.cursor = self.store.current_version()
            log.warning("workflow outcome counter fell behind the store's change feed; some runs were not counted")
            return 0
        touched: dict[str, set[str]] = {}
        for change in changes:
            if change.type != "DELETED":
                touched.setdefault(change.namespace, set()).add(change.name)
        counted = 0
        for namespace, names in sorted(touched.items()):
            # Brief objects: the status without its nodes, whatever the size of the workflow.
            for wf in self.store.list_brief("Workflow", namespace):
                if wf["metadata"]["name"] in names and self._count(wf):
                    counted += 1
        return counted

    def _count(self, wf: dict) -> bool:
        status = wf.get("status") or {}
        finished = status.get("finishedAtUnix")
        if status.get("phase") not in FINISHED or not isinstance(finished, (int, float)) or finished < self.since:
            return False
        key = (wf["metadata"].get("uid") or wf["metadata"]["name"], float(finished))
        if key in self._counted:
            return False
        self._counted[key] = None
        if len(self._counted) > KEEP_KEYS:
            self._counted.popitem(last=False)
        started = status.get("startedAtUnix")
        seconds = finished - started if isinstance(started, (int, float)) else None
        metrics.observe_workflow_finished(wf["metadata"].get("namespace", ""), status["phase"], seconds)
        return True


def watch_outcomes(open_store: Callable[[], ObjectStore], stop: threading.Event, now: float) -> threading.Thread:
    """A daemon thread polling the change feed on its own store connection until `stop` is set."""

    def run() -> None:
        store = open_store()
        try:
            outcomes = WorkflowOutcomes(store, now)
            while not stop.wait(POLL_SECONDS):
                try:
                    outcomes.poll()
                except Exception:  # a metrics bug must not take the daemon down
                    log.exception("counting workflow outcomes failed")
        finally:
            store.close()

    thread = threading.Thread(target=run, name="reconciler-outcomes", daemon=True)
    thread.start()
    return thread

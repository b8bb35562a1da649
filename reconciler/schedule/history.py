"""History limits: finished workflows of a CronWorkflow beyond its limits are deleted, with their data.

As in Argo: successful ones beyond successfulJobsHistoryLimit (default 3), failed or errored ones
beyond failedJobsHistoryLimit (default 1), the most recently finished kept. Unfinished workflows
are never touched.
"""

from __future__ import annotations

import logging
from pathlib import Path

from reconciler.runner.pods import delete_workflow_files
from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

from .policy import is_finished
from .triggers import CronSpec, parse_time

log = logging.getLogger(__name__)


def delete_workflow_data(store: ObjectStore, home: Path | str | None, namespace: str, name: str) -> bool:
    """Delete a workflow and everything it left under `home`; False if the object was already gone.

    The files go even then: a crash after the object's delete must not leave them behind forever."""
    try:
        store.delete("Workflow", namespace, name)
        found = True
    except NotFound:
        found = False
    if home is not None:
        delete_workflow_files(Path(home), namespace, name)
    return found


def finished_at(wf: dict) -> float:
    """When a workflow finished, for ordering; falls back to its scheduled/creation time."""
    status = wf.get("status") or {}
    if isinstance(status.get("finishedAtUnix"), (int, float)):
        return float(status["finishedAtUnix"])
    meta = wf.get("metadata") or {}
    for text in (status.get("finishedAt"), (meta.get("annotations") or {}).get("workflows.argoproj.io/scheduled-time"),
                 meta.get("creationTimestamp")):
        parsed = parse_time(text)
        if parsed is not None:
            return parsed.timestamp()
    return 0.0


def beyond_limits(workflows: list[dict], successful_limit: int, failed_limit: int) -> list[dict]:
    """The finished workflows to delete, oldest first."""
    succeeded = [w for w in workflows if is_finished(w) and w["status"]["phase"] == "Succeeded"]
    failed = [w for w in workflows if is_finished(w) and w["status"]["phase"] != "Succeeded"]
    doomed = []
    for group, keep in ((succeeded, successful_limit), (failed, failed_limit)):
        group.sort(key=lambda w: (finished_at(w), w["metadata"]["name"]), reverse=True)
        doomed.extend(group[keep:])
    doomed.sort(key=lambda w: (finished_at(w), w["metadata"]["name"]))
    return doomed


def enforce_history(
    store: ObjectStore, home: Path | str | None, spec: CronSpec, workflows: list[dict]
) -> list[str]:
    """Delete what `beyond_limits` picks among `workflows` (one CronWorkflow's); the names deleted."""
    deleted = []
    for wf in beyond_limits(workflows, spec.successful_history, spec.failed_history):
        meta = wf["metadata"]
        if delete_workflow_data(store, home, meta.get("namespace") or "default", meta["name"]):
            deleted.append(meta["name"])
    if deleted:
        log.info("deleted %d workflow(s) beyond the history limits: %s", len(deleted), ", ".join(deleted))
    return deleted

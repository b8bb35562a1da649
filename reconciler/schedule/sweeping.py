"""The periodic sweep: bring each CronWorkflow's status.active in line with its workflows and delete
finished ones beyond the history limits.

Fires keep status.active current cheaply (one get per reference); the sweep is the slow, complete
pass that catches what fires cannot see: workflows that finished, were deleted, or were created just
before a crash. It reads every Workflow of each namespace that has CronWorkflows once (the store has
no label index), so it runs every `sweep_interval` seconds, not on every fire.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path

from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

from .firing import CRON_LABEL
from .history import enforce_history
from .policy import is_finished, workflow_ref
from .status import update_status
from .triggers import ScheduleError, parse_cron_spec


def sweep(
    store: ObjectStore,
    home: Path | None,
    *,
    namespace: str | None = None,
    default_tz: tzinfo | None = None,
) -> dict[str, list[str]]:
    """One pass over the CronWorkflows of `namespace` (None: all); what it deleted, by CronWorkflow."""
    deleted: dict[str, list[str]] = {}
    crons = store.list("CronWorkflow", namespace)
    for ns in sorted({c["metadata"].get("namespace") or "default" for c in crons}):
        owned: dict[str, list[dict]] = {}
        for wf in store.list("Workflow", ns):
            owner = (wf["metadata"].get("labels") or {}).get(CRON_LABEL)
            if owner:
                owned.setdefault(owner, []).append(wf)
        for cron in crons:
            if (cron["metadata"].get("namespace") or "default") != ns:
                continue
            own = owned.get(cron["metadata"]["name"], [])
            reconcile_active(store, cron, own)
            try:
                spec = parse_cron_spec(cron.get("spec") or {}, default_tz)
            except ScheduleError:
                continue  # the limits of an unreadable spec are unknown: delete nothing
            gone = enforce_history(store, home, spec, own)
            if gone:
                deleted[cron["metadata"]["name"]] = gone
    return deleted


def reconcile_active(store: ObjectStore, cron: dict, snapshot: list[dict]) -> None:
    """status.active := the unfinished workflows among `snapshot` (the cron's, as listed a moment ago)
    plus any still-unfinished reference the snapshot cannot know of (created after it was taken)."""
    listed = {w["metadata"]["name"]: w for w in snapshot}
    running = [workflow_ref(w) for w in snapshot if not is_finished(w)]
    ns = cron["metadata"].get("namespace") or "default"

    def change(current: dict) -> dict | None:
        status = current.get("status") or {}
        old = status.get("active") or []
        refs = list(running)
        counts = {"succeeded": int(status.get("succeeded") or 0), "failed": int(status.get("failed") or 0)}
        for ref in old:
            # Not in the snapshot: created after it (keep while unfinished) or deleted (drop).
            wf = listed.get(ref.get("name"))
            if wf is None:
                try:
                    wf = store.get("Workflow", ns, ref["name"])
                except (NotFound, KeyError):
                    continue
                if not is_finished(wf):
                    refs.append(ref)
            if is_finished(wf):
                # Leaving status.active finished: Argo's updateWfPhaseCounter (what stopStrategy reads).
                counts["succeeded" if wf["status"]["phase"] == "Succeeded" else "failed"] += 1
        if [r.get("name") for r in old] == [r["name"] for r in refs]:
            return None
        return {"active": refs, **counts}

    # `cron` was read a moment ago: try its resourceVersion before reading it again.
    update_status(store, ns, cron["metadata"]["name"], change, current=cron)

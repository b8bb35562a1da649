"""Concurrency policy: what a fire does while earlier workflows of the same CronWorkflow still run.

Argo's meanings: Allow always creates; Forbid skips the fire while one is unfinished; Replace stops
the unfinished ones (spec.shutdown: Terminate, which the runner acts on) and then creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Error"})


def is_finished(wf: dict) -> bool:
    return (wf.get("status") or {}).get("phase") in FINISHED_PHASES


def workflow_ref(wf: dict) -> dict:
    """A corev1.ObjectReference to a workflow, as Argo keeps in CronWorkflow status.active."""
    meta = wf["metadata"]
    return {
        "kind": "Workflow",
        "apiVersion": wf.get("apiVersion", "argoproj.io/v1alpha1"),
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
    }


def running_workflows(store: ObjectStore, cron: dict) -> list[dict]:
    """The still-unfinished workflows among the CronWorkflow's status.active references.

    One get per reference rather than a label query: the store has no label index, and a query
    would read every workflow of the namespace on every fire. The periodic sweep adds any running
    workflow the list lacks (e.g. one created just before a crash)."""
    namespace = cron["metadata"].get("namespace", "")
    out = []
    for ref in (cron.get("status") or {}).get("active") or []:
        try:
            wf = store.get("Workflow", ref.get("namespace") or namespace, ref["name"])
        except (NotFound, KeyError):
            continue
        if ref.get("uid") and wf["metadata"].get("uid") != ref["uid"]:
            continue  # same name, another object: ours is gone
        if not is_finished(wf):
            out.append(wf)
    return out


@dataclass
class Decision:
    proceed: bool
    terminate: list[str] = field(default_factory=list)
    reason: str = ""


def decide(policy: str, running: list[dict]) -> Decision:
    names = [w["metadata"]["name"] for w in running]
    if not names or policy == "Allow":
        return Decision(True)
    if policy == "Forbid":
        return Decision(False, reason=f"concurrencyPolicy Forbid: {', '.join(names)} still running")
    if policy == "Replace":
        return Decision(True, terminate=names, reason=f"concurrencyPolicy Replace: stopping {', '.join(names)}")
    raise ValueError(f"unknown concurrencyPolicy {policy!r}")


def terminate(store: ObjectStore, namespace: str, names: list[str]) -> list[str]:
    """Ask the runner to stop these workflows (Argo's `argo terminate`); the ones asked."""
    done = []
    for name in names:
        try:
            store.patch("Workflow", namespace, name, {"spec": {"shutdown": "Terminate"}}, return_object=False)
        except NotFound:
            continue
        done.append(name)
    return done

"""Helpers shared by the tests/test_schedule_*.py files: a settable clock and CronWorkflow objects."""

from __future__ import annotations

from datetime import datetime, timezone

from reconciler.schedule import CRON_LABEL
from reconciler.store.base import ObjectStore

UTC = timezone.utc


def ts(*args: int) -> float:
    """Unix seconds of a UTC date: ts(2024, 1, 1, 10, 0)."""
    return datetime(*args, tzinfo=UTC).timestamp()


class FakeClock:
    """time.time stand-in that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def set(self, value: float) -> None:
        assert value >= self.now, "a clock never runs backwards"
        self.now = float(value)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cron_obj(name: str = "tick", schedule: str | list[str] = "* * * * *", namespace: str = "default",
             **spec_fields) -> dict:
    spec: dict = {"schedules": schedule} if isinstance(schedule, list) else {"schedule": schedule}
    spec.setdefault("timezone", "UTC")
    spec.update(spec_fields)
    spec.setdefault("workflowSpec", {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "alpine", "command": ["echo", "hi"]}}],
    })
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def git_update(store: ObjectStore, name: str, namespace: str = "default", **spec_changes) -> dict:
    """What the GitOps sync does on a commit: replace the spec, keep the status (like `apply`)."""
    current = store.get("CronWorkflow", namespace, name)
    spec = dict(current["spec"])
    for key, value in spec_changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    current["spec"] = spec
    return store.update(current)


def cron_workflows(store: ObjectStore, name: str = "tick", namespace: str = "default") -> list[dict]:
    items = store.list("Workflow", namespace, labels={CRON_LABEL: name})
    return sorted(items, key=lambda w: w["metadata"]["name"])


def names(store: ObjectStore, name: str = "tick", namespace: str = "default") -> list[str]:
    return [w["metadata"]["name"] for w in cron_workflows(store, name, namespace)]


def set_phase(store: ObjectStore, wf_name: str, phase: str, finished_at: float | None = None,
              namespace: str = "default") -> None:
    """Play the runner: move a workflow to `phase`."""
    status: dict = {"phase": phase}
    if finished_at is not None:
        status["finishedAtUnix"] = finished_at
        status["finishedAt"] = datetime.fromtimestamp(finished_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.patch("Workflow", namespace, wf_name, {"status": status})

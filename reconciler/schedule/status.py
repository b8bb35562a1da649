"""Writing a CronWorkflow's status: compare-and-swap with retries, and Argo-style conditions.

The scheduler is not the only writer of a CronWorkflow: the git sync replaces its spec, the CLI
patches spec.suspend. Status writes therefore read, change and write back with the resourceVersion
they read, and start over on Conflict, so neither side loses the other's change.
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.store.base import ObjectStore
from reconciler.store.errors import Conflict, NotFound

KIND = "CronWorkflow"
SPEC_ERROR = "SpecError"
SUBMISSION_ERROR = "SubmissionError"
_ATTEMPTS = 8


def update_status(
    store: ObjectStore,
    namespace: str,
    name: str,
    change: Callable[[dict], dict | None],
    *,
    current: dict | None = None,
) -> dict | None:
    """Apply `change(cron) -> status merge patch | None` until it sticks.

    `current` saves the first read when the caller already has the object. Returns the patched
    object's metadata, None if there was nothing to write or the CronWorkflow is gone."""
    for _ in range(_ATTEMPTS):
        if current is None:
            try:
                current = store.get(KIND, namespace, name)
            except NotFound:
                return None
        patch = change(current)
        if not patch:
            return None
        rv = current["metadata"].get("resourceVersion")
        try:
            return store.patch(KIND, namespace, name, {"status": patch}, resource_version=rv, return_object=False)
        except Conflict:
            current = None
        except NotFound:
            return None
    raise Conflict(f"{KIND} {namespace}/{name}: status kept changing under {_ATTEMPTS} attempts")


def with_condition(conditions: list[dict] | None, kind: str, message: str, now: str) -> list[dict]:
    """`conditions` with one condition of `kind` set to `message` (others kept, order kept)."""
    out = [c for c in conditions or [] if c.get("type") != kind]
    old = next((c for c in conditions or [] if c.get("type") == kind), None)
    since = old.get("lastTransitionTime", now) if old and old.get("message") == message else now
    out.append({"type": kind, "status": "True", "message": message, "lastTransitionTime": since})
    return out


def without_condition(conditions: list[dict] | None, kind: str) -> list[dict]:
    return [c for c in conditions or [] if c.get("type") != kind]


def has_condition(conditions: list[dict] | None, kind: str, message: str | None = None) -> bool:
    return any(c.get("type") == kind and (message is None or c.get("message") == message) for c in conditions or [])

"""Who drives a workflow: a lease kept in the workflow's own annotations.

A runner takes a workflow by writing its identity and the renewal time with a compare-and-swap on
the workflow's resourceVersion, and renews it while it drives the workflow. Putting the lease in
the object itself (rather than in a separate Lease object) lets `submit --wait` create a workflow
already claimed, in the same write, so a daemon never picks it up in between; and every status
write the runner makes is conditional on the version it last wrote, so a runner that lost its
lease finds out at its next write instead of overwriting the new owner's work.

An identity is `host:pid:start-time`. A holder on this host whose process is gone has released
its lease, whatever the renewal time says: a daemon restarted after SIGKILL takes its workflows
back at once instead of waiting for the lease to expire.
"""

from __future__ import annotations

import os
import socket

from reconciler.executors.local import process_start_time

HOLDER = "reconciler.io/lease-holder"
RENEWED = "reconciler.io/lease-renewed"
DURATION = "reconciler.io/lease-seconds"
DEFAULT_SECONDS = 15.0


def my_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{process_start_time(os.getpid())}"


def holder_is_dead(identity: str) -> bool:
    """True only when the holder is known to be gone: a process of this host that has exited."""
    parts = identity.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    return process_start_time(int(parts[1])) != parts[2]


def lease_of(obj: dict) -> tuple[str, float, float]:
    """(holder, renewed-at, seconds) from an object's annotations; holder "" when unclaimed."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        renewed = float(ann.get(RENEWED, 0) or 0)
        seconds = float(ann.get(DURATION, DEFAULT_SECONDS) or DEFAULT_SECONDS)
    except ValueError:
        renewed, seconds = 0.0, DEFAULT_SECONDS
    return ann.get(HOLDER, ""), renewed, seconds


def claimable(obj: dict, identity: str, now: float) -> bool:
    holder, renewed, seconds = lease_of(obj)
    return not holder or holder == identity or renewed + seconds < now or holder_is_dead(holder)


def held_by_other(obj: dict, identity: str, now: float) -> bool:
    return not claimable(obj, identity, now)


def lease_annotations(identity: str, now: float, seconds: float = DEFAULT_SECONDS) -> dict:
    return {HOLDER: identity, RENEWED: f"{now:.3f}", DURATION: f"{seconds:g}"}


def released_annotations() -> dict:
    return {HOLDER: None, RENEWED: None, DURATION: None}

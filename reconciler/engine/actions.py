"""What the engine asks the outside world to do, and what the outside world tells it back.

The operator is pure: it turns events into status changes plus these actions. The runner persists
the status first and only then carries the actions out, so a crash never loses a recorded result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunPod:
    node_id: str
    pod_name: str
    template: dict            # fully substituted container/script template
    input_artifacts: list[dict] = field(default_factory=list)   # {name, path, raw|key...}
    timeout: float | None = None
    volumes: dict = field(default_factory=dict)   # volume name -> spec (for mountPath lookup)
    archive_logs: bool = False  # save the log as the artifact main-logs (Argo's IsArchiveLogs)


@dataclass
class KillPod:
    node_id: str
    reason: str


@dataclass
class SetTimer:
    node_id: str
    at: float
    purpose: str              # "retry" | "suspend" | "deadline"


@dataclass
class ReleaseLocks:
    """A node that held mutexes or semaphores is done; free them once its status is saved."""

    node_id: str


@dataclass
class SaveMemo:
    """Record a succeeded node's outputs in its memoization cache (a ConfigMap, as in Argo)."""

    cache: str
    key: str
    node_id: str
    outputs: dict


@dataclass
class PodFinished:
    node_id: str
    phase: str
    message: str = ""
    exit_code: int | None = None
    stdout: str = ""
    parameters: dict = field(default_factory=dict)     # declared output name -> value or None
    artifacts: list[dict] = field(default_factory=list)   # saved output artifacts (with location)
    artifact_errors: list[str] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    isolation: str = ""  # the executor's sandbox, recorded as the node's `isolation`

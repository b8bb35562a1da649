"""The executor contract the engine codes against.

An executor runs one "pod" (a container or script step) per :class:`PodJob` and reports a
:class:`PodResult` when it ends. Executors are thin: the engine has already substituted every
parameter, materialized input artifacts on the host and chosen a fresh ``scratch_dir`` per
attempt; the executor only places files, runs the process, and collects the declared outputs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

SUCCEEDED = "Succeeded"
FAILED = "Failed"
ERROR = "Error"

# Argo's text for a pod killed by activeDeadlineSeconds; kept verbatim so `get` output matches.
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass
class InputFile:
    """An input artifact to place in the step's view before it starts."""

    path: str  # absolute path inside the step's view, e.g. /tmp/message
    source: Path  # host file or directory, already materialized by the artifact repository


@dataclass
class OutputArtifactSpec:
    name: str
    path: str
    optional: bool = False


@dataclass
class Volume:
    host_dir: Path
    mount_path: str
    read_only: bool = False


@dataclass
class SidecarSpec:
    name: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


# What an executor knows a running job by. Node ids are unique within one workflow only: the same
# workflow name in two namespaces gives the same ids, so the namespace is part of the key.
JobKey = tuple[str, str]  # (namespace, node id)


@dataclass
class PodJob:
    node_id: str
    pod_name: str
    workflow_name: str
    namespace: str
    image: str  # recorded only, never pulled
    command: list[str]
    args: list[str]
    # Everything after here is keyword-only so that scratch_dir can stay required.
    _: KW_ONLY
    # Script templates: the executor writes this to a file F (mode 0755) and runs command + [F].
    script_source: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    input_files: list[InputFile] = field(default_factory=list)
    output_parameter_paths: dict[str, str] = field(default_factory=dict)
    output_artifacts: list[OutputArtifactSpec] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    sidecars: list[SidecarSpec] = field(default_factory=list)
    timeout: float | None = None  # seconds
    scratch_dir: Path

    @property
    def key(self) -> JobKey:
        return self.namespace, self.node_id


@dataclass
class PodResult:
    node_id: str
    phase: str  # SUCCEEDED | FAILED | ERROR
    exit_code: int | None
    message: str  # "" on success, "Error (exit code N)" on non-zero exit, else the cause
    stdout: str
    log_path: Path  # combined stdout+stderr
    output_parameters: dict[str, str | None]
    output_artifacts: dict[str, Path | None]
    started_at: float
    finished_at: float
    _: KW_ONLY
    namespace: str  # with node_id, the job's key: a result is matched to its job by both

    @property
    def key(self) -> JobKey:
        return self.namespace, self.node_id


def exit_message(exit_code: int) -> str:
    """Argo's node message for a main container that exited non-zero."""
    return f"Error (exit code {exit_code})"


def error_result(job: PodJob, phase: str, message: str, started: float | None = None) -> PodResult:
    """The result of a pod that never ran: no exit code, every output missing.

    The message is also written as the node's log so `reconciler logs` shows why.
    """
    now = time.time()
    log_path = job.scratch_dir / "main.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(message + "\n")
    except OSError:
        pass
    return PodResult(job.node_id, phase, None, message, "", log_path, dict.fromkeys(job.output_parameter_paths),
                     {a.name: None for a in job.output_artifacts}, started or now, now, namespace=job.namespace)


class Executor(ABC):
    """Runs pods. ``start`` never blocks on the step; results arrive through ``poll``."""

    name: str = "base"
    isolation: str = "none"  # "bwrap" | "tmpdir" | "none", reported by lint/get

    @abstractmethod
    def start(self, job: PodJob) -> None:
        """Begin running ``job``. Problems starting it are reported as a result, not raised."""

    @abstractmethod
    def kill(self, key: JobKey, reason: str = "") -> None:
        """Kill the job's whole process group and sidecars; its result says Failed + reason."""

    @abstractmethod
    def poll(self, timeout: float) -> list[PodResult]:
        """Wait up to ``timeout`` s for at least one result; return every result not yet returned."""

    @abstractmethod
    def running(self) -> set[JobKey]:
        """Keys of the jobs started and not yet returned by ``poll``."""

    @abstractmethod
    def close(self) -> None:
        """Kill everything still running and release resources."""

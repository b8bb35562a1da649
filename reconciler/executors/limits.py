"""What a local step may use: processes, memory, CPU time and disk, and how each is enforced.

Defaults come from the daemon (``up --step-pids/--step-memory/--step-cpu-seconds/--step-storage``);
a template's ``resources.limits.memory`` and ``resources.limits.ephemeral-storage`` override them for
that step, as Kubernetes applies them to a container. Enforcement, strongest first:

- processes: a cgroup's ``pids.max`` when the daemon may create cgroups, else ``RLIMIT_NPROC``
  (counted per uid, so every step running as the same uid shares it);
- memory: a cgroup's memory limit (the kernel's OOM killer ends the step), else ``RLIMIT_AS``;
- CPU time: ``RLIMIT_CPU`` per process (SIGXCPU at the limit, SIGKILL 5 s later);
- disk: ``RLIMIT_FSIZE`` per file (SIGXFSZ) plus the supervisor's total of what the step wrote
  (its overlay upper layer and private /tmp), checked every second.
"""

from __future__ import annotations

import os
import re
import resource
import signal
from dataclasses import dataclass, replace
from pathlib import Path

GiB = 1 << 30
DEFAULT_PIDS = 1024
DEFAULT_CPU_SECONDS = 86400  # a day of CPU per process: stops a runaway loop, never a real job
DEFAULT_STORAGE = 10 * GiB
_CPU_GRACE = 5  # seconds between SIGXCPU and SIGKILL

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
_FACTORS = {None: 1, "m": 0.001, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}


class LimitError(ValueError):
    """A limit that cannot be understood; the message names the field."""


def parse_quantity(value: str | int | float, field: str) -> int:
    """A Kubernetes quantity (``512Mi``, ``1G``, ``2e9`` is not one) in bytes, rounded up."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise LimitError(f"{field}: {text!r} is not a Kubernetes quantity (e.g. 512Mi, 2Gi)")
    amount = float(m.group(1)) * _FACTORS[m.group(2)]
    if amount < 1:
        raise LimitError(f"{field}: {text!r} is less than one byte")
    return int(-(-amount // 1))


def format_bytes(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class StepLimits:
    """None means unlimited."""

    pids: int | None = DEFAULT_PIDS
    memory: int | None = None  # bytes
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS
    storage: int | None = DEFAULT_STORAGE  # bytes written in total, and the largest file

    def for_template(self, limits: dict) -> StepLimits:
        """These defaults with a template's ``resources.limits`` applied."""
        changes: dict[str, int] = {}
        if "memory" in limits:
            changes["memory"] = parse_quantity(limits["memory"], "resources.limits.memory")
        if "ephemeral-storage" in limits:
            changes["storage"] = parse_quantity(limits["ephemeral-storage"], "resources.limits.ephemeral-storage")
        return replace(self, **changes) if changes else self

    def rlimits(self, *, pids_by_cgroup: bool, memory_by_cgroup: bool) -> list[tuple[int, tuple[int, int]]]:
        """The rlimits to set on the sandbox's first process (its children inherit them)."""
        out = []
        if self.pids is not None and not pids_by_cgroup:
            out.append((resource.RLIMIT_NPROC, (self.pids, self.pids)))
        if self.memory is not None and not memory_by_cgroup:
            out.append((resource.RLIMIT_AS, (self.memory, self.memory)))
        if self.cpu_seconds is not None:
            out.append((resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + _CPU_GRACE)))
        if self.storage is not None:
            out.append((resource.RLIMIT_FSIZE, (self.storage, self.storage)))
        return out

    def exit_reason(self, exit_code: int | None) -> str | None:
        """The limit a step's exit code says it hit (a signal the kernel sends for an rlimit)."""
        if exit_code == 128 + signal.SIGXFSZ and self.storage is not None:
            return f"a file reached the step's size limit of {format_bytes(self.storage)} (SIGXFSZ)"
        if exit_code == 128 + signal.SIGXCPU and self.cpu_seconds is not None:
            return f"a process used its CPU time limit of {self.cpu_seconds}s (SIGXCPU)"
        return None

    def storage_message(self, used: int) -> str:
        assert self.storage is not None
        return (f"ephemeral storage limit exceeded: the step wrote {format_bytes(used)} "
                f"(limit {format_bytes(self.storage)}); killed")


_PRLIMIT_NAMES = {resource.RLIMIT_NPROC: "nproc", resource.RLIMIT_AS: "as", resource.RLIMIT_CPU: "cpu",
                  resource.RLIMIT_FSIZE: "fsize"}


def prlimit_argv(prlimit: str, rlimits: list[tuple[int, tuple[int, int]]]) -> list[str]:
    """A command-line prefix that sets ``rlimits`` and execs the rest (util-linux ``prlimit``)."""
    return [prlimit, *(f"--{_PRLIMIT_NAMES[w]}={soft}:{hard}" for w, (soft, hard) in rlimits), "--"]


def apply_rlimits(rlimits: list[tuple[int, tuple[int, int]]]) -> None:
    """Set rlimits on the calling process; run in the child between fork and exec (without prlimit)."""
    for which, value in rlimits:
        resource.setrlimit(which, value)


def disk_usage(roots: list[Path], stop_at: int) -> int:
    """Bytes allocated under ``roots`` (not following symlinks); stops counting past ``stop_at``."""
    total = 0
    todo = [str(r) for r in roots]
    while todo:
        try:
            it = os.scandir(todo.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
                if total > stop_at:
                    return total
    return total

"""One cgroup per local step, for a process-count and a memory limit that are the step's own.

``RLIMIT_NPROC`` counts processes per uid, so steps that share a uid share the count; a cgroup's
``pids.max`` is per step. Both cgroup versions are handled: v2 (one hierarchy, the controllers
enabled in a ``reconciler-steps`` child of the daemon's own cgroup) and v1 (the ``pids`` and
``memory`` hierarchies). Where neither can be written (an unprivileged daemon, a read-only
``/sys/fs/cgroup`` in a container) ``detect`` says why and the limits fall back to rlimits.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
from pathlib import Path

log = logging.getLogger(__name__)

PARENT = "reconciler-steps"
_seq = itertools.count()


def _mounts() -> tuple[Path | None, dict[str, Path]]:
    """The cgroup v2 mount, and each v1 controller's mount, each joined with our own cgroup path."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    v2, v1 = None, {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            root, point, fstype, opts = fields[3], fields[4], fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup2" and "" in own:
                v2 = _join(point, root, own[""])
            elif fstype == "cgroup":
                for c in ("pids", "memory"):
                    if c in opts.split(",") and c in own:
                        v1[c] = _join(point, root, own[c])
    return v2, v1


def _join(point: str, root: str, path: str) -> Path:
    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
    return Path(point, "" if rel == "." else rel)


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class Cgroups:
    """Where step cgroups are made: ``dirs`` maps controller ("pids", "memory") to a parent dir."""

    def __init__(self, dirs: dict[str, Path], v2: bool) -> None:
        self.dirs = dirs
        self.v2 = v2

    @classmethod
    def detect(cls) -> tuple[Cgroups | None, str]:
        """A usable place for step cgroups, or (None, why not)."""
        try:
            v2, v1 = _mounts()
        except (OSError, ValueError) as exc:
            return None, f"cannot read the process's cgroups: {exc}"
        problems = []
        if v2 is not None:
            try:
                have = set((v2 / "cgroup.controllers").read_text().split())
                if {"pids", "memory"} <= have:
                    parent = v2 / PARENT
                    parent.mkdir(exist_ok=True)
                    if not {"pids", "memory"} <= set((parent / "cgroup.controllers").read_text().split()):
                        _write(v2 / "cgroup.subtree_control", "+pids +memory")
                    _write(parent / "cgroup.subtree_control", "+pids +memory")
                    return cls._cleaned({"pids": parent, "memory": parent}, True), ""
                problems.append(f"cgroup v2 {v2} lacks the pids and memory controllers")
            except OSError as exc:
                problems.append(f"cgroup v2 {v2}: {exc.strerror or exc}")
        if "pids" in v1:
            dirs = {}
            try:
                for c, base in v1.items():
                    (base / PARENT).mkdir(exist_ok=True)
                    dirs[c] = base / PARENT
                return cls._cleaned(dirs, False), ""
            except OSError as exc:
                problems.append(f"cgroup v1 {exc.filename}: {exc.strerror or exc}")
        return None, "; ".join(problems) or "no cgroup hierarchy with the pids controller is mounted"

    @classmethod
    def _cleaned(cls, dirs: dict[str, Path], v2: bool) -> Cgroups:
        for d in set(dirs.values()):  # left by a daemon that died: empty ones go, busy ones stay
            for child in d.iterdir():
                owner = child.name.partition("-")[0]
                if child.is_dir() and not (owner.isdigit() and os.path.exists(f"/proc/{owner}")):
                    try:
                        child.rmdir()
                    except OSError:
                        pass
        return cls(dirs, v2)

    def create(self, pids: int | None, memory: int | None) -> StepCgroup:
        name = f"{os.getpid()}-{next(_seq)}"
        made: list[Path] = []
        # Moving a process into a v1 hierarchy costs milliseconds (the kernel waits for RCU), so a
        # step joins the memory hierarchy only when it has a memory limit.
        wanted = {c: d for c, d in self.dirs.items() if c == "pids" or memory is not None}
        try:
            for d in dict.fromkeys(wanted.values()):
                (d / name).mkdir()
                made.append(d / name)
            memory_dir = wanted["memory"] / name if "memory" in wanted else None
            group = StepCgroup(made, self.dirs["pids"] / name, memory_dir, self.v2)
            if pids is not None:
                _write(group.pids_dir / "pids.max", str(pids))
            if memory is not None and group.memory_dir is not None:
                if self.v2:
                    _write(group.memory_dir / "memory.max", str(memory))
                    try:  # else a step at its limit swaps instead of being stopped
                        _write(group.memory_dir / "memory.swap.max", "0")
                    except OSError:
                        pass
                else:
                    _write(group.memory_dir / "memory.limit_in_bytes", str(memory))
            return group
        except OSError:
            for d in made:
                try:
                    d.rmdir()
                except OSError:
                    pass
            raise


class StepCgroup:
    def __init__(self, dirs: list[Path], pids_dir: Path, memory_dir: Path | None, v2: bool) -> None:
        self.dirs = dirs
        self.pids_dir = pids_dir
        self.memory_dir = memory_dir
        self.v2 = v2

    def join_argv(self) -> list[str]:
        """A prefix for the step's command line that moves the process into this cgroup, then execs
        the rest. The move happens in the child, so its cost (in v1 the kernel waits for an RCU
        grace period) never stalls the executor's supervisor thread."""
        writes = " && ".join(f"echo 0 > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["/bin/sh", "-c", f'{writes} && exec "$0" "$@"']

    def pids_refused(self) -> int:
        """How many forks the pids limit has refused."""
        return _counter(self.pids_dir / "pids.events", "max")

    def oom_kills(self) -> int:
        if self.memory_dir is None:
            return 0
        return _counter(self.memory_dir / ("memory.events" if self.v2 else "memory.oom_control"), "oom_kill")

    def remove(self) -> None:
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError as exc:  # still busy: the next daemon start removes it
                log.debug("cannot remove cgroup %s: %s", d, exc)

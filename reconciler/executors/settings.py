"""How local steps are isolated, as configured on the daemon (``up`` flags, config file, environment).

The tmpdir fallback shares the daemon's trust, so nothing picks it silently: ``isolation`` is
``bwrap`` unless the operator says ``tmpdir``. When the daemon runs as root, steps run as
``uid``/``gid`` (default 10001: a uid no account on a usual host has, so a step owns no host file,
shares no rlimit with a host service and cannot be confused with ``nobody``, whose uid NFS and
some daemons use). ``uid 0`` keeps steps as root (not recommended).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .limits import StepLimits
from .sandbox import PRIVATE_DIRS, SandboxPolicy

DEFAULT_STEP_UID = 10001
ISOLATIONS = ("bwrap", "tmpdir")


@dataclass(frozen=True)
class StepSettings:
    isolation: str = "bwrap"  # "bwrap" | "tmpdir" ("auto": bwrap if it runs, for tests only)
    hide: tuple[str, ...] = ()  # host paths the step must not see (see daemon_paths)
    uid: int = DEFAULT_STEP_UID  # used only when the daemon is root
    gid: int | None = None  # None: same as uid
    limits: StepLimits = field(default_factory=StepLimits)
    network: bool = True
    legacy: bool = False  # the pre-issue-10 sandbox (benchmarks/sandbox.py only)


def daemon_paths(home: Path, environ: Mapping[str, str] | None = None,
                 extra: Iterable[str | os.PathLike] = ()) -> tuple[str, ...]:
    """What a step must not see: the data directory, every ``RECONCILER_*_FILE`` (tokens, webhook
    secret, config), the daemon user's home (git and ssh credentials live there) and ``extra``."""
    environ = os.environ if environ is None else environ
    paths = [Path(home)]
    paths += [Path(v) for k, v in environ.items() if k.startswith("RECONCILER_") and k.endswith("_FILE") and v]
    if environ.get("RECONCILER_CONFIG"):
        paths.append(Path(environ["RECONCILER_CONFIG"]))
    user_home = environ.get("HOME") or os.path.expanduser("~")
    if user_home and os.path.realpath(user_home) != "/":
        paths.append(Path(user_home))
    paths += [Path(p) for p in extra]
    out: dict[str, None] = {}
    for p in paths:
        real = os.path.realpath(p.expanduser())
        if real != "/" and os.path.lexists(real):
            out[real] = None
    return tuple(out)


def interpreter_dirs() -> tuple[str, ...]:
    """The directories the ``python`` shim needs: its prefix (and a venv's base)."""
    dirs = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
            os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    return tuple(sorted(d for d in dirs if d != "/"))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def build_policy(settings: StepSettings, *, bwrap: bool, cgroups: bool) -> SandboxPolicy:
    """The bwrap sandbox these settings describe, on this host (who we run as, what tools exist)."""
    private = tuple(PRIVATE_DIRS)
    hidden = [p for p in settings.hide if not any(_under(p, d) for d in private)]  # gone with /tmp already
    dirs = tuple(p for p in hidden if os.path.isdir(p))
    # The python shim's interpreter may live under a hidden dir (pyenv in the daemon's home): bind
    # it back read-only, through parents made 0755 (bwrap would make them 0700, root's).
    rebind, parents = [], {}
    for d in interpreter_dirs():
        root = next((h for h in (*dirs, *private) if _under(d, h) and d != h), None)
        if root is not None:
            rebind.append(d)
            chain, p = [], os.path.dirname(d)
            while p != root and _under(p, root):
                chain.append(p)
                p = os.path.dirname(p)
            parents.update(dict.fromkeys(reversed(chain)))
    uid = gid = None
    setpriv = "setpriv"
    if os.geteuid() == 0 and settings.uid != 0:
        uid, gid = settings.uid, settings.gid if settings.gid is not None else settings.uid
        found = shutil.which("setpriv")
        if bwrap and found is None:
            raise RuntimeError(f"running steps as uid {uid} needs setpriv (util-linux) on PATH; "
                               "install it, or run steps as root with --step-uid 0")
        setpriv = found or setpriv
    nproc = None
    if not cgroups and settings.limits.pids is not None and os.geteuid() != 0 and shutil.which("prlimit"):
        nproc = settings.limits.pids  # set inside the step's user namespace: counted per step
    return SandboxPolicy(hidden_dirs=dirs, hidden_files=tuple(p for p in hidden if p not in dirs),
                         rebind=tuple(rebind), rebind_parents=tuple(parents), uid=uid, gid=gid,
                         network=settings.network, setpriv=setpriv, prlimit_nproc=nproc)

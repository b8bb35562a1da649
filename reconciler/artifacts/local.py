"""Artifacts kept as plain files under a directory: ``root/<key>``.

Keys look like ``<namespace>/<workflow>/<node-id>/<artifact-name>.tgz``. A key is a relative
POSIX path; one that is absolute, holds ``..``/``.``/empty parts, or resolves outside ``root``
through a symlink is refused, because keys are built from user-chosen names.

Archives follow Argo: "tar" stores a tar.gz whose single top entry is the source's base name,
and loading unpacks it and moves that single entry to ``dest`` (so a tarred file comes back as a
file); "none" stores the file or directory as it is.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
from pathlib import Path

from reconciler import paths

from .base import ARCHIVES, ArtifactRepository

_DEFAULT_LEVEL = 6  # Go's gzip.DefaultCompression, what Argo uses when compressionLevel is unset


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif os.path.lexists(p):
        p.unlink()


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest, follow_symlinks=False)


def _size(p: Path) -> int:
    if not p.is_dir() or p.is_symlink():
        return os.lstat(p).st_size
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(p) for f in files)


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        if hasattr(tarfile, "tar_filter"):
            # "tar" (not "data") keeps absolute symlinks such as /etc/localtime, as Argo's untar
            # does, while still refusing members that land outside `into`.
            tf.extractall(into, filter="tar")
            return
        for m in tf.getmembers():  # Pythons without extraction filters (< 3.10.12 / 3.11.4)
            target = os.path.realpath(os.path.join(into, m.name))
            if os.path.commonpath([target, os.path.realpath(into)]) != os.path.realpath(into):
                raise ValueError(f"tar member {m.name!r} would extract outside the destination")
        tf.extractall(into)  # members checked above


class LocalArtifactRepository(ArtifactRepository):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The host path for ``key``; ValueError if the key would escape ``root`` (paths.under)."""
        if not isinstance(key, str) or not key or "\\" in key:
            raise ValueError(f"invalid artifact key {key!r}")
        try:
            # The entry itself may be a stored symlink, which is never followed: only its folder counts.
            return paths.under(self.root, *key.split("/"), follow_last=False)
        except paths.PathEscape as exc:
            raise ValueError(f"invalid artifact key {key!r}: {exc}") from None

    def save(self, source: Path, key: str, archive: str = "tar", compression_level: int | None = None) -> dict:
        if archive not in ARCHIVES:
            raise ValueError(f"archive must be one of {ARCHIVES}, not {archive!r}")
        level = _DEFAULT_LEVEL if compression_level is None or compression_level < 0 else compression_level
        if level > 9:
            raise ValueError(f"compression level must be 0..9, not {compression_level}")
        name = Path(source).name or "artifact"
        source = Path(os.path.realpath(source))  # store the content a top-level symlink points to
        if not source.exists():
            raise FileNotFoundError(source)
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")  # same dir: rename stays atomic
        try:
            if archive == "none":
                _copy(source, tmp)
            else:
                with tarfile.open(tmp, "w:gz", compresslevel=level) as tf:
                    tf.add(source, arcname=name)
            _remove(dest)
            os.replace(tmp, dest)
        except BaseException:
            _remove(tmp)
            raise
        return {"key": key, "archive": archive, "size": _size(dest)}

    def save_bytes(self, data: bytes, key: str) -> dict:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return {"key": key, "archive": "none", "size": len(data)}

    def load(self, location: dict, dest: Path) -> Path:
        key = location["key"]
        src = self.path(key)
        if not os.path.lexists(src):
            raise FileNotFoundError(f"artifact {key!r} not found in {self.root}")
        archive = location.get("archive") or ("tar" if key.endswith((".tgz", ".tar.gz")) else "none")
        if archive not in ARCHIVES:
            raise ValueError(f"unknown archive {archive!r} for artifact {key!r}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove(dest)
        if archive == "none":
            _copy(src, dest)
            return dest
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmpdir")
        tmp.mkdir()
        try:
            _extract(src, tmp)
            entries = os.listdir(tmp)
            if len(entries) == 1:  # Argo: a tar of one file or directory unpacks to that entry
                os.replace(tmp / entries[0], dest)
                tmp.rmdir()
            else:
                os.replace(tmp, dest)
        except BaseException:
            _remove(tmp)
            raise
        return dest

    def delete_prefix(self, prefix: str) -> None:
        # Refuse "" explicitly: it would mean the whole repository.
        p = self.path(prefix.strip("/")) if prefix.strip("/") else None
        if p is None:
            raise ValueError("refusing to delete the whole artifact repository (empty prefix)")
        _remove(p)

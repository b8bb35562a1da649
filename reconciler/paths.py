"""The one way a filesystem path is built from input (a namespace, a workflow or node name, an
artifact key): `under(root, *parts)`.

It refuses what would leave `root` ('..', an absolute part, a NUL, a symlinked folder leading
outside) and maps a component longer than the filesystem allows (255 bytes on ext4, xfs, btrfs,
tmpfs) to a short one: a readable prefix, '+', and a hash of the whole component, so the same
input always lands in the same folder and two inputs never share one. '+' is in no Kubernetes
name, node id or artifact name, so a hashed component never equals a real one.

`RECONCILER_MAX_NAME_BYTES` lowers the limit (e.g. for eCryptfs, 143 bytes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FILESYSTEM_NAME_MAX = 255
_MIN_NAME_BYTES = 64
_READABLE_BYTES = 48  # of the original kept in front of the hash
_HASH_CHARS = 32      # 128 bits of sha256
_SUFFIX_MAX = 16      # an extension (".log", ".tgz") kept after the hash


class PathEscape(ValueError):
    """A path built from input would leave its root or cannot be a file name."""


def max_name_bytes() -> int:
    """The longest component written, in bytes: 255, or less if RECONCILER_MAX_NAME_BYTES says so."""
    raw = os.environ.get("RECONCILER_MAX_NAME_BYTES", "")
    try:
        wanted = int(raw) if raw else FILESYSTEM_NAME_MAX
    except ValueError:
        raise PathEscape(f"RECONCILER_MAX_NAME_BYTES must be a number of bytes, not {raw!r}") from None
    return max(_MIN_NAME_BYTES, min(wanted, FILESYSTEM_NAME_MAX))


def component(name: str, *, reserve: int = 0, limit: int | None = None) -> str:
    """`name` as one path component of at most `limit - reserve` bytes (room for a suffix the
    caller adds); long names become `<prefix>+<hash>[.ext]`, stable for the same name."""
    _check_component(name)
    limit = (limit or max_name_bytes()) - reserve
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:_HASH_CHARS]
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext.encode()) < _SUFFIX_MAX and "+" not in ext else ""
    keep = max(0, min(_READABLE_BYTES, limit - len(digest) - 1 - len(suffix.encode())))
    prefix = raw[:keep].decode("utf-8", "ignore")  # never half a character
    return f"{prefix}+{digest}{suffix}"


def under(root: Path | str, *parts: str, limit: int | None = None, follow_last: bool = True) -> Path:
    """`root/part/...`, each part one component (a name never becomes two folders), mapped by
    component(). PathEscape if a part is empty, '.', '..', holds a '/' or a NUL, or if an existing
    folder on the way is a symlink leading outside `root`. With follow_last=False the last
    component itself may be a symlink (a stored one, never followed by the caller)."""
    root = Path(root)
    pieces = [component(part, limit=limit) for part in parts]
    if not pieces:
        return root
    path = root.joinpath(*pieces)
    real_root = os.path.realpath(root)
    checked = path if follow_last else path.parent
    real = os.path.realpath(checked)
    if os.path.commonpath([real, real_root]) != real_root:
        raise PathEscape(f"{'/'.join(parts)!r} leads outside {root} (through a symlink)")
    return path


def _check_component(name: str) -> None:
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise PathEscape(f"{name!r} cannot be a file name (empty, '.', '..', '/' or NUL)")

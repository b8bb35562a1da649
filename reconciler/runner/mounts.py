"""Where a volumeMount points on the host: the workflow's directory for the volume, or a
sub-directory of it for `subPath` / `subPathExpr` (Kubernetes' meaning: `$(VAR)` in subPathExpr is
expanded from the container's env, `$$` is a literal `$`)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class MountError(ValueError):
    pass


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion; an unknown variable stays as written, as Kubernetes leaves it."""
    return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def host_path(volume_dir: Path, mount: dict, env: dict[str, str]) -> Path:
    """The host directory ``mount`` binds; MountError for a sub-path that is absolute or climbs out."""
    sub = mount.get("subPath")
    if mount.get("subPathExpr"):
        sub = expand(str(mount["subPathExpr"]), env)
    if not sub:
        return volume_dir
    rel = PurePosixPath(str(sub))
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or "\0" in str(sub):
        raise MountError(f"volumeMount {mount.get('name')}: subPath {sub!r} must be a relative path inside the volume")
    path = volume_dir.joinpath(*rel.parts)
    path.mkdir(parents=True, exist_ok=True)
    # A symlink planted by an earlier step must not lead the mount outside the volume.
    if not path.resolve().is_relative_to(volume_dir.resolve()):
        raise MountError(f"volumeMount {mount.get('name')}: subPath {sub!r} leads outside the volume")
    return path

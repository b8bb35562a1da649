"""Where the reconciler keeps its data, and how the pieces are opened from there."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_NAMESPACE = "default"


def home_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--home`, else `$RECONCILER_HOME`, else `~/.reconciler`."""
    raw = explicit or os.environ.get("RECONCILER_HOME") or Path.home() / ".reconciler"
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_path(home: Path) -> Path:
    return home / "store.db"


def artifacts_path(home: Path) -> Path:
    return home / "artifacts"

"""Where the reconciler keeps its data, and how the pieces are opened from there."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_NAMESPACE = "default"
DAEMON_UMASK = 0o077  # what `reconciler up` creates is its owner's only
# Entries of the data directory kept owner-only; steps' scratch (runs/) and volumes (volumes/) are the
# executor's, which gives a step what it needs. Everything lies below the 0700 data directory anyway.
PRIVATE_ENTRIES = ("store.db", "store.db-wal", "store.db-shm", "store.db-journal", "logs", "artifacts", "sources")


def home_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--home`, else `$RECONCILER_HOME`, else `~/.reconciler` (created 0700)."""
    raw = explicit or os.environ.get("RECONCILER_HOME") or Path.home() / ".reconciler"
    path = Path(raw).expanduser().resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def tighten_home(home: Path) -> list[str]:
    """Take group and other permissions off the data directory and its private entries (made by an
    older version, or by hand); returns what was changed ("PATH 0755 -> 0700") for the daemon's log."""
    changed = []
    for path in (Path(home), *(Path(home) / name for name in PRIVATE_ENTRIES)):
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue
        if path.is_symlink() or not mode & 0o077:
            continue
        os.chmod(path, mode & 0o700)
        changed.append(f"{path} {mode:04o} -> {mode & 0o700:04o}")
    return changed


def store_path(home: Path) -> Path:
    return home / "store.db"


def artifacts_path(home: Path) -> Path:
    return home / "artifacts"


# `reconciler up`'s configuration file: key -> the `up` option it sets (see daemon-config.json).
DAEMON_CONFIG_OPTIONS = {
    "apiTokens": "api_tokens",
    "repo": "repo", "pollInterval": "poll_interval", "listen": "listen", "maxRunningWorkflows": "max_running",
    "logLevel": "log_level", "logFormat": "log_format", "isolation": "isolation", "grace": "grace",
    "maxDaemonDeaths": "max_daemon_deaths",
    "stepUid": "step_uid", "stepGid": "step_gid", "stepPids": "step_pids", "stepMemory": "step_memory",
    "stepCpuSeconds": "step_cpu_seconds", "stepStorage": "step_storage", "stepNetwork": "step_network",
    "keepScratch": "keep_scratch", "hidePaths": "hide",
}


class ConfigError(ValueError):
    pass


def load_daemon_config(path: str | os.PathLike) -> dict:
    """Read and validate the daemon's YAML configuration file; ConfigError names file and field."""
    import json
    from importlib import resources

    import jsonschema
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    schema = json.loads((resources.files("reconciler.spec") / "schemas" / "daemon-config.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        lines = [f"{path}: {'.'.join(str(p) for p in e.path) or '(top level)'}: {e.message}" for e in errors]
        raise ConfigError("\n".join(lines))
    if data.get("store") == "kubernetes" or "kubernetes" in data:
        raise ConfigError(f"{path}: store: the Kubernetes backend is not built yet; use store: sqlite "
                          "(the default) and remove the kubernetes section")
    return data

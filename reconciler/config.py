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


# `reconciler up`'s configuration file: key -> the `up` option it sets (see daemon-config.json).
DAEMON_CONFIG_OPTIONS = {
    "repo": "repo", "pollInterval": "poll_interval", "listen": "listen", "maxRunningWorkflows": "max_running",
    "logLevel": "log_level", "logFormat": "log_format", "isolation": "isolation", "grace": "grace",
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

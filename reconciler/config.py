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


BACKENDS = ("sqlite", "kubernetes")
# The Kubernetes backend's settings: environment variable -> KubernetesStore option (lists comma-separated).
KUBERNETES_ENV = {
    "RECONCILER_SYSTEM_NAMESPACE": "system_namespace",
    "RECONCILER_NAMESPACES": "namespaces",
    "RECONCILER_ARGO_NAMESPACES": "argo_namespaces",
    "RECONCILER_CREATE_NAMESPACES": "create_namespaces",
    "RECONCILER_OFFLOAD_THRESHOLD": "offload_threshold",
}
# The same settings under the config file's `kubernetes:` key.
KUBERNETES_CONFIG = {"context": "RECONCILER_KUBE_CONTEXT", "systemNamespace": "RECONCILER_SYSTEM_NAMESPACE",
                     "namespaces": "RECONCILER_NAMESPACES", "argoNamespaces": "RECONCILER_ARGO_NAMESPACES",
                     "createNamespaces": "RECONCILER_CREATE_NAMESPACES",
                     "offloadThreshold": "RECONCILER_OFFLOAD_THRESHOLD"}


def store_location(home: Path, environ: dict | None = None) -> tuple[str, dict]:
    """Where the store is and the backend's options: RECONCILER_BACKEND (sqlite, the default, or
    kubernetes), and for Kubernetes RECONCILER_KUBE_CONTEXT and the variables of KUBERNETES_ENV."""
    env = os.environ if environ is None else environ
    backend = env.get("RECONCILER_BACKEND") or "sqlite"
    if backend not in BACKENDS:
        raise ConfigError(f"RECONCILER_BACKEND: {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "sqlite":
        return str(store_path(home)), {}
    options: dict = {}
    for var, option in KUBERNETES_ENV.items():
        raw = env.get(var)
        if raw in (None, ""):
            continue
        if option in ("namespaces", "argo_namespaces"):
            options[option] = [n.strip() for n in raw.split(",") if n.strip()]
        elif option == "create_namespaces":
            options[option] = raw.lower() not in ("0", "false", "no")
        elif option == "offload_threshold":
            if not raw.isdigit():
                raise ConfigError(f"{var}: {raw!r} is not a number of bytes")
            options[option] = int(raw)
        else:
            options[option] = raw
    return "kubernetes://" + (env.get("RECONCILER_KUBE_CONTEXT") or ""), options


def open_home_store(home: Path):
    """The store the configured backend names (see store_location)."""
    from reconciler.store import open_store

    location, options = store_location(home)
    return open_store(location, **options)


def config_environment(data: dict) -> dict[str, str]:
    """The environment variables a config file's backend settings stand for (flags and the real
    environment win: the caller only fills what is unset)."""
    out = {}
    backend = data.get("backend") or data.get("store")
    if backend:
        out["RECONCILER_BACKEND"] = backend
    for key, value in (data.get("kubernetes") or {}).items():
        if isinstance(value, list):
            value = ",".join(value)
        out[KUBERNETES_CONFIG[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


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
    return data

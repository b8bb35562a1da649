"""Size limits on what untrusted input can make the reconciler hold, store or rewrite.

One set per process: the defaults below, then the `limits` section of `reconciler up`'s config
file, then RECONCILER_MAX_* environment variables (which also reach CLI commands such as `lint` and
`submit --wait`). They are the daemon operator's, not the repository's: a branch pusher must not
be able to raise them, so they are not read from reconciler.yaml. docs/LIMITS.md explains each.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

KIB, MIB = 1 << 10, 1 << 20


@dataclass(frozen=True)
class Limits:
    # Argo keeps the last 256 KiB of stdout as outputs.result (executor.go CaptureScriptResult).
    result_bytes: int = 256 * KIB
    # Argo reported outputs through a pod annotation, and Kubernetes caps all of a pod's annotations
    # at 256 KiB; a larger value failed the step there, and fails it here.
    output_parameter_bytes: int = 256 * KIB
    # A kubelet keeps at most 5 x 10 MiB of a container's log by default; past this the step's
    # further output is dropped (the step keeps running) and a truncation line is written.
    log_bytes: int = 50 * MIB
    # etcd's default request limit (--max-request-bytes): no single Kubernetes object is larger.
    file_bytes: int = 1536 * KIB
    # All the YAML files one environment reads from a commit (many files under file_bytes add up;
    # each parsed file is also cached).
    environment_files_bytes: int = 64 * MIB
    # One change's diff in an Environment's history; a larger one is stored as a summary line.
    diff_bytes: int = 64 * KIB
    # An Environment object's whole status (Argo's MAX_WORKFLOW_SIZE default for a Workflow's);
    # the oldest history entries give way first.
    environment_status_bytes: int = 1 * MIB
    # Children of one withItems / withParam / withSequence (Argo has no cap; every child is a node
    # kept in the workflow's status and the store).
    loop_items: int = 10_000
    # Nodes of one workflow a loop may bring it to, so nested loops (10,000 x 10,000) cannot either;
    # the 20,000-node DAG benchmark peaks at 140 MB.
    workflow_nodes: int = 25_000
    # Outputs (results and parameter values) all of a workflow's steps keep in its status; the step
    # whose outputs would go over it ends Error without them. Argo fails a Workflow over etcd's
    # 1.5 MiB (or compresses/offloads its nodes past MAX_WORKFLOW_SIZE); this allows 64 full results.
    workflow_output_bytes: int = 16 * MIB


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


# config file key / environment variable of each field: loop_items -> loopItems / RECONCILER_MAX_LOOP_ITEMS
CONFIG_KEYS = {f.name: _camel(f.name) for f in fields(Limits)}
ENV_VARS = {name: "RECONCILER_MAX_" + name.upper() for name in CONFIG_KEYS}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|k|M|G)?\s*$")
_UNITS = {None: 1, "Ki": KIB, "Mi": MIB, "Gi": 1 << 30, "k": 1000, "M": 1000**2, "G": 1000**3}


class LimitError(ValueError):
    """A limit setting that is not a size; the message names where it came from."""


class TooLarge(ValueError):
    """Input over a limit; the message says what, how large, the limit and the setting to change."""


def parse_size(value: object, where: str) -> int:
    """`1048576`, `"256Ki"`, `"1.5Mi"` (Kubernetes quantities) -> bytes (or a count)."""
    if isinstance(value, bool):
        raise LimitError(f"{where}: {value!r} is not a size")
    if isinstance(value, int):
        number = value
    else:
        match = _QUANTITY.match(str(value))
        if not match:
            raise LimitError(f"{where}: {value!r} is not a size (a number, optionally with Ki, Mi or Gi)")
        number = int(float(match.group(1)) * _UNITS[match.group(2)])
    if number < 1:
        raise LimitError(f"{where}: {value!r} must be at least 1")
    return number


def human(size: int) -> str:
    """1536 -> '1.5 KiB': sizes in messages."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def resolve(config: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> Limits:
    """Defaults, then the config file's `limits` section, then RECONCILER_MAX_* variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for name, key in CONFIG_KEYS.items():
        if config and key in config:
            values[name] = parse_size(config[key], f"limits.{key}")
        if environ.get(ENV_VARS[name]):
            values[name] = parse_size(environ[ENV_VARS[name]], ENV_VARS[name])
    return replace(Limits(), **values)


_current: Limits | None = None


def current() -> Limits:
    """The process's limits (`configure`d by `reconciler up`, else defaults and environment)."""
    global _current
    if _current is None:
        _current = resolve()
    return _current


def describe(limits: Limits) -> str:
    """`resultBytes=256 KiB, ..., loopItems=10000`: for the daemon's start-up log."""
    return ", ".join(f"{key}={human(value) if name.endswith('_bytes') else value}"
                     for name, key in CONFIG_KEYS.items() for value in [getattr(limits, name)])


def configure(limits: Limits) -> None:
    global _current
    _current = limits


def setting(field_name: str) -> str:
    """Where a limit is set, for messages."""
    return f"limits.{CONFIG_KEYS[field_name]} in the daemon config, or {ENV_VARS[field_name]}"


def too_large(what: str, size: int | None, limit: int, field_name: str) -> TooLarge:
    """The one wording of size errors: `what is SIZE, over the LIMIT limit (where it is set)`."""
    amount = f"is {human(size)}" if size is not None else "is larger"
    return TooLarge(f"{what} {amount}, over the {human(limit)} limit ({setting(field_name)})")


def check_file_size(path: os.PathLike | str) -> None:
    """TooLarge for a regular file over `file_bytes`, before anything reads it."""
    limit = current().file_bytes
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # the reader reports a missing or unreadable file its own way
    if size > limit:
        raise too_large("the file", size, limit, "file_bytes")


__all__ = ["Limits", "LimitError", "TooLarge", "check_file_size", "configure", "current", "describe", "human",
           "parse_size", "resolve", "setting", "too_large"]

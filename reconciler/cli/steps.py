"""The step sandbox's settings as options: `up` flags (config keys, environment variables), and the
same environment variables for `submit --wait/--watch` and `retry/resubmit --wait`, which run steps
in the CLI's own process."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from reconciler.executors.limits import (
    DEFAULT_CPU_SECONDS,
    DEFAULT_PIDS,
    DEFAULT_STORAGE,
    LimitError,
    StepLimits,
    parse_quantity,
)
from reconciler.executors.settings import DEFAULT_STEP_UID, ISOLATIONS, StepSettings, daemon_paths

# option name -> (environment variable, default)
ENV = {
    "isolation": ("RECONCILER_ISOLATION", "bwrap"),
    "step_uid": ("RECONCILER_STEP_UID", DEFAULT_STEP_UID),
    "step_gid": ("RECONCILER_STEP_GID", None),
    "step_pids": ("RECONCILER_STEP_PIDS", DEFAULT_PIDS),
    "step_memory": ("RECONCILER_STEP_MEMORY", None),
    "step_cpu_seconds": ("RECONCILER_STEP_CPU_SECONDS", DEFAULT_CPU_SECONDS),
    "step_storage": ("RECONCILER_STEP_STORAGE", str(DEFAULT_STORAGE)),
    "step_network": ("RECONCILER_STEP_NETWORK", True),
    "keep_scratch": ("RECONCILER_KEEP_SCRATCH", False),
    "hide": ("RECONCILER_HIDE", ()),
}


def step_options(func: Callable) -> Callable:
    """The `up` options that shape each step's sandbox (docs/SECURITY.md)."""
    opts = [
        click.option("--isolation", envvar=ENV["isolation"][0], type=click.Choice(ISOLATIONS), default="bwrap",
                     show_default=True, help="bwrap: each step in a container-like sandbox. tmpdir: steps share "
                     "the daemon's uid, processes and files (only where bwrap cannot run)."),
        click.option("--step-uid", envvar=ENV["step_uid"][0], type=click.IntRange(0), default=DEFAULT_STEP_UID,
                     show_default=True, help="uid steps run as when the daemon runs as root (0: as root)."),
        click.option("--step-gid", envvar=ENV["step_gid"][0], type=click.IntRange(0), default=None,
                     help="gid steps run as when the daemon runs as root (default: the uid)."),
        click.option("--step-pids", envvar=ENV["step_pids"][0], type=click.IntRange(0), default=DEFAULT_PIDS,
                     show_default=True, help="Most processes a step may run at once (0: no limit)."),
        click.option("--step-memory", envvar=ENV["step_memory"][0], default=None, metavar="QUANTITY",
                     help="Memory of a step without resources.limits.memory, e.g. 2Gi (default: no limit)."),
        click.option("--step-cpu-seconds", envvar=ENV["step_cpu_seconds"][0], type=click.IntRange(0),
                     default=DEFAULT_CPU_SECONDS, show_default=True, help="CPU seconds per step process (0: none)."),
        click.option("--step-storage", envvar=ENV["step_storage"][0], default="10Gi", show_default=True,
                     metavar="QUANTITY", help="What a step without resources.limits.ephemeral-storage may write "
                     "(its largest file and its total; 0: no limit)."),
        click.option("--step-network/--no-step-network", envvar=ENV["step_network"][0], default=True,
                     show_default=True, help="Steps share the host's network (off: loopback only)."),
        click.option("--keep-scratch", envvar=ENV["keep_scratch"][0], is_flag=True, default=False,
                     help="Keep each step's scratch directory after it ends (for debugging)."),
        click.option("--hide", envvar=ENV["hide"][0], multiple=True, type=click.Path(), metavar="PATH",
                     help="Another host path steps must not see (repeatable)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def step_settings(home: Path, *, isolation: str, step_uid: int, step_gid: int | None, step_pids: int,
                  step_memory: str | None, step_cpu_seconds: int, step_storage: str | int | None,
                  step_network: bool, hide: tuple[str, ...] = (), environ: Mapping[str, str] | None = None,
                  **_: object) -> StepSettings:
    """StepSettings from option values; click.BadParameter names the option of a bad quantity."""
    def quantity(value: str | int | None, option: str) -> int | None:
        if value in (None, "", "0", 0):
            return None
        try:
            return parse_quantity(value, option)
        except LimitError as exc:
            raise click.BadParameter(str(exc)) from None

    limits = StepLimits(pids=step_pids or None, memory=quantity(step_memory, "--step-memory"),
                        cpu_seconds=step_cpu_seconds or None, storage=quantity(step_storage, "--step-storage"))
    return StepSettings(isolation=isolation, hide=daemon_paths(home, environ, hide), uid=step_uid, gid=step_gid,
                        limits=limits, network=step_network)


def env_values(environ: Mapping[str, str] | None = None) -> dict:
    """The option values as the environment sets them (for commands without the `up` flags)."""
    environ = os.environ if environ is None else environ
    out = {}
    for name, (var, default) in ENV.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            out[name] = default
        elif isinstance(default, bool):
            out[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif name == "hide":
            out[name] = tuple(raw.split())
        elif name in ("step_uid", "step_gid", "step_pids", "step_cpu_seconds"):
            if not raw.strip().isdigit():
                raise click.UsageError(f"{var}={raw!r}: expected a whole number")
            out[name] = int(raw)
        else:
            out[name] = raw
    if out["isolation"] not in ISOLATIONS:
        raise click.UsageError(f"RECONCILER_ISOLATION={out['isolation']!r}: expected bwrap or tmpdir")
    return out

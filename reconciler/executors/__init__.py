"""Executors run one pod per step: ``LocalProcessExecutor`` (subprocess + bwrap overlay view) and
``InProcessExecutor`` (instant, for engine benchmarks). See ``base`` for the contract."""

from .base import (
    DEADLINE_MESSAGE,
    ERROR,
    FAILED,
    SUCCEEDED,
    Executor,
    InputFile,
    OutputArtifactSpec,
    PodJob,
    PodResult,
    SidecarSpec,
    Volume,
)
from .inprocess import InProcessExecutor
from .local import LocalProcessExecutor
from .sandbox import probe_bwrap

__all__ = [
    "DEADLINE_MESSAGE",
    "ERROR",
    "FAILED",
    "SUCCEEDED",
    "Executor",
    "InProcessExecutor",
    "InputFile",
    "LocalProcessExecutor",
    "OutputArtifactSpec",
    "PodJob",
    "PodResult",
    "SidecarSpec",
    "Volume",
    "probe_bwrap",
]

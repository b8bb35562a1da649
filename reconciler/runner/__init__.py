"""The reactor: takes workflows from the store, drives their operators, carries out their actions."""

from reconciler.runner.loop import WorkflowRunner
from reconciler.runner.pods import log_path, run_dir

__all__ = ["WorkflowRunner", "log_path", "run_dir"]

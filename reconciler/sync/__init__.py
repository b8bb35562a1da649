"""GitOps sync: desired objects from git vs live objects in the store -> plan -> apply -> status."""

from .loop import SyncLoop
from .model import EnvironmentResult, Plan
from .reconcile import Reconciler

__all__ = ["EnvironmentResult", "Plan", "Reconciler", "SyncLoop"]

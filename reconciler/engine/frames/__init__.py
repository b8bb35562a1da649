"""In-memory controllers of nodes that have children: the workflow root, steps, DAGs, retries."""

from reconciler.engine.frames.base import Frame, RootFrame
from reconciler.engine.frames.dag import DagFrame
from reconciler.engine.frames.retry import RetryFrame
from reconciler.engine.frames.steps import StepsFrame

__all__ = ["DagFrame", "Frame", "RetryFrame", "RootFrame", "StepsFrame"]

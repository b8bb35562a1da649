"""Policies evaluated before apply: JSON Schemas with a scope, that deny or warn."""

from .evaluate import evaluate, targets
from .model import Policy, default_policies, parse_policies

__all__ = ["Policy", "default_policies", "evaluate", "parse_policies", "targets"]

"""The expression machinery of the engine, with Argo's semantics.

- templating: {{name}} / {{=expr}} substitution over a flat scope (substitute, substitute_object,
  find_references, build_env)
- conditions: `when:` conditions as govaluate evaluates them (evaluate_when)
- depends: DAG enhanced depends logic (parse_depends, DependsExpr, TaskResult)
- expr: the expr-lang subset of {{=...}} and the *.expression fields (evaluate)
- durations: Argo duration strings (parse_duration)

Every failure is an ExpressionError with a one-line message naming the offending text.
"""

from .conditions import evaluate_when
from .depends import DependsExpr, TaskResult, depends_from_dependencies, parse_depends
from .durations import parse_duration
from .errors import ExpressionError
from .expr import evaluate
from .templating import build_env, find_references, substitute, substitute_object

__all__ = [
    "DependsExpr",
    "ExpressionError",
    "TaskResult",
    "build_env",
    "depends_from_dependencies",
    "evaluate",
    "evaluate_when",
    "find_references",
    "parse_depends",
    "parse_duration",
    "substitute",
    "substitute_object",
]

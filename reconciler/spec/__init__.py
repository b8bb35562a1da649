"""Argo-format workflow files: loading with line numbers, JSON Schema validation, lint."""

from .loading import Document, load_file, load_text, read_text_file
from .problems import Problem, SpecError
from .validation import check_submission, lint_paths, validate_documents

__all__ = [
    "Document",
    "Problem",
    "SpecError",
    "check_submission",
    "lint_paths",
    "load_file",
    "load_text",
    "read_text_file",
    "validate_documents",
]

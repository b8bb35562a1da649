"""The git side of GitOps: a local bare copy of the workflow repository, fetched on a schedule."""

from .repository import FetchResult, GitSource, SourceError, redact

__all__ = ["FetchResult", "GitSource", "SourceError", "redact"]

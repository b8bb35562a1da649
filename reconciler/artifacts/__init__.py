"""Artifact repositories: ``LocalArtifactRepository`` keeps artifacts under a directory."""

from .base import ArtifactRepository
from .local import LocalArtifactRepository

__all__ = ["ArtifactRepository", "LocalArtifactRepository"]

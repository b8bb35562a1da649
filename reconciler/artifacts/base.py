"""The artifact repository contract: where step outputs live between steps and after a run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

ARCHIVES = ("none", "tar")


class ArtifactRepository(ABC):
    """Stores files and directories under string keys and hands back Argo-like location dicts.

    A location is ``{"key": key, "archive": "none" | "tar", "size": bytes}``; ``load`` takes one back.
    """

    @abstractmethod
    def save(self, source: Path, key: str, archive: str = "tar", compression_level: int | None = None) -> dict:
        """Store ``source`` (file or directory) as is ("none") or as a tar.gz ("tar")."""

    @abstractmethod
    def load(self, location: dict, dest: Path) -> Path:
        """Materialize the artifact at ``dest`` (replacing what is there) and return ``dest``."""

    @abstractmethod
    def save_bytes(self, data: bytes, key: str) -> dict:
        """Store raw bytes (Argo "raw" artifacts) as a plain file."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Drop every artifact whose key lies under ``prefix`` (e.g. one workflow's)."""

"""The artifact repository contract: where step outputs live between steps and after a run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

ARCHIVES = ("none", "tar")
# Argo's key-only artifacts (a driver with just `key`) name a key in the default repository; the
# local engine's default repository is its own, and such keys live under the workflow's namespace.
KEY_ONLY_DRIVERS = ("s3", "gcs", "oss")


def key_only(artifact: dict) -> str | None:
    """The key of an artifact given only as `<driver>: {key: ...}`, else None."""
    for driver in KEY_ONLY_DRIVERS:
        location = artifact.get(driver)
        if isinstance(location, dict) and set(location) == {"key"}:
            return str(location["key"])
    return None


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

    def list_keys(self, prefix: str, limit: int) -> list[str]:
        """Keys of the files under ``prefix`` (a data template's artifactPaths), sorted; ValueError
        beyond ``limit`` entries."""
        raise NotImplementedError(f"{type(self).__name__} cannot list keys")

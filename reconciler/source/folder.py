"""A working tree read the way the sync reads a commit, so `lint` can build environments from it.

It offers the part of GitSource the Builder uses (read a file, list files with a key per content,
read by that key). The commit argument is ignored: there is one state, the files on disk now.
Only regular files count; a symlink is skipped, as it could point outside the repository (or at
a device that never ends).
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.limits import current as current_limits
from reconciler.limits import too_large

WORKTREE = "working-tree"  # stands where a commit sha would


class FolderSource:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.display_url = str(self.root)

    def _file(self, relative: str) -> Path | None:
        path = self.root / relative
        if path.is_symlink() or not path.is_file():
            return None
        return path

    def read(self, commit: str, path: str) -> bytes | None:
        found = self._file(path)
        return found.read_bytes() if found else None

    def blob_shas(self, commit: str, folder: str = "") -> dict[str, str]:
        """path -> key, as GitSource gives path -> blob sha; here the key is the path itself."""
        base = self.root / folder if folder else self.root
        if base.is_symlink() or not base.is_dir():
            return {}
        found = {}
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != ".git" and not os.path.islink(os.path.join(dirpath, d)))
            for name in filenames:
                relative = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if self._file(relative):
                    found[relative] = relative
        return found

    def blob_sizes(self, commit: str, folder: str = "") -> dict[str, int]:
        """path -> size on disk, as GitSource.blob_sizes gives them from the tree."""
        return {path: self.root.joinpath(path).stat().st_size for path in self.blob_shas(commit, folder)}

    def read_blob(self, key: str, size: int | None = None) -> bytes:
        """A file's content; TooLarge over limits.file_bytes, checked before it is read."""
        found = self._file(key)
        if found is None:
            raise FileNotFoundError(key)
        limit = current_limits().file_bytes
        actual = found.stat().st_size if size is None else size
        if actual > limit:
            raise too_large("the file", actual, limit, "file_bytes")
        return found.read_bytes()

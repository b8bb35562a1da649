"""Kubernetes-shaped object store: get/list/create/update/patch/delete/watch by kind, namespace, name.

`open_store(location)` picks the backend from the location; today that is the embedded SQLite one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import CLUSTER_SCOPED_KINDS, ObjectStore
from .errors import AlreadyExists, Conflict, Invalid, NotFound, StoreError
from .merging import make_merge_patch, merge_patch
from .sqlite import SqliteStore

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "AlreadyExists",
    "Conflict",
    "Invalid",
    "NotFound",
    "ObjectStore",
    "SqliteStore",
    "StoreError",
    "make_merge_patch",
    "merge_patch",
    "open_store",
]

_SQLITE_SCHEME = "sqlite://"
_KUBERNETES_SCHEME = "kubernetes://"


def open_store(location: str | os.PathLike, **options: Any) -> ObjectStore:
    """Open the store at `location`.

    Accepted: ":memory:" (a private in-memory database, for tests); "sqlite:///abs/path.db" (also
    SQLAlchemy's "sqlite:////abs/path.db"); a path to a .db file; a directory, meaning DIR/store.db; or
    "kubernetes://[CONTEXT]": the API server of the in-cluster service account, else of KUBECONFIG (and
    CONTEXT). Missing parent directories are created. `options` go to the backend (e.g. event_retention).
    """
    text = os.fspath(location)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if text.startswith(_KUBERNETES_SCHEME):
        from .kube_client import load_api_client
        from .kubernetes import KubernetesStore

        return KubernetesStore(load_api_client(text[len(_KUBERNETES_SCHEME):] or None), **options)
    if text.startswith(_SQLITE_SCHEME):
        text = text[len(_SQLITE_SCHEME):]
        if text.startswith("//"):
            text = "/" + text.lstrip("/")
        if text.lstrip("/") == ":memory:":
            text = ":memory:"
    elif "://" in text:
        raise ValueError(f"unsupported store location {text!r} (expected a path or sqlite:///PATH)")
    if text == ":memory:":
        return SqliteStore(":memory:", **options)
    if not text:
        raise ValueError("empty store location")
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        path = path / "store.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Owner-only from the first byte; SQLite gives its -wal and -shm files the database's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return SqliteStore(path, **options)

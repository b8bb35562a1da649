"""Store errors, shaped like the Kubernetes API's status reasons so both backends raise the same ones."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the object store raises."""


class NotFound(StoreError):
    """The object does not exist (HTTP 404)."""


class AlreadyExists(StoreError):
    """An object with this kind, namespace and name exists already (HTTP 409 AlreadyExists)."""


class Conflict(StoreError):
    """A resourceVersion precondition failed, or a watch asked for history that was compacted (409/410)."""


class Invalid(StoreError):
    """The object breaks Kubernetes' rules for its metadata (HTTP 422 Invalid; the API answers 400)."""


class TransientStoreError(StoreError):
    """The database was busy or an I/O error occurred that may go away: the store retries these."""


class DamagedStore(StoreError):
    """The store file is not a readable reconciler store (corrupt, truncated, not SQLite at all)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"{path}: the store is damaged ({detail}); stop the daemon, then run `reconciler doctor` to check it "
            "and `reconciler doctor --recover` (copy what can be read into a new store) or "
            "`reconciler doctor --restore BACKUP`")

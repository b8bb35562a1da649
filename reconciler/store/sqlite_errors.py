"""What a SQLite error means for the store: worth retrying, a damaged file, or a plain failure.

The retrying is done here, once, around each store operation (each is one transaction, rolled back
on error, so running it again is safe) rather than in every caller."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import DamagedStore, StoreError, TransientStoreError

log = logging.getLogger(__name__)

ATTEMPTS = 6           # with the busy timeout per attempt, a locked database is waited on for long
FIRST_DELAY = 0.05     # seconds before the second attempt, doubled each time
MAX_DELAY = 2.0
_MAGIC = b"SQLite format 3\x00"
_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_PROTOCOL")
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
# Raised by SQLite without a code, or by Python's module: text that is not UTF-8 was not written by us.
_DAMAGE_SIGNS = ("malformed", "not a database", "Could not decode to UTF-8")

T = TypeVar("T")


def classify(exc: sqlite3.Error, path: str) -> StoreError:
    """The store error that stands for `exc`."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(_DAMAGED) or any(sign in text for sign in _DAMAGE_SIGNS):
        return DamagedStore(path, text)
    if name.startswith(_TRANSIENT) or "locked" in text or "disk I/O error" in text:
        return TransientStoreError(f"sqlite: {text}")
    return StoreError(f"sqlite: {text}")


def retrying(method: Callable[..., T]) -> Callable[..., T]:
    """Run a store operation again, with backoff, while it fails with a transient error."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs) -> T:
        delay = FIRST_DELAY
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return method(*args, **kwargs)
            except TransientStoreError as exc:
                if attempt == ATTEMPTS:
                    raise TransientStoreError(f"{exc} (gave up after {ATTEMPTS} attempts)") from exc
                log.warning("store: %s; trying again in %.2fs (attempt %d of %d)", exc, delay, attempt, ATTEMPTS)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
        raise AssertionError("unreachable")

    return wrapper


_OPENED: set[str] = set()  # real paths of the stores this process has opened


def opened_here(path: str) -> None:
    """Note that this process now has a connection to the store at `path`."""
    _OPENED.add(os.path.realpath(path))


def header_problem(path: str, *, first_open: bool = False) -> str | None:
    """Why the file at `path` cannot be a whole SQLite database, from its header alone (cheap enough
    for every open); None if it looks whole, is empty or does not exist (a new store).

    With `first_open`, the header is read only if this process has no connection to the file yet:
    closing any other descriptor of it drops all of this process's POSIX locks on it, SQLite's
    included ("How To Corrupt An SQLite Database File", 2.2)."""
    if first_open and os.path.realpath(path) in _OPENED:
        return None
    try:
        size = os.path.getsize(path)
        if size == 0:
            return None
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if len(head) < 100 or not head.startswith(_MAGIC):
        return "not an SQLite database"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"bad page size {page_size} in the header"
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and pages and size < pages * page_size:
        return f"truncated: {size} bytes where the header says {pages * page_size}"
    if size % page_size:
        return f"truncated: {size} bytes is not a whole number of {page_size}-byte pages"
    return None

"""Webhook deliveries already acted on, so that a replayed delivery changes nothing.

Each delivery is remembered under two keys: the provider's delivery id when it sends one
(X-GitHub-Delivery, X-Gitea-Delivery, X-Gitlab-Event-UUID) and the SHA-256 of the body. The body key
matters most: GitHub's signature covers the body but not the headers, so whoever captured a signed
push can replay it under a fresh delivery id; the same body is still a duplicate.

The keys live in the store, so they survive a restart: one `WebhookDelivery` object per key in
namespace reconciler-system, named by the key's SHA-256. store.create() is atomic, so of two copies
arriving at once exactly one triggers. The set is bounded: entries older than TTL_SECONDS go, and
never more than MAX_ENTRIES stay (oldest first). A delivery older than the TTL replayed later only
starts a sync pass, and a pass follows the branch head on the remote, never a commit named in the
body, so it cannot move an environment back.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, NotFound
from reconciler.sync.model import SYSTEM_NAMESPACE

KIND = "WebhookDelivery"
API_VERSION = "reconciler.io/v1"
TTL_SECONDS = 7 * 24 * 3600
MAX_ENTRIES = 10_000


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def seen_before(store: ObjectStore, provider: str, delivery_id: str | None, body: bytes) -> bool:
    """Record this delivery; True when its id or its body was recorded before (within the TTL)."""
    keys = {f"{provider}:body:{_digest(body)}": "body"}
    if delivery_id:
        keys[f"{provider}:id:{delivery_id[:200]}"] = "id"
    duplicate = False
    for key, what in keys.items():
        record = {"apiVersion": API_VERSION, "kind": KIND,
                  "metadata": {"name": _digest(key), "namespace": SYSTEM_NAMESPACE},
                  "spec": {"provider": provider, "key": what, "receivedAt": int(time.time()),
                           **({"deliveryId": delivery_id[:200]} if what == "id" else {})}}
        try:
            store.create(record)
        except AlreadyExists:
            duplicate = True
    prune(store)
    return duplicate


def prune(store: ObjectStore, now: float | None = None) -> int:
    """Drop entries past the TTL and the oldest beyond MAX_ENTRIES; how many were dropped."""
    now = time.time() if now is None else now
    entries = sorted(store.list_brief(KIND, SYSTEM_NAMESPACE), key=_received)
    expired = [e for e in entries if _received(e) < now - TTL_SECONDS]
    excess = entries[len(expired):][:max(0, len(entries) - len(expired) - MAX_ENTRIES)]
    dropped = 0
    for entry in expired + excess:
        try:
            store.delete(KIND, SYSTEM_NAMESPACE, entry["metadata"]["name"])
            dropped += 1
        except NotFound:  # another request pruned it first
            pass
    return dropped


def _received(entry: dict) -> float:
    received = (entry.get("spec") or {}).get("receivedAt")
    if isinstance(received, int):
        return received
    try:  # written by hand or by an older version: fall back on the store's timestamp
        stamp = entry["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        return datetime.fromisoformat(stamp).astimezone(timezone.utc).timestamp()
    except (KeyError, AttributeError, ValueError):
        return 0.0

"""Push webhooks: check the sender's signature and find the pushed branch, so the daemon can call
SyncLoop.trigger(branch) instead of waiting for the next poll."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """GitHub's X-Hub-Signature-256 (also Gitea's, Forgejo's): "sha256=" + HMAC-SHA256 of the raw body.

    Compared in constant time; a missing or malformed header (no prefix, wrong length, not hex,
    non-ASCII bytes, which hmac.compare_digest refuses on str) is simply not valid.
    """
    if not header or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=")
    if not _HEX_SHA256.fullmatch(given):
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.lower().encode())


def verify_token(secret: str, header: str | None) -> bool:
    """GitLab's X-Gitlab-Token: the shared secret itself."""
    # Header values arrive decoded as latin-1: any character encodes, compared as bytes.
    return header is not None and hmac.compare_digest(secret.encode(), header.encode())


def pushed_branch(body: bytes | str | dict[str, Any]) -> str | None:
    """The branch of a push event ({"ref": "refs/heads/dev", ...}), or None for tags and other events."""
    try:
        payload = body if isinstance(body, dict) else json.loads(body)
    except (ValueError, TypeError):
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return None

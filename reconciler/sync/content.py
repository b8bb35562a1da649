"""The part of an object git decides, and its hash: how drift and changes are told apart.

Only spec/data and the user's own labels and annotations count. Status belongs to the runner and
scheduler, our reconciler.io/* marks describe the object rather than being it, and Argo's
workflows.argoproj.io/* annotations are written by controllers; none of those is drift.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from .model import CONTENT_HASH, OWN_PREFIX, SUSPEND_OVERRIDE

FOREIGN_PREFIXES = (OWN_PREFIX, "workflows.argoproj.io/")


def _user_map(value: Any) -> dict:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if not str(k).startswith(FOREIGN_PREFIXES)}


def comparable(obj: dict) -> dict:
    """What git owns of an object, in a stable shape."""
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"kind": obj.get("kind"), "name": meta.get("name")}
    labels, annotations = _user_map(meta.get("labels")), _user_map(meta.get("annotations"))
    if labels:
        out["labels"] = labels
    if annotations:
        out["annotations"] = annotations
    for key in ("spec", "data", "binaryData"):
        if key in obj:
            out[key] = obj[key]
    return out


def content_hash(obj: dict) -> str:
    text = json.dumps(comparable(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def projected(live: Any, desired: Any) -> Any:
    """`live` cut down to the fields `desired` sets (dicts by key, anything else whole): what a store
    that merges on apply (server-side apply on a cluster) can be expected to match, since fields other
    writers added survive there by design."""
    if isinstance(live, dict) and isinstance(desired, dict):
        return {k: projected(live[k], v) for k, v in desired.items() if k in live}
    return live


def suspend_overridden(live: dict | None) -> bool:
    """Whether `reconciler cron suspend` holds this live CronWorkflow suspended whatever git says."""
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    return live is not None and live.get("kind") == "CronWorkflow" and annotations.get(SUSPEND_OVERRIDE) == "true"


def with_override(desired: dict, live: dict | None) -> dict:
    """Git's object as the live one may differ from it by a person's choice: suspended by override."""
    if not suspend_overridden(live):
        return desired
    return {**desired, "spec": {**(desired.get("spec") or {}), "suspend": True}}


def overridden_hash(desired: dict, live: dict) -> str | None:
    """The content hash git's object has with the live object's override applied (None: no override)."""
    return content_hash(with_override(desired, live)) if suspend_overridden(live) else None


def unoverridden_hashes(live: dict) -> set[str]:
    """The hashes the live object may have had as git's, before a suspend override set spec.suspend
    (git's value is unknown: absent, false or true), so an override alone is not counted as an edit."""
    hashes = {content_hash(live)}
    if suspend_overridden(live):
        spec = {k: v for k, v in (live.get("spec") or {}).items() if k != "suspend"}
        hashes.add(content_hash({**live, "spec": spec}))
        hashes.update(content_hash({**live, "spec": {**spec, "suspend": value}}) for value in (False, True))
    return hashes


def recorded_hash(obj: dict) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(CONTENT_HASH)


def as_yaml(obj: dict | None) -> str:
    if obj is None:
        return ""
    shown = comparable(obj)
    shown.pop("kind", None)
    shown.pop("name", None)
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, width=120)

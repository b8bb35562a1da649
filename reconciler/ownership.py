"""Which objects git manages: the labels and annotations the GitOps sync puts on what it applies, and
the checks the CLI and the API make before a person changes such an object by hand.

Kept out of reconciler.sync (which loads git) so the CLI's object commands stay quick to start."""

from __future__ import annotations

from dataclasses import dataclass

MANAGED_BY = "reconciler.io/managed-by"
MANAGER = "reconciler"
ENVIRONMENT_LABEL = "reconciler.io/environment"
SOURCE_COMMIT = "reconciler.io/source-commit"
CONTENT_HASH = "reconciler.io/content-hash"
SOURCE_PATH = "reconciler.io/source-path"
OWN_PREFIX = "reconciler.io/"
# On a managed CronWorkflow: `reconciler cron suspend` holds it suspended whatever git says, until
# `reconciler cron resume` (the sync compares the live object against git's with spec.suspend: true).
SUSPEND_OVERRIDE = "reconciler.io/suspend-override"

MANAGEMENT_LABELS = (MANAGED_BY, ENVIRONMENT_LABEL)

GUIDE = "docs/GITOPS.md"


def managed_selector(environment: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, ENVIRONMENT_LABEL: environment}


def is_managed(obj: dict, environment: str | None = None) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGER:
        return False
    return environment is None or labels.get(ENVIRONMENT_LABEL) == environment


@dataclass(frozen=True)
class Source:
    """Where a managed object comes from."""

    environment: str
    path: str

    def describe(self) -> str:
        where = f"file {self.path}" if self.path else "a file of its branch"
        return f"environment {self.environment or '?'}, {where}"

    def to_dict(self) -> dict[str, str]:
        return {"environment": self.environment, "path": self.path}


def git_source(obj: dict) -> Source | None:
    """The environment and file a git-managed object comes from; None for an object a person manages."""
    if not is_managed(obj):
        return None
    meta = obj.get("metadata") or {}
    return Source((meta.get("labels") or {}).get(ENVIRONMENT_LABEL, ""),
                  (meta.get("annotations") or {}).get(SOURCE_PATH, ""))


def refusal(obj: dict, verb: str) -> str | None:
    """Why a person may not `verb` (apply, delete) this object without --force; None if they may."""
    source = git_source(obj)
    if source is None:
        return None
    meta = obj["metadata"]
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return (f"{obj['kind']} {ns}{meta['name']} is managed by git ({source.describe()}): change that file "
            f"instead, or {verb} with --force, and the next sync puts git's version back")


def forced_note(obj: dict, verb: str) -> str | None:
    """What a person is told after changing a managed object with --force."""
    source = git_source(obj)
    if source is None:
        return None
    return (f"note: {obj['kind']} {obj['metadata']['name']} is managed by git ({source.describe()}); "
            f"{verb} anyway: the next sync of {source.environment} restores it")


def keep_management(obj: dict, current: dict) -> None:
    """Carry the sync's labels and annotations from `current` onto `obj` (a forced apply), so the object
    stays managed and the next sync sees the edit as drift and restores it, rather than taking it for an
    unmanaged object it must never touch."""
    cur = current.get("metadata") or {}
    meta = obj.setdefault("metadata", {})
    labels = {k: v for k, v in (cur.get("labels") or {}).items() if k in MANAGEMENT_LABELS}
    annotations = {k: v for k, v in (cur.get("annotations") or {}).items() if k.startswith(OWN_PREFIX)}
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}


def adoption_hint(kind: str, namespace: str, name: str, environment: str) -> str:
    """How to let an environment take over an object a person created (the sync never touches it)."""
    return (f"to let environment {environment} manage it, label it {MANAGED_BY}={MANAGER} and "
            f"{ENVIRONMENT_LABEL}={environment} (e.g. `reconciler apply` it with those labels) and the next "
            f"sync adopts it, or delete it and the next sync creates it from git (see {GUIDE}, "
            "'Adopting an object')")

"""Listing workflows as `argo list` does, for the CLI and the HTTP API alike: the brief form of a workflow,
the `--status` and `-l` filters, and `@latest`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from reconciler.engine import nodes as N
from reconciler.store.base import ObjectStore

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")
LATEST = "@latest"
MAX_SELECTOR = 4096  # characters of a -l selector or --status list
_KEY = re.compile(r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?")


class SelectorError(ValueError):
    """A --status or -l value that cannot be read; its message says what was expected."""


def brief(wf: dict) -> dict:
    """A workflow as listed: metadata, `spec.suspend` (as `argo list` asks for it, to show `Running
    (Suspended)`) and status without the nodes."""
    status = wf.get("status") or {}
    out: dict = {"metadata": wf["metadata"]}
    if (wf.get("spec") or {}).get("suspend"):
        out["spec"] = {"suspend": True}
    out["status"] = {k: v for k, v in status.items() if k != "nodes"}
    return out


def parse_phases(text: str | None) -> frozenset[str] | None:
    """`--status Running,Failed` -> the phases (None: any). Case-insensitive, as argo's flag."""
    if not text:
        return None
    if len(text) > MAX_SELECTOR:
        raise SelectorError(f"--status is longer than {MAX_SELECTOR} characters")
    by_lower = {p.lower(): p for p in PHASES}
    phases = set()
    for item in text.split(","):
        phase = by_lower.get(item.strip().lower())
        if phase is None:
            raise SelectorError(f"--status {item.strip()!r}: expected one or more of {', '.join(PHASES)}, "
                                "comma-separated")
        phases.add(phase)
    return frozenset(phases)


def parse_selector(text: str | None) -> list[tuple[str, str, str | None]] | None:
    """`-l key=value,other!=x,present` (Kubernetes' equality-based selector) -> [(key, op, value)]."""
    if not text:
        return None
    if len(text) > MAX_SELECTOR:
        raise SelectorError(f"-l is longer than {MAX_SELECTOR} characters")
    terms = []
    for raw in text.split(","):
        term = raw.strip()
        match = re.fullmatch(r"(!?)([^=!]+)(?:(==|=|!=)(.*))?", term)
        key = match.group(2).strip() if match else ""
        if not match or not _KEY.fullmatch(key) or (match.group(1) and match.group(3)):
            raise SelectorError(f"-l {term!r}: expected key=value, key!=value, key or !key, comma-separated")
        if match.group(1):
            terms.append((key, "absent", None))
        elif match.group(3):
            terms.append((key, "!=" if match.group(3) == "!=" else "=", match.group(4).strip()))
        else:
            terms.append((key, "present", None))
    return terms


def _labels_match(wf: dict, terms: Iterable[tuple[str, str, str | None]]) -> bool:
    labels = (wf.get("metadata") or {}).get("labels") or {}
    for key, op, value in terms:
        if (op == "=" and labels.get(key) != value) or (op == "!=" and labels.get(key) == value) or \
                (op == "present" and key not in labels) or (op == "absent" and key in labels):
            return False
    return True


def select(items: list[dict], phases: frozenset[str] | None = None,
           terms: list[tuple[str, str, str | None]] | None = None) -> list[dict]:
    """The workflows of `items` in one of `phases` (a workflow without a phase is Pending) and matching
    the selector terms, newest first."""
    out = [wf for wf in items
           if (phases is None or ((wf.get("status") or {}).get("phase") or "Pending") in phases)
           and (terms is None or _labels_match(wf, terms))]
    out.sort(key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)
    return out


def latest(store: ObjectStore, namespace: str) -> str | None:
    """`@latest`: the name of the namespace's most recently created workflow (None if it has none)."""
    items = select(store.list_brief("Workflow", namespace))
    return items[0]["metadata"]["name"] if items else None


def namespaces_holding(store: ObjectStore, name: str) -> list[str]:
    """Every namespace with a workflow called `name` (for a "not found here, but there" hint)."""
    return sorted({wf["metadata"].get("namespace", "") for wf in store.list_brief("Workflow", None)
                   if wf["metadata"]["name"] == name})


def pod_counts(wf: dict) -> tuple[int, int, int]:
    """`argo list -o wide`'s P/R/C: pods pending, running and completed."""
    pending = running = completed = 0
    for node in ((wf.get("status") or {}).get("nodes") or {}).values():
        if node.get("type") != N.POD:
            continue
        if N.is_fulfilled(node):
            completed += 1
        elif node.get("phase") == N.RUNNING:
            running += 1
        else:
            pending += 1
    return pending, running, completed

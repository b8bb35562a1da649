"""What a finished workflow lets go of (Argo's volumeClaimGC and artifactGC), on this machine.

volumeClaimGC (default OnWorkflowSuccess, as Argo): the directories that stand for the workflow's
volumeClaimTemplates are deleted when it succeeds, or whatever its phase with OnWorkflowCompletion.
artifactGC OnWorkflowCompletion (workflow-level, or an output artifact's own, which wins): those
output artifacts are deleted from the local repository when the workflow completes; with
OnWorkflowDeletion (and, locally, Never: see the lint warning) they go when the workflow is deleted.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from reconciler.artifacts.base import ArtifactRepository

log = logging.getLogger(__name__)

COMPLETION = "OnWorkflowCompletion"


def collect(home: Path, artifacts: ArtifactRepository, wf: dict, spec: dict) -> None:
    meta, status = wf["metadata"], wf.get("status") or {}
    ns, name = meta.get("namespace", "default"), meta["name"]
    succeeded = status.get("phase") == "Succeeded"
    strategy = (spec.get("volumeClaimGC") or {}).get("strategy") or "OnWorkflowSuccess"
    if strategy == COMPLETION or succeeded:
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = (claim.get("metadata") or {}).get("name")
            if claim_name and "/" not in claim_name and claim_name not in (".", ".."):
                shutil.rmtree(Path(home) / "volumes" / ns / name / claim_name, ignore_errors=True)
    default = (spec.get("artifactGC") or {}).get("strategy") or ""
    declared = _declared_strategies(status, spec)
    for node in (status.get("nodes") or {}).values():
        for art in (node.get("outputs") or {}).get("artifacts") or []:
            own = declared.get((node.get("templateName"), art.get("name")))
            key = art.get("key")
            # Only this workflow's own keys: a status is data, never a licence to delete elsewhere.
            if (own or default) == COMPLETION and isinstance(key, str) and key.startswith(f"{ns}/{name}/"):
                try:
                    artifacts.delete_prefix(key)
                except (ValueError, OSError) as exc:
                    log.warning("workflow %s/%s: artifactGC of %s: %s", ns, name, key, exc)


def _declared_strategies(status: dict, spec: dict) -> dict[tuple[str, str], str]:
    """(template name, output artifact name) -> that artifact's own artifactGC strategy."""
    found: dict[tuple[str, str], str] = {}
    templates = list(spec.get("templates") or []) + list((status.get("storedTemplates") or {}).values())
    for tmpl in templates:
        for art in (tmpl.get("outputs") or {}).get("artifacts") or []:
            strategy = (art.get("artifactGC") or {}).get("strategy")
            if strategy:
                found[(tmpl.get("name"), art.get("name"))] = strategy
    return found

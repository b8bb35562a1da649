"""Turning the engine's actions into executor jobs, and executor results back into events.

Kept apart from the runner's loop: this is the only code that knows both the engine's view of a
pod (a substituted template) and the executor's (a PodJob with host paths)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from reconciler import paths
from reconciler.artifacts import LocalArtifactRepository
from reconciler.artifacts.base import ArtifactRepository
from reconciler.config import artifacts_path
from reconciler.engine import nodes as nodes_mod
from reconciler.engine.actions import PodFinished, RunPod, SaveMemo
from reconciler.executors.base import InputFile, OutputArtifactSpec, PodJob, PodResult, SidecarSpec, Volume
from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, NotFound

# Every path here goes through paths.under: names come from input, and a long one must not make
# the daemon fail with ENAMETOOLONG (it maps to a short hashed folder instead).
_NS_DIGITS = 20  # room for the "-<time_ns>" a scratch folder name ends with


def log_path(home: Path, namespace: str, workflow: str, node_id: str) -> Path:
    """Where a pod's log is kept once it has finished."""
    return paths.under(home, "logs", namespace, workflow, f"{node_id}.log")


def run_dir(home: Path, namespace: str, workflow: str) -> Path:
    return paths.under(home, "runs", namespace, workflow)


def scratch_stem(node_id: str) -> str:
    """The start of every scratch folder name of a node (`<stem>-<time_ns>`): logstream finds them by it."""
    return paths.component(node_id, reserve=_NS_DIGITS + 1)


def volume_dir(home: Path, namespace: str, workflow: str, volume: str) -> Path:
    return paths.under(home, "volumes", namespace, workflow, volume)


def delete_workflow_files(home: Path, namespace: str, workflow: str) -> None:
    """A workflow's logs, scratch space, volumes and artifacts: what `delete` and cron history remove."""
    try:
        folders = [paths.under(home, sub, namespace, workflow) for sub in ("logs", "runs", "volumes")]
    except paths.PathEscape:
        return  # a name stored before names were checked: nothing of it can be under home
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    LocalArtifactRepository(artifacts_path(Path(home))).delete_prefix(f"{namespace}/{workflow}/")


def save_memo(store: ObjectStore, namespace: str, action: SaveMemo, now: float) -> None:
    """Argo keeps memoized outputs in a ConfigMap, one JSON entry per key."""
    now = nodes_mod.now_rfc3339(now)
    entry = json.dumps({"nodeID": action.node_id, "outputs": action.outputs,
                        "creationTimestamp": now, "lastHitTimestamp": now}, separators=(",", ":"))
    for _ in range(5):
        try:
            store.patch("ConfigMap", namespace, action.cache, {"data": {action.key: entry}})
            return
        except NotFound:
            try:
                store.create({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": action.cache, "namespace": namespace, "labels": {
                                       "workflows.argoproj.io/configmap-type": "Cache"}},
                                   "data": {action.key: entry}})
                return
            except AlreadyExists:
                continue



def build_job(home: Path, artifacts: ArtifactRepository, wf_meta: dict, action: RunPod) -> PodJob:
    """The executor's job for a pod the engine wants started; input artifacts are fetched here."""
    tmpl = action.template
    body = tmpl.get("container") or tmpl.get("script") or {}
    meta = wf_meta
    ns = meta.get("namespace", "default")
    # The executor creates the scratch directory; only inputs need it earlier.
    scratch = paths.under(run_dir(home, ns, meta["name"]), f"{scratch_stem(action.node_id)}-{time.time_ns()}")
    inputs = []
    for art in action.input_artifacts:
        dest = paths.under(scratch, "inputs", art["name"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        if "raw" in art:
            dest.write_text(art["raw"].get("data", ""))
        else:
            artifacts.load(art, dest)
        inputs.append(InputFile(path=art["path"], source=dest))
    outputs = tmpl.get("outputs") or {}
    env = {e["name"]: str(e.get("value", "")) for e in body.get("env", []) or [] if "value" in e}
    volumes = []
    for mount in body.get("volumeMounts", []) or []:
        host = volume_dir(home, ns, meta["name"], mount["name"])
        host.mkdir(parents=True, exist_ok=True)
        volumes.append(Volume(host, mount["mountPath"], bool(mount.get("readOnly"))))
    return PodJob(
        node_id=action.node_id,
        pod_name=action.pod_name,
        workflow_name=meta["name"],
        namespace=ns,
        image=str(body.get("image", "")),
        command=[str(c) for c in body.get("command", []) or []],
        args=[str(a) for a in body.get("args", []) or []],
        script_source=tmpl["script"].get("source", "") if "script" in tmpl else None,
        env=env,
        working_dir=body.get("workingDir"),
        input_files=inputs,
        output_parameter_paths={
            p["name"]: p["valueFrom"]["path"]
            for p in outputs.get("parameters", []) or []
            if (p.get("valueFrom") or {}).get("path")
        },
        output_artifacts=[
            OutputArtifactSpec(a["name"], a["path"], bool(a.get("optional")))
            for a in outputs.get("artifacts", []) or []
            if a.get("path")
        ],
        volumes=volumes,
        sidecars=[
            SidecarSpec(s.get("name", "sidecar"), [str(c) for c in s.get("command", []) or []],
                        [str(a) for a in s.get("args", []) or []],
                        {e["name"]: str(e.get("value", "")) for e in s.get("env", []) or [] if "value" in e})
            for s in tmpl.get("sidecars", []) or []
        ],
        timeout=action.timeout,
        scratch_dir=scratch,
    )


def finished_event(home: Path, artifacts: ArtifactRepository, wf_meta: dict, action: RunPod | None,
                   result: PodResult, log_dirs: set[Path]) -> PodFinished:
    """Save a finished pod's log and output artifacts, and say what happened in the engine's terms."""
    meta = wf_meta
    ns = meta.get("namespace", "default")
    log_file = log_path(home, ns, meta["name"], result.node_id)
    if log_file.parent not in log_dirs:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_dirs.add(log_file.parent)
    if result.log_path and Path(result.log_path).is_file():
        shutil.copyfile(result.log_path, log_file)
    elif result.stdout:
        log_file.write_text(result.stdout)
    saved, errors = [], []
    decls = ((action.template.get("outputs") or {}).get("artifacts", []) if action else []) or []
    for decl in decls:
        path = result.output_artifacts.get(decl["name"])
        if path is None:
            if not decl.get("optional") and result.phase == "Succeeded":
                errors.append(f"outputs.artifacts.{decl['name']}: {decl.get('path')} not found")
            continue
        archive = decl.get("archive") or {}
        kind = "none" if "none" in archive else "tar"
        level = (archive.get("tar") or {}).get("compressionLevel")
        key = f"{ns}/{meta['name']}/{result.node_id}/{decl['name']}" + (".tgz" if kind == "tar" else "")
        kwargs = {"compression_level": int(level)} if level is not None and kind == "tar" else {}
        location = artifacts.save(Path(path), key, archive=kind, **kwargs)
        saved.append({"name": decl["name"], "path": decl["path"], **location})
    return PodFinished(
        node_id=result.node_id,
        phase=result.phase,
        message=result.message,
        exit_code=result.exit_code,
        stdout=result.stdout,
        parameters=dict(result.output_parameters),
        artifacts=saved,
        artifact_errors=errors,
        started_at=result.started_at,
        finished_at=result.finished_at,
    )

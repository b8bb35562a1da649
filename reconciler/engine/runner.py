"""Drives operators: persists their status, then carries out their actions on an executor.

The order is the crash-safety rule of DESIGN.md: a status change reaches the store before the
action it implies is taken, and a pod's result is recorded before anything reacts to it."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.artifacts.base import ArtifactRepository
from reconciler.engine import nodes as nodes_mod
from reconciler.engine.actions import KillPod, PodFinished, RunPod, SaveMemo
from reconciler.engine.operator import Operator
from reconciler.engine.submission import store_lookup
from reconciler.executors.base import (
    Executor,
    InputFile,
    OutputArtifactSpec,
    PodJob,
    PodResult,
    SidecarSpec,
    Volume,
)
from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, NotFound

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def log_path(home: Path, namespace: str, workflow: str, node_id: str) -> Path:
    """Where a pod's log is kept once it has finished."""
    return Path(home) / "logs" / namespace / workflow / f"{node_id}.log"


class WorkflowRunner:
    def __init__(
        self,
        store: ObjectStore,
        executor: Executor,
        artifacts: ArtifactRepository,
        home: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.executor = executor
        self.artifacts = artifacts
        self.home = Path(home)
        self.clock = clock
        self.ops: dict[tuple[str, str], Operator] = {}
        self.op_of_node: dict[str, Operator] = {}
        self.jobs: dict[str, RunPod] = {}
        self._log_dirs: set[Path] = set()
        self.lookup = store_lookup(store)

    # ---- lookups the engine needs ------------------------------------------------------------
    def configmaps(self, namespace: str) -> Callable[[str], dict | None]:
        def get(name: str) -> dict | None:
            obj = self.lookup("ConfigMap", namespace, name)
            return (obj or {}).get("data") if obj else None

        return get

    # ---- driving ------------------------------------------------------------------------------
    def adopt(self, wf: dict) -> Operator:
        ns, name = wf["metadata"].get("namespace", "default"), wf["metadata"]["name"]
        op = Operator(wf, lookup=self.lookup, configmaps=self.configmaps(ns), clock=self.clock)
        self.ops[(ns, name)] = op
        if not wf.get("status", {}).get("phase") or wf["status"]["phase"] == "Pending":
            op.start()
        self.flush(op)
        return op

    def run(
        self,
        namespace: str,
        name: str,
        *,
        on_change: Callable[[dict], None] | None = None,
        stop: threading.Event | None = None,
    ) -> dict:
        """Run one workflow to its end in this process; `on_change` sees each persisted state."""
        op = self.adopt(self.store.get("Workflow", namespace, name))
        if on_change:
            on_change(op.wf)
        while not op.finished and not (stop and stop.is_set()):
            changed = self.step()
            if changed and on_change:
                on_change(op.wf)
        return op.wf

    def step(self) -> bool:
        """One turn: wait for results or timers, feed them to the operators, persist, act."""
        now = self.clock()
        timeout = POLL_SECONDS
        for op in self.ops.values():
            at = op.next_timer()
            if at is not None:
                timeout = max(0.0, min(timeout, at - now))
        results = self.executor.poll(timeout) if self.executor.running() else self._idle(timeout)
        for result in results:
            op = self.op_of_node.pop(result.node_id, None)
            if op is not None:
                op.on_pod_finished(self._finished_event(op, result))
        now = self.clock()
        changed = bool(results)
        for op in list(self.ops.values()):
            for key in op.due_timers(now):
                op.on_timer(key)
                changed = True
            if op.dirty or op.status_dirty:
                changed = True
            self.flush(op)
            if op.finished and not op.running_pods:
                self.ops.pop((op.wf["metadata"].get("namespace", "default"), op.name), None)
        return changed

    def _idle(self, timeout: float) -> list[PodResult]:
        if timeout > 0:
            time.sleep(timeout)
        return []

    def flush(self, op: Operator) -> None:
        """Persist what changed, then carry out the actions that the change implies."""
        if op.dirty or op.status_dirty:
            status = {k: v for k, v in op.status.items() if k != "nodes"}
            nodes = {}
            for node_id in op.dirty:
                node = dict(op.nodes[node_id])
                node.setdefault("message", None)  # merge patch: a cleared message must be removed
                nodes[node_id] = node
            status["nodes"] = nodes
            meta = op.wf["metadata"]
            self.store.patch("Workflow", meta.get("namespace", "default"), meta["name"], {"status": status},
                             return_object=False)
            op.dirty.clear()
            op.status_dirty = False
        for action in op.take_actions():
            if isinstance(action, RunPod):
                self._start_pod(op, action)
            elif isinstance(action, KillPod):
                self.executor.kill(action.node_id, action.reason)
            elif isinstance(action, SaveMemo):
                self._save_memo(op, action)

    def _save_memo(self, op: Operator, action: SaveMemo) -> None:
        """Argo keeps memoized outputs in a ConfigMap, one JSON entry per key."""
        ns = op.wf["metadata"].get("namespace", "default")
        now = nodes_mod.now_rfc3339(self.clock())
        entry = json.dumps({"nodeID": action.node_id, "outputs": action.outputs,
                            "creationTimestamp": now, "lastHitTimestamp": now}, separators=(",", ":"))
        for _ in range(5):
            try:
                self.store.patch("ConfigMap", ns, action.cache, {"data": {action.key: entry}})
                return
            except NotFound:
                try:
                    self.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": action.cache, "namespace": ns, "labels": {
                                           "workflows.argoproj.io/configmap-type": "Cache"}},
                                       "data": {action.key: entry}})
                    return
                except AlreadyExists:
                    continue

    # ---- pods -----------------------------------------------------------------------------------
    def _run_dir(self, op: Operator) -> Path:
        meta = op.wf["metadata"]
        return self.home / "runs" / meta.get("namespace", "default") / meta["name"]

    def log_path(self, namespace: str, workflow: str, node_id: str) -> Path:
        return log_path(self.home, namespace, workflow, node_id)

    def _start_pod(self, op: Operator, action: RunPod) -> None:
        tmpl = action.template
        body = tmpl.get("container") or tmpl.get("script") or {}
        meta = op.wf["metadata"]
        ns = meta.get("namespace", "default")
        # The executor creates the scratch directory; only inputs need it earlier.
        scratch = self._run_dir(op) / f"{action.node_id}-{time.time_ns()}"
        inputs = []
        for art in action.input_artifacts:
            dest = scratch / "inputs" / art["name"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            if "raw" in art:
                dest.write_text(art["raw"].get("data", ""))
            else:
                self.artifacts.load(art, dest)
            inputs.append(InputFile(path=art["path"], source=dest))
        outputs = tmpl.get("outputs") or {}
        env = {e["name"]: str(e.get("value", "")) for e in body.get("env", []) or [] if "value" in e}
        volumes = []
        for mount in body.get("volumeMounts", []) or []:
            host = self.home / "volumes" / ns / meta["name"] / mount["name"]
            host.mkdir(parents=True, exist_ok=True)
            volumes.append(Volume(host, mount["mountPath"], bool(mount.get("readOnly"))))
        job = PodJob(
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
        self.jobs[action.node_id] = action
        self.op_of_node[action.node_id] = op
        self.executor.start(job)

    def _finished_event(self, op: Operator, result: PodResult) -> PodFinished:
        action = self.jobs.pop(result.node_id, None)
        meta = op.wf["metadata"]
        ns = meta.get("namespace", "default")
        log_file = self.log_path(ns, meta["name"], result.node_id)
        if log_file.parent not in self._log_dirs:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_dirs.add(log_file.parent)
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
            location = self.artifacts.save(Path(path), key, archive=kind, **kwargs)
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

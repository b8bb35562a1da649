"""A workflow's pod logs as text lines: finished pods from their saved log file, running pods from
the main.log in their scratch directory, and with `follow` until the workflow finishes."""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.engine import nodes as N
from reconciler.runner.pods import log_path, run_dir, scratch_stem
from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

FINISHED = (N.SUCCEEDED, N.FAILED, N.ERROR)
POLL = 0.25  # seconds between looks at a followed workflow
CHUNK = 1 << 16  # read at a time; also the longest line sent whole (a longer one is sent in pieces,
# as Docker splits log lines at 16 KiB), so memory stays bounded whatever the step printed


def pod_nodes(wf: dict, node: str | None) -> list[dict]:
    nodes = sorted(((wf.get("status") or {}).get("nodes") or {}).values(), key=lambda n: n.get("startedAtUnix") or 0)
    pods = [n for n in nodes if n.get("type") == N.POD]
    if node:
        pods = [n for n in pods if node in (n["id"], n.get("name"), n.get("displayName"), n.get("podName"))]
    return pods


def running_log(home: Path, namespace: str, workflow: str, node_id: str) -> Path | None:
    """The newest scratch main.log of a pod (a pod started again after a restart gets a new one)."""
    pattern = str(run_dir(home, namespace, workflow) / f"{glob.escape(scratch_stem(node_id))}-*" / "main.log")
    found = glob.glob(pattern)
    return Path(max(found, key=lambda p: int(Path(p).parent.name.rsplit("-", 1)[-1] or 0))) if found else None


class _Tail:
    """What has been sent of one pod's log, so the running file and the saved copy join up."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.offset = 0
        self.partial = b""
        self.done = False

    def read(self, path: Path | None, final: bool) -> Iterator[str]:
        """The new lines of `path`, one string per chunk read (not per line: a log of a million
        short lines must not cost a million sends)."""
        if path is not None:
            try:
                with open(path, "rb") as f:
                    f.seek(self.offset)
                    while chunk := f.read(CHUNK):
                        self.offset += len(chunk)
                        *lines, self.partial = (self.partial + chunk).split(b"\n")
                        if len(self.partial) >= CHUNK:  # a line without end: send what there is
                            lines.append(self.partial)
                            self.partial = b""
                        if lines:
                            yield self._lines(lines)
            except FileNotFoundError:
                pass
        if final:
            if self.partial:
                yield self._lines([self.partial])
                self.partial = b""
            self.done = True

    def _lines(self, raw: list[bytes]) -> str:
        if not self.prefix:
            return b"\n".join(raw).decode("utf-8", errors="replace") + "\n"
        return "".join(f"{self.prefix}{line.decode('utf-8', errors='replace')}\n" for line in raw)


class LogNotFound(LookupError):
    pass


def stream_logs(store: ObjectStore, home: Path, namespace: str, name: str, node: str | None,
                follow: bool) -> Iterator[str]:
    """Lines of the workflow's pod logs (`follow`: until it finishes), for `reconciler logs` and
    GET .../log. The checks run before the first line, so a missing workflow or step is an error,
    not an empty stream."""
    try:
        wf = store.get("Workflow", namespace, name)
    except NotFound:
        raise LogNotFound(f"workflow {name!r} not found in namespace {namespace}") from None
    if node and not pod_nodes(wf, node) and ((wf.get("status") or {}).get("phase") in FINISHED or not follow):
        raise LogNotFound(f"workflow {name} has no step {node!r}")
    return _lines(store, home, namespace, name, node, follow, wf)


def _lines(store: ObjectStore, home: Path, namespace: str, name: str, node: str | None, follow: bool,
           wf: dict) -> Iterator[str]:
    tails: dict[str, _Tail] = {}
    while True:
        finished = (wf.get("status") or {}).get("phase") in FINISHED
        for pod in pod_nodes(wf, node):
            tail = tails.setdefault(pod["id"], _Tail("" if node else f"{pod.get('podName') or pod['displayName']}: "))
            if tail.done:
                continue
            done = N.is_fulfilled(pod)
            saved = log_path(home, namespace, name, pod["id"])
            path = saved if done and saved.exists() else running_log(home, namespace, name, pod["id"])
            yield from tail.read(path, final=done or finished or not follow)
        if not follow or finished:
            return
        # an empty chunk lets the server notice a client that went away while nothing is written
        yield ""
        time.sleep(POLL)
        try:
            wf = store.get("Workflow", namespace, name)
        except NotFound:
            return  # deleted while followed

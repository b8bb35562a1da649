"""Change streams as server-sent events, framed as Argo's server frames its watches:

    data: {"result": {"type": "ADDED|MODIFIED|DELETED", "object": {...}}}

- /api/v1/workflow-events/{namespace} (Argo's path), /api/v1/cron-workflow-events/{namespace} and
  /api/v1/environment-events; each also without a namespace for every namespace the token sees.
- listOptions.fieldSelector=metadata.name=X (and metadata.namespace=Y), listOptions.labelSelector=k=v,..
- Without listOptions.resourceVersion (or a Last-Event-ID header) the stream starts with every matching
  object as ADDED, as a Kubernetes watch does; with one it replays the changes after it (410 once that
  history is compacted: list again). Each batch ends with `id: <resourceVersion>` so EventSource's own
  reconnect resumes where it stopped.
- Workflows streamed without a name selector come without status.nodes, as the list does.
- A comment line every HEARTBEAT seconds keeps proxies from closing an idle stream.
All streams share one feed (feed.py); a client too slow to keep up is dropped with an error event.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from reconciler.listing import brief
from reconciler.store.base import ObjectStore
from reconciler.store.errors import Conflict
from reconciler.sync.model import ENVIRONMENT_KIND, SYSTEM_NAMESPACE

from .auth import check_namespace_access, grant_of, require_read
from .common import ApiError, check_name, check_namespace, state_of
from .feed import Feed, Subscriber, coalesce, object_event

router = APIRouter(prefix="/api/v1", tags=["events"])
read = [Depends(require_read)]
HEARTBEAT = float(os.environ.get("RECONCILER_EVENTS_HEARTBEAT", "15"))  # seconds
MAX_SELECTOR = 1000  # characters of a field or label selector


class Selection:
    """Which objects of one kind a stream shows, and how."""

    def __init__(self, kind: str, namespace: str | None, name: str | None, labels: dict[str, str],
                 sees: Callable[[str | None], bool]) -> None:
        self.kind, self.namespace, self.name, self.labels, self.sees = kind, namespace, name, labels, sees

    def namespace_of(self, obj: dict) -> str | None:
        if self.kind == ENVIRONMENT_KIND:  # an environment belongs to the namespace it syncs into
            return (obj.get("spec") or {}).get("namespace")
        return (obj.get("metadata") or {}).get("namespace")

    def matches(self, obj: dict, deleted: bool = False) -> bool:
        meta = obj.get("metadata") or {}
        if self.name and meta.get("name") != self.name:
            return False
        if deleted and self.kind == ENVIRONMENT_KIND:
            return self.sees(None)  # its spec (namespace) is gone: only for tokens that see everything
        namespace = self.namespace_of(obj)
        if self.namespace and namespace != self.namespace:
            return False
        labels = meta.get("labels") or {}
        return self.sees(namespace) and all(labels.get(k) == v for k, v in self.labels.items())

    def shape(self, event: dict) -> dict:
        if self.kind == "Workflow" and not self.name and event["type"] != "DELETED":
            return {"type": event["type"], "object": brief(event["object"])}
        return event

    def store_namespace(self) -> str | None:
        return SYSTEM_NAMESPACE if self.kind == ENVIRONMENT_KIND else self.namespace


def _selectors(field_selector: str | None, label_selector: str | None) -> tuple[str | None, str | None, dict]:
    """(name, namespace, labels) from Kubernetes-style equality selectors; anything else is a 400."""
    name = namespace = None
    for term in _terms(field_selector, "fieldSelector"):
        key, value = term
        if key == "metadata.name":
            name = check_name(value)
        elif key == "metadata.namespace":
            namespace = check_namespace(value)
        else:
            raise ApiError(400, f"listOptions.fieldSelector: unsupported field {key!r} "
                                "(metadata.name and metadata.namespace are)")
    return name, namespace, dict(_terms(label_selector, "labelSelector"))


def _terms(selector: str | None, what: str) -> list[tuple[str, str]]:
    if not selector:
        return []
    if len(selector) > MAX_SELECTOR:
        raise ApiError(400, f"listOptions.{what} is over {MAX_SELECTOR} characters")
    out = []
    for term in selector.split(","):
        key, eq, value = term.strip().partition("=")
        if not eq or not key or key.endswith("!"):
            raise ApiError(400, f"listOptions.{what}: {term!r} is not key=value (only equality is supported)")
        out.append((key.strip(), value.lstrip("=").strip()))
    return out


def _since(header: str | None, query: str | None) -> str | None:
    since = header or query or None
    if since is not None and (not since.isdigit() or len(since) > 20):
        raise ApiError(400, f"resourceVersion {since!r} is not a number")
    return since


def _backlog(store: ObjectStore, sel: Selection, since: str | None) -> tuple[list[dict], int]:
    """What the client has not seen: every matching object (since None) or the changes after `since`."""
    if since is None:
        cursor = int(store.current_version())  # before reading: a later change is sent again, not lost
        if sel.name and sel.kind != ENVIRONMENT_KIND and sel.namespace:
            found = object_event(store, sel.kind, sel.namespace, sel.name, "ADDED")
            events = [] if found["type"] == "DELETED" else [found]
        else:
            ns = sel.store_namespace()
            objs = store.list_brief(sel.kind, ns) if sel.kind == "Workflow" and not sel.name else store.list(
                sel.kind, ns)
            events = [{"type": "ADDED", "object": o} for o in objs]
        return [e for e in events if sel.matches(e["object"])], cursor
    changes, cursor = store.changes(since, sel.kind)
    events = [object_event(store, kind, ns, name, change) for (kind, ns, name), change in coalesce(changes).items()]
    return [e for e in events if sel.matches(e["object"], e["type"] == "DELETED")], int(cursor)


def _frame(events: list[dict], sel: Selection, cursor: int) -> bytes:
    """The batch's events; the last carries `id: cursor` (alone when there is none: an id without data
    moves the client's Last-Event-ID and dispatches nothing)."""
    parts = [f"data: {json.dumps({'result': sel.shape(e)}, separators=(',', ':'))}\n\n" for e in events]
    if parts:
        parts[-1] = f"id: {cursor}\n" + parts[-1]
    else:
        parts.append(f"id: {cursor}\n\n")
    return "".join(parts).encode()


def _error_frame(code: int, message: str) -> bytes:
    return f"data: {json.dumps({'error': {'code': code, 'message': message}})}\n\n".encode()


async def _events(request: Request, sel: Selection, since: str | None) -> StreamingResponse:
    state = state_of(request)
    feed = state.feed
    try:
        sub = feed.subscribe(frozenset({sel.kind}))
    except OverflowError as exc:
        raise ApiError(503, str(exc)) from None
    try:
        backlog, cursor = await run_in_threadpool(_backlog, state.store, sel, since)
    except Conflict as exc:
        feed.unsubscribe(sub)
        raise ApiError(410, f"{exc}: list again, then watch from the list's resourceVersion") from None
    except BaseException:
        feed.unsubscribe(sub)
        raise
    return StreamingResponse(_stream(feed, sub, sel, backlog, cursor), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                      "X-Accel-Buffering": "no"})


async def _stream(feed: Feed, sub: Subscriber, sel: Selection, backlog: list[dict],
                  cursor: int) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 3000\n\n" + _frame(backlog, sel, cursor)
        while True:
            try:
                batch = await asyncio.wait_for(sub.queue.get(), HEARTBEAT)
            except asyncio.TimeoutError:
                yield b": heartbeat\n\n"
                continue
            if batch is None:
                yield _error_frame(503, "this client fell too far behind the change stream and was dropped: "
                                        "reconnect with Last-Event-ID")
                return
            if batch.reset:
                yield _error_frame(410, batch.reset)
                return
            if batch.cursor <= cursor:
                continue  # already covered by the backlog
            cursor = batch.cursor
            events = [e for e in batch.events if sel.matches(e["object"], e["type"] == "DELETED")]
            yield _frame(events, sel, cursor)
    finally:
        feed.unsubscribe(sub)


def _selection(request: Request, kind: str, namespace: str | None, field_selector: str | None,
               label_selector: str | None) -> Selection:
    name, selected_ns, labels = _selectors(field_selector, label_selector)
    if namespace:
        check_namespace(namespace)
        if selected_ns and selected_ns != namespace:
            raise ApiError(400, f"fieldSelector names namespace {selected_ns!r} but the path {namespace!r}")
    namespace = namespace or selected_ns
    grant = grant_of(request)
    if namespace:
        check_namespace_access(request, namespace)
    return Selection(kind, namespace, name, labels, grant.sees)


FIELD = Query(None, alias="listOptions.fieldSelector", description="metadata.name=NAME[,metadata.namespace=NS]")
LABEL = Query(None, alias="listOptions.labelSelector", description="key=value[,key=value]")
VERSION = Query(None, alias="listOptions.resourceVersion", description="replay the changes after this version")


def _route(path: str, kind: str, summary: str) -> None:
    async def namespaced(request: Request, namespace: str, field_selector: str | None = FIELD,
                         label_selector: str | None = LABEL, resource_version: str | None = VERSION
                         ) -> StreamingResponse:
        sel = _selection(request, kind, namespace, field_selector, label_selector)
        return await _events(request, sel, _since(request.headers.get("last-event-id"), resource_version))

    async def everywhere(request: Request, field_selector: str | None = FIELD, label_selector: str | None = LABEL,
                         resource_version: str | None = VERSION) -> StreamingResponse:
        sel = _selection(request, kind, None, field_selector, label_selector)
        return await _events(request, sel, _since(request.headers.get("last-event-id"), resource_version))

    router.add_api_route(f"{path}/{{namespace}}", namespaced, methods=["GET"], dependencies=read,
                         response_class=StreamingResponse, summary=f"{summary} in a namespace (SSE)")
    router.add_api_route(path, everywhere, methods=["GET"], dependencies=read,
                         response_class=StreamingResponse, summary=f"{summary} in every namespace you may read (SSE)")


_route("/workflow-events", "Workflow", "Workflow changes")
_route("/cron-workflow-events", "CronWorkflow", "CronWorkflow changes")
_route("/environment-events", ENVIRONMENT_KIND, "Environment (sync status) changes")

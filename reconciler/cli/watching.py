"""`reconciler get -w NAME` and `list -w`: follow workflow changes, from the local store's watch or,
with --server, from the API's event stream (GET /api/v1/workflow-events/..., resumed after a dropped
connection with Last-Event-ID)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import click

from reconciler.cli.common import fail, print_workflow
from reconciler.store.base import ObjectStore
from reconciler.store.errors import NotFound

FINISHED = ("Succeeded", "Failed", "Error")
MAX_EVENT_BYTES = 64 << 20  # one event's line; a workflow with its nodes fits many times over
MAX_RECONNECTS = 20


def local_events(store: ObjectStore, namespace: str | None, name: str | None) -> Iterator[dict]:
    """Every matching workflow as ADDED, then the store's changes from that moment on."""
    since = store.current_version()
    if name:
        try:
            yield {"type": "ADDED", "object": store.get("Workflow", namespace or "default", name)}
        except NotFound:
            pass
    else:
        for wf in store.list_brief("Workflow", namespace):
            yield {"type": "ADDED", "object": wf}
    for event in store.watch("Workflow", namespace, since=since):
        if name and event["object"]["metadata"]["name"] != name:
            continue
        yield event


def remote_events(api: Any, namespace: str | None, name: str | None) -> Iterator[dict]:
    """The API's workflow event stream; reconnects with Last-Event-ID when the connection drops."""
    path = "/api/v1/workflow-events" + (f"/{quote(namespace, safe='')}" if namespace else "")
    query = {"listOptions.fieldSelector": f"metadata.name={name}"} if name else None
    last_id: str | None = None
    for _ in range(MAX_RECONNECTS):
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        try:
            with api._open("GET", path, query=query, timeout=3600, headers=headers) as resp:
                for raw in iter(lambda: resp.readline(MAX_EVENT_BYTES), b""):
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("data:"):
                        message = json.loads(line[5:])
                        if "error" in message:
                            if message["error"].get("code") == 410:  # history gone: start over from a list
                                last_id = None
                            break
                        yield message["result"]
        except (OSError, ValueError):
            pass  # the connection dropped: reconnect from the last id
    fail(f"the event stream of {api.base} kept failing ({MAX_RECONNECTS} reconnects)", 1)


def show_workflow(events: Iterator[dict], name: str, output: str | None) -> None:
    """Print the workflow each time it changes until it ends; exit 0 only if it Succeeded."""
    try:
        for event in events:
            if event["type"] == "DELETED":
                fail(f"workflow {name} was deleted", 1)
            wf = event["object"]
            if output == "json":
                click.echo(json.dumps(wf, separators=(",", ":")))
            else:
                print_workflow(wf, output)
            phase = (wf.get("status") or {}).get("phase")
            if phase in FINISHED:
                sys.exit(0 if phase == "Succeeded" else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    fail(f"workflow {name} not found", 1)


def show_list(events: Iterator[dict], output: str | None) -> None:
    """One line per change (kubectl get -w): a table row, or with -o json one event per line."""
    try:
        for event in events:
            if output == "json":
                click.echo(json.dumps(event, separators=(",", ":")))
            elif output == "name":
                click.echo(event["object"]["metadata"]["name"])
            else:
                click.echo(_row(event))
                sys.stdout.flush()
    except KeyboardInterrupt:
        sys.exit(130)


def _row(event: dict) -> str:
    meta, status = event["object"]["metadata"], event["object"].get("status") or {}
    phase = "-" if event["type"] == "DELETED" else status.get("phase", "Pending")
    fields = [event["type"], f"{meta.get('namespace', '')}/{meta['name']}", phase, status.get("progress", ""),
              status.get("message", "")]
    return "  ".join(f for f in fields if f)

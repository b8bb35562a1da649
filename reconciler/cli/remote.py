"""The CLI against a daemon's HTTP API: `reconciler --server URL ...` or RECONCILER_SERVER=URL, with
the token from RECONCILER_API_TOKEN (or _FILE).

route(cli) wraps the callbacks of the commands listed in ROUTES: with a server set, the command's
remote form below runs instead of the local one, with the same arguments and the same output (tables
from render.py, -o json the same objects). Commands that only make sense on this machine (LOCAL) run
as usual; any other command refuses with --server rather than quietly acting on the local store.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import click

from reconciler.cli import render
from reconciler.cli.common import (
    check_submit_source,
    console,
    err,
    fail,
    fail_operation,
    list_filters,
    no_latest,
    parse_parameters,
    print_applied,
    print_json,
    print_objects,
    print_submitted,
    print_workflow,
    print_workflows,
    read_manifests,
    read_workflow_file,
)
from reconciler.listing import LATEST

FINISHED = ("Succeeded", "Failed", "Error")
LOCAL = {"up", "lint", "sample-repo", "promote", "rollback", "check"}  # git only, or the daemon itself
POLL = 0.5


class RemoteError(Exception):
    """An error answer of the API; shaped like operations.OperationError for fail_operation."""

    def __init__(self, message: str, status: int, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


class Remote:
    def __init__(self, server: str, token: str | None, timeout: float = 60) -> None:
        parts = urlsplit(server if "://" in server else f"http://{server}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            fail(f"--server {server}: expected a URL such as http://127.0.0.1:8080")
        self.base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.token = token
        self.timeout = timeout

    def _open(self, method: str, path: str, body: Any = None, query: dict | None = None,
              timeout: float | None = None) -> Any:
        url = self.base + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)  # noqa: S310 - the user's URL
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            fail(f"cannot reach the reconciler API at {self.base}: {reason}", 1)

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None,
             timeout: float | None = None) -> Any:
        with self._open(method, path, body, query, timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def lines(self, path: str, query: dict | None = None) -> Iterator[str]:
        with self._open("GET", path, query=query, timeout=3600) as resp:
            for raw in resp:
                yield raw.decode("utf-8", errors="replace").rstrip("\n")


def _error(exc: urllib.error.HTTPError) -> RemoteError:
    try:
        body = json.loads(exc.read())
        message, problems = body.get("message") or str(exc), body.get("problems") or []
    except (ValueError, AttributeError):
        message, problems = f"{exc.code} {exc.reason}", []
    if exc.code == 401:
        message += " (set RECONCILER_API_TOKEN to the daemon's token)"
    return RemoteError(message, exc.code, problems)


def _path(collection: str, namespace: str, name: str = "", action: str = "") -> str:
    """/api/v1/COLLECTION/NAMESPACE[/NAME[/ACTION]], each segment quoted."""
    return "/api/v1/" + "/".join([collection, *(quote(p, safe="") for p in (namespace, name, action) if p)])


def _wf_path(namespace: str, name: str, action: str = "") -> str:
    return _path("workflows", namespace, name, action)


def _client() -> Remote:
    from reconciler.api.settings import ApiConfigError, read_secret

    server = click.get_current_context().find_root().params.get("server")
    try:
        token = read_secret(os.environ, "RECONCILER_API_TOKEN")
    except ApiConfigError as exc:
        fail(str(exc))
    return Remote(server, token)


# ---- workflows ---------------------------------------------------------------------------------------

def list_cmd(api: Remote, namespace: str, all_namespaces: bool, status: str | None, selector: str | None,
             output: str | None, **_: Any) -> None:
    list_filters(status, selector)  # a value that cannot be read fails here, as locally
    query = {"namespace": None if all_namespaces else namespace, "phase": status or None,
             "labelSelector": selector or None, "nodes": "true" if output == "wide" else None}
    print_workflows(api.call("GET", "/api/v1/workflows", query=query)["items"], output)


def get(api: Remote, name: str, namespace: str, output: str | None, **_: Any) -> None:
    if name == LATEST:
        newest = api.call("GET", _path("workflows", namespace), query={"limit": 1})["items"]
        if not newest:
            fail(no_latest(namespace), 1)
        name = newest[0]["metadata"]["name"]
    print_workflow(api.call("GET", _wf_path(namespace, name)), output)


def submit(api: Remote, file: str | None, from_: str | None, parameters: tuple[str, ...], watch: bool, wait: bool,
           namespace: str, output: str | None, **_: Any) -> None:
    check_submit_source(file, from_)
    params = parse_parameters(parameters)
    if file:
        body = {"manifest": read_workflow_file(file), "parameters": params, "filename": file}
    else:
        body = {"from": from_, "parameters": params}
    reply = api.call("POST", _path("workflows", namespace), body)
    for warning in reply.get("warnings", []):
        err.print(warning)
    created = reply["items"]
    print_submitted(created, namespace, output, running=watch or wait)
    if watch or wait:
        phases = [_follow(api, wf, watch=watch, output=output) for wf in created]
        sys.exit(0 if all(p == "Succeeded" for p in phases) else 1)


def _follow(api: Remote, wf: dict, *, watch: bool, output: str | None) -> str:
    """Poll until the daemon has finished the workflow (what run_here does for a local run)."""
    ns, name = wf["metadata"]["namespace"], wf["metadata"]["name"]

    def poll(on_change: Callable[[dict], None] | None = None) -> dict:
        while True:
            current = api.call("GET", _wf_path(ns, name))
            if on_change:
                on_change(current)
            if (current.get("status") or {}).get("phase") in FINISHED:
                return current
            time.sleep(POLL)

    try:
        if watch:
            from rich.live import Live

            with Live(render.workflow_view(wf), console=console, refresh_per_second=8, transient=False) as live:
                final = poll(lambda w: live.update(render.workflow_view(w)))
            console.print()
        else:
            final = poll()
    except KeyboardInterrupt:
        fail(f"interrupted; {name} goes on in the daemon", 130)
    phase = final["status"]["phase"]
    if output == "json":
        print_json(final)
    elif not watch and output != "name":
        console.print(render.workflow_view(final))
    return phase


def delete(api: Remote, names: tuple[str, ...], namespace: str, **_: Any) -> None:
    for name in names:
        api.call("DELETE", _wf_path(namespace, name))
        click.echo(f'Workflow "{name}" deleted')


def logs(api: Remote, name: str, node: str | None, namespace: str, follow: bool = False, **_: Any) -> None:
    for line in api.lines(_wf_path(namespace, name, "log"), {"node": node, "follow": "true" if follow else None}):
        click.echo(line)


def suspend(api: Remote, name: str, namespace: str, **_: Any) -> None:
    api.call("PUT", _wf_path(namespace, name, "suspend"))
    click.echo(f"workflow {name} suspended")


def resume(api: Remote, name: str, node: str | None, parameters: tuple[str, ...], namespace: str, **_: Any) -> None:
    api.call("PUT", _wf_path(namespace, name, "resume"), {"node": node, "parameters": parse_parameters(parameters)})
    click.echo(f"workflow {name} resumed" + (f" (node {node})" if node else ""))


def stop(api: Remote, name: str, namespace: str, **_: Any) -> None:
    api.call("PUT", _wf_path(namespace, name, "stop"))
    click.echo(f"workflow {name} stopped")


def terminate(api: Remote, name: str, namespace: str, **_: Any) -> None:
    api.call("PUT", _wf_path(namespace, name, "terminate"))
    click.echo(f"workflow {name} terminated")


def retry(api: Remote, name: str, wait: bool, namespace: str, **_: Any) -> None:
    wf = api.call("PUT", _wf_path(namespace, name, "retry"))
    click.echo(f"workflow {name} retried")
    if wait:
        sys.exit(0 if _follow(api, wf, watch=False, output=None) == "Succeeded" else 1)


def resubmit(api: Remote, name: str, memoized: bool, parameters: tuple[str, ...], wait: bool, namespace: str,
             output: str | None, **_: Any) -> None:
    created = api.call("PUT", _wf_path(namespace, name, "resubmit"),
                       {"memoized": memoized, "parameters": parse_parameters(parameters)})
    new_name = created["metadata"]["name"]
    click.echo(new_name if output == "name" else f"Name: {new_name}\nResubmitted from: {name}")
    if wait:
        sys.exit(0 if _follow(api, created, watch=False, output=None) == "Succeeded" else 1)


def cron_list(api: Remote, namespace: str, all_namespaces: bool, output: str | None, **_: Any) -> None:
    from reconciler.cli.cron import print_cron_list

    query = {"namespace": None if all_namespaces else namespace}
    print_cron_list(api.call("GET", "/api/v1/cron-workflows", query=query)["items"], output)


def cron_get(api: Remote, name: str, namespace: str, output: str | None, **_: Any) -> None:
    from reconciler.cli.cron import print_cron_workflow

    print_cron_workflow(api.call("GET", _path("cron-workflows", namespace, name)), output)


def _cron_suspend(api: Remote, names: tuple[str, ...], namespace: str, value: bool) -> None:
    from reconciler.cli.cron import set_suspend_each

    set_suspend_each(names, value, lambda name, suspend: api.call(
        "PUT", _path("cron-workflows", namespace, name, "suspend" if suspend else "resume")).get("note"))


def cron_suspend(api: Remote, names: tuple[str, ...], namespace: str, **_: Any) -> None:
    _cron_suspend(api, names, namespace, True)


def cron_resume(api: Remote, names: tuple[str, ...], namespace: str, **_: Any) -> None:
    _cron_suspend(api, names, namespace, False)


def cron_delete(api: Remote, names: tuple[str, ...], namespace: str, force: bool, **_: Any) -> None:
    from reconciler.cli.cron import KIND, delete_each

    delete_each(KIND, names, lambda name: api.call(
        "DELETE", _path("cron-workflows", namespace, name), query={"force": "true" if force else None}).get("note"))


def cron_create(api: Remote, files: tuple[str, ...], namespace: str, output: str | None, **_: Any) -> None:
    from reconciler.cli.cron import print_created

    manifests = [{"filename": name, "manifest": text} for name, text in read_manifests(files)]
    reply = api.call("POST", _path("cron-workflows", namespace), {"manifests": manifests})
    print_created(reply["items"], reply.get("warnings", []), output)


# ---- templates, semaphores, apply --------------------------------------------------------------------

def template_list(api: Remote, namespace: str, cluster: bool, output: str | None, **_: Any) -> None:
    if cluster:
        items = api.call("GET", "/api/v1/cluster-workflow-templates")["items"]
    else:
        items = api.call("GET", "/api/v1/workflow-templates", query={"namespace": namespace})["items"]
    print_objects(items, output)


def _template_path(namespace: str, name: str, cluster: bool) -> str:
    return _path("cluster-workflow-templates", name) if cluster else _path("workflow-templates", namespace, name)


def template_get(api: Remote, name: str, namespace: str, cluster: bool, output: str | None, **_: Any) -> None:
    from reconciler.cli.templates import print_template

    print_template(api.call("GET", _template_path(namespace, name, cluster)), output)


def template_delete(api: Remote, names: tuple[str, ...], namespace: str, cluster: bool, force: bool,
                    **_: Any) -> None:
    from reconciler.cli.cron import delete_each
    from reconciler.cli.templates import kind_of

    delete_each(kind_of(cluster), names, lambda name: api.call(
        "DELETE", _template_path(namespace, name, cluster), query={"force": "true" if force else None}).get("note"))


def semaphore_list(api: Remote, namespace: str, output: str | None, **_: Any) -> None:
    from reconciler.cli.controls import print_locks

    print_locks(api.call("GET", "/api/v1/semaphores", query={"namespace": namespace})["items"], output)


def semaphore_set(api: Remote, name: str, size: int, namespace: str, **_: Any) -> None:
    api.call("PUT", _path("semaphores", namespace), {"ref": name, "size": size})
    click.echo(f"semaphore {name} size {size}")


def apply(api: Remote, files: tuple[str, ...], namespace: str, force: bool, **_: Any) -> None:
    manifests = [{"filename": name, "manifest": text} for name, text in read_manifests(files)]
    reply = api.call("POST", _path("apply", namespace), {"manifests": manifests, "force": force})
    print_applied(reply["items"], reply.get("warnings", []))


# ---- GitOps ------------------------------------------------------------------------------------------

def status(api: Remote, environment: str | None, output: str | None, **_: Any) -> None:
    from reconciler.cli.gitops import print_status

    envs = api.call("GET", "/api/v1/sync/status")["items"]
    if environment:
        envs = [e for e in envs if e["name"] == environment]
        if not envs:
            fail(f"environment {environment!r} has not been synced yet", 1)
    print_status(envs, output)


def sync(api: Remote, environment: str | None, accept_force_push: bool, output: str | None, **_: Any) -> None:
    from reconciler.cli.gitops import print_sync

    if accept_force_push:
        fail("--accept-force-push is not available with --server: run `reconciler sync` where the daemon runs")
    reply = api.call("POST", "/api/v1/sync", query={"wait": "true", "env": environment}, timeout=600)
    if reply.get("error"):
        fail(f"cannot read the repository's environments:\n{reply['error']}")
    print_sync(reply["items"], output)


def diff(api: Remote, environment: str | None, output: str | None, **_: Any) -> None:
    """A dry-run pass in the daemon, on its repository (--repo is the daemon's, not this command's)."""
    from reconciler.cli.gitops import print_diff

    try:
        results = api.call("GET", "/api/v1/sync/diff", query={"env": environment}, timeout=600)["items"]
    except RemoteError as exc:
        if exc.status == 409:  # as the local diff words it: the header, then one problem a line
            fail("\n".join([f"{exc}:", *exc.problems]))
        if exc.status in (404, 503):  # an unknown environment, no repository: bad input, as locally
            fail(str(exc))
        raise
    print_diff(results, output)


def history(api: Remote, environment: str | None, output: str | None, **_: Any) -> None:
    from reconciler.cli.gitops import print_history

    if not environment:
        fail("history needs --env ENV")
    try:
        entries = api.call("GET", f"/api/v1/sync/history/{quote(environment, safe='')}")["items"]
    except RemoteError as exc:
        if exc.status == 404:
            fail(f"environment {environment!r} has not been synced yet", 1)
        raise
    if output == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    print_history(entries, wide=output == "wide")


def _env_suspend(api: Remote, environment: str, suspended: bool, reason: str = "") -> None:
    from reconciler.cli.gitops import print_suspended

    path = f"/api/v1/sync/environments/{quote(environment, safe='')}/{'suspend' if suspended else 'resume'}"
    try:
        env = api.call("PUT", path, {"reason": reason} if suspended else None)
    except RemoteError as exc:
        if exc.status == 404:
            fail(f"environment {environment!r} has not been synced yet (see `reconciler status`)", 1)
        raise
    print_suspended(env)


def env_suspend(api: Remote, environment: str, reason: str, **_: Any) -> None:
    _env_suspend(api, environment, True, reason)


def env_resume(api: Remote, environment: str, **_: Any) -> None:
    _env_suspend(api, environment, False)


ROUTES: dict[tuple[str, ...], Callable[..., None]] = {
    ("list",): list_cmd, ("get",): get, ("submit",): submit, ("delete",): delete, ("logs",): logs,
    ("suspend",): suspend, ("resume",): resume, ("stop",): stop, ("terminate",): terminate, ("retry",): retry,
    ("resubmit",): resubmit, ("cron", "list"): cron_list, ("cron", "get"): cron_get,
    ("cron", "suspend"): cron_suspend, ("cron", "resume"): cron_resume, ("cron", "delete"): cron_delete,
    ("cron", "create"): cron_create, ("template", "list"): template_list, ("template", "get"): template_get,
    ("template", "delete"): template_delete,
    ("semaphore", "list"): semaphore_list, ("semaphore", "set"): semaphore_set, ("apply",): apply,
    ("status",): status, ("sync",): sync, ("diff",): diff, ("history",): history,
    ("env", "suspend"): env_suspend, ("env", "resume"): env_resume,
}


# ---- wiring ------------------------------------------------------------------------------------------

def route(cli: click.Group) -> None:
    """Give every command of `cli` its remote form (see the module docstring)."""
    for path, command in _leaves(cli, ()):
        if path[0] in LOCAL:
            continue
        remote = ROUTES.get(path)
        command.callback = _wrap(command.callback, remote, " ".join(path))


def _leaves(group: click.Group, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def _wrap(local: Callable[..., Any], remote: Callable[..., None] | None, name: str) -> Callable[..., Any]:
    @functools.wraps(local)
    def callback(*args: Any, **kwargs: Any) -> Any:
        if not click.get_current_context().find_root().params.get("server"):
            return local(*args, **kwargs)
        if remote is None:
            fail(f"`reconciler {name}` has no remote form: run it where the daemon's data directory is, "
                 "or unset --server/RECONCILER_SERVER")
        try:
            return remote(_client(), **kwargs)
        except RemoteError as exc:
            fail_operation(exc)

    return callback

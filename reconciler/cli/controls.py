"""Commands that act on workflows already stored: suspend, resume, stop, terminate, retry,
resubmit; the daemon (`up`); and semaphore sizes."""

from __future__ import annotations

import logging
import sys

import click

from reconciler.cli import render
from reconciler.cli.common import console, fail, namespace_option, output_option, print_json
from reconciler.cli.context import Context
from reconciler.cli.running import run_here
from reconciler.engine import nodes as N
from reconciler.engine.resubmission import RetryError, formulate_resubmit, formulate_retry
from reconciler.runner import leases
from reconciler.runner.controls import resume_request
from reconciler.store.errors import AlreadyExists, Conflict, NotFound

FINISHED = (N.SUCCEEDED, N.FAILED, N.ERROR)


def _unfinished(obj: Context, namespace: str, name: str) -> dict:
    wf = obj.get_or_exit("Workflow", namespace, name)
    phase = (wf.get("status") or {}).get("phase")
    if phase in FINISHED:
        fail(f"workflow {name} has already finished ({phase})", 1)
    return wf


def _params(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"-p {item}: expected name=value")
        out[key] = value
    return out


def register(cli: click.Group) -> None:  # noqa: C901 - one command per nested function
    @cli.command()
    @click.option("--repo", envvar="RECONCILER_REPO", default=None,
                  help="Workflow repository (URL or path) to keep the environments in sync with.")
    @click.option("--poll-interval", envvar="RECONCILER_POLL_INTERVAL", type=click.FloatRange(min=0.1),
                  default=30.0, show_default=True, help="Seconds between sync passes.")
    @click.option("--max-running", type=int, default=None,
                  help="Default cap on running workflows per namespace (ConfigMap reconciler-limits overrides).")
    @click.option("--isolation", type=click.Choice(["auto", "bwrap", "tmpdir"]), default="auto")
    @click.option("--grace", type=float, default=10.0, show_default=True,
                  help="Seconds running steps get to finish on SIGTERM.")
    @click.option("--log-level", default="INFO", show_default=True)
    @click.pass_obj
    def up(obj: Context, repo: str | None, poll_interval: float, max_running: int | None, isolation: str,
           grace: float, log_level: str) -> None:
        """Run the daemon: drive every unfinished workflow in the store until stopped."""
        from reconciler.daemon import Daemon

        logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        daemon = Daemon(obj.home, repo=repo, poll_interval=poll_interval, max_running=max_running,
                        isolation=isolation, grace=grace)
        daemon.install_signal_handlers()
        daemon.run()

    @cli.command()
    @click.argument("name")
    @namespace_option
    @click.pass_obj
    def suspend(obj: Context, name: str, namespace: str) -> None:
        """Suspend a workflow: no new step starts; running steps finish."""
        _unfinished(obj, namespace, name)
        obj.store.patch("Workflow", namespace, name, {"spec": {"suspend": True}}, return_object=False)
        click.echo(f"workflow {name} suspended")

    @cli.command()
    @click.argument("name")
    @click.option("--node", help="Resume only this suspend node (id, name or display name).")
    @click.option("-p", "--parameter", "parameters", multiple=True,
                  help="name=value for an output parameter of the node (like `argo node set`); needs --node.")
    @namespace_option
    @click.pass_obj
    def resume(obj: Context, name: str, node: str | None, parameters: tuple[str, ...], namespace: str) -> None:
        """Resume a suspended workflow and its suspend nodes, or one suspend node."""
        wf = _unfinished(obj, namespace, name)
        params = _params(parameters)
        if params and not node:
            fail("-p needs --node: output parameters belong to one suspend node")
        if node:
            found = [n for n in ((wf.get("status") or {}).get("nodes") or {}).values()
                     if node in (n["id"], n["name"], n["displayName"])]
            if not found:
                fail(f"workflow {name} has no node {node!r}", 1)
            if found[0]["type"] != N.SUSPEND or N.is_fulfilled(found[0]):
                fail(f"node {node!r} is not a waiting suspend node ({found[0]['type']}, {found[0]['phase']})", 1)
        patch: dict = {"metadata": {"annotations": resume_request(node, params)}}
        if not node:
            patch["spec"] = {"suspend": None}
        obj.store.patch("Workflow", namespace, name, patch, return_object=False)
        click.echo(f"workflow {name} resumed" + (f" (node {node})" if node else ""))

    def _shutdown(obj: Context, name: str, namespace: str, how: str) -> None:
        _unfinished(obj, namespace, name)
        obj.store.patch("Workflow", namespace, name, {"spec": {"shutdown": how}}, return_object=False)
        click.echo(f"workflow {name} {'stopped' if how == 'Stop' else 'terminated'}")

    @cli.command()
    @click.argument("name")
    @namespace_option
    @click.pass_obj
    def stop(obj: Context, name: str, namespace: str) -> None:
        """Kill running steps, run the exit handler, end as Failed ("Stopped")."""
        _shutdown(obj, name, namespace, "Stop")

    @cli.command()
    @click.argument("name")
    @namespace_option
    @click.pass_obj
    def terminate(obj: Context, name: str, namespace: str) -> None:
        """Kill running steps and end as Failed ("Terminated"), without the exit handler."""
        _shutdown(obj, name, namespace, "Terminate")

    @cli.command()
    @click.argument("name")
    @click.option("--wait", is_flag=True, help="Run it here and return when it ends.")
    @namespace_option
    @click.pass_obj
    def retry(obj: Context, name: str, wait: bool, namespace: str) -> None:
        """Run the failed and errored nodes of a finished workflow again, keeping succeeded ones."""
        wf = obj.get_or_exit("Workflow", namespace, name)
        try:
            wf["status"] = formulate_retry(wf)
        except RetryError as exc:
            fail(str(exc), 1)
        wf["spec"].pop("shutdown", None)
        runner = obj.runner() if wait else None
        ann = wf["metadata"].setdefault("annotations", {})
        ann.update(runner.claim_patch() if runner else leases.released_annotations())
        wf["metadata"]["annotations"] = {k: v for k, v in ann.items() if v is not None}
        try:
            obj.store.update(wf)
        except Conflict:
            fail(f"workflow {name} changed while retrying it; try again", 1)
        click.echo(f"workflow {name} retried")
        if wait:
            sys.exit(0 if run_here(obj, runner, wf, watch=False, output=None) == N.SUCCEEDED else 1)

    @cli.command()
    @click.argument("name")
    @click.option("--memoized", is_flag=True, help="Reuse the outputs of steps that succeeded with the same inputs.")
    @click.option("-p", "--parameter", "parameters", multiple=True, help="name=value: override a workflow argument.")
    @click.option("--wait", is_flag=True, help="Run it here and return when it ends.")
    @namespace_option
    @output_option
    @click.pass_obj
    def resubmit(obj: Context, name: str, memoized: bool, parameters: tuple[str, ...], wait: bool, namespace: str,
                 output: str | None) -> None:
        """Submit a new workflow with the same spec and parameters."""
        wf = obj.get_or_exit("Workflow", namespace, name)
        new = formulate_resubmit(wf, memoized=memoized, parameters=_params(parameters))
        runner = obj.runner() if wait else None
        if runner:
            new["metadata"]["annotations"].update(runner.claim_patch())
        created = obj.store.create(new)
        new_name = created["metadata"]["name"]
        click.echo(new_name if output == "name" else f"Name: {new_name}\nResubmitted from: {name}")
        if wait:
            sys.exit(0 if run_here(obj, runner, created, watch=False, output=None) == N.SUCCEEDED else 1)

    @cli.group()
    def semaphore() -> None:
        """Semaphore sizes and who holds locks."""

    @semaphore.command("set")
    @click.argument("name", metavar="CONFIGMAP/KEY")
    @click.argument("size", type=click.IntRange(min=0))
    @namespace_option
    @click.pass_obj
    def semaphore_set(obj: Context, name: str, size: int, namespace: str) -> None:
        """Set a semaphore's size: the ConfigMap key its configMapKeyRef names.

        The namespace cap on running workflows is reconciler-limits/maxRunningWorkflows."""
        cm, sep, key = name.partition("/")
        if not sep or not cm or not key:
            fail(f"{name}: expected CONFIGMAP/KEY, as in a semaphore's configMapKeyRef")
        for _ in range(5):
            try:
                obj.store.patch("ConfigMap", namespace, cm, {"data": {key: str(size)}}, return_object=False)
                break
            except NotFound:
                try:
                    obj.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": cm, "namespace": namespace}, "data": {key: str(size)}})
                    break
                except AlreadyExists:
                    continue
        click.echo(f"semaphore {cm}/{key} size {size}")

    @semaphore.command("list")
    @namespace_option
    @output_option
    @click.pass_obj
    def semaphore_list(obj: Context, namespace: str, output: str | None) -> None:
        """Mutexes and semaphores in use, with their holders."""
        locks = obj.store.list("Lock", namespace)
        if output == "json":
            print_json(locks)
            return
        rows = [{"metadata": lk["metadata"], "spec": lk.get("spec", {}), "status": lk.get("status", {})}
                for lk in locks]
        console.print(render.objects_table(rows, [
            ("HELD", lambda o: f"{len(o['status'].get('holders', []))}/{o['status'].get('size', '-')}"),
            ("HOLDERS", lambda o: ", ".join(o["status"].get("holders", []))),
        ]))

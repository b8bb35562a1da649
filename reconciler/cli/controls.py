"""Commands that act on workflows already stored: suspend, resume, stop, terminate, retry,
resubmit; the daemon (`up`); and semaphore sizes."""

from __future__ import annotations

import logging
import sys

import click

from reconciler import operations
from reconciler.cli import render
from reconciler.cli.common import console, fail_operation, namespace_option, output_option, parse_parameters, print_json
from reconciler.cli.context import Context
from reconciler.cli.running import run_here
from reconciler.cli.steps import step_options, step_settings
from reconciler.engine import nodes as N


def _do(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except operations.OperationError as exc:
        fail_operation(exc)


def _load_config(ctx: click.Context, _param: click.Parameter, path: str | None) -> str | None:
    """--config / RECONCILER_CONFIG: the file's settings become the defaults of the other options,
    so a flag or an environment variable still wins over the file."""
    if not path:
        return path
    from reconciler.config import DAEMON_CONFIG_OPTIONS, ConfigError, load_daemon_config

    try:
        data = load_daemon_config(path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="--config") from None
    ctx.meta["limits"] = data.get("limits") or {}  # resolved in `up`, under the environment variables
    ctx.default_map = {**(ctx.default_map or {}),
                       **{DAEMON_CONFIG_OPTIONS[k]: v for k, v in data.items() if k in DAEMON_CONFIG_OPTIONS}}
    import os

    from reconciler.config import config_environment

    for var, value in config_environment(data).items():
        os.environ.setdefault(var, value)
    if data.get("home") and ctx.obj is not None and ctx.obj._home_arg is None:
        ctx.obj._home_arg = data["home"]
    ctx.meta["reconciler.config"] = path  # hidden from steps
    return path


def _private_home(obj: Context) -> None:
    """The daemon's files are its owner's only: umask 077 for all it creates, and what an older
    version created is tightened now (said in the log)."""
    import os

    from reconciler.config import DAEMON_UMASK, tighten_home

    os.umask(DAEMON_UMASK)
    for change in tighten_home(obj.home):
        logging.getLogger("reconciler.daemon").warning("data directory: removed group/other access: %s", change)


def register(cli: click.Group) -> None:  # noqa: C901 - one command per nested function
    @cli.command()
    @click.option("--config", envvar="RECONCILER_CONFIG", type=click.Path(dir_okay=False), is_eager=True,
                  callback=_load_config, expose_value=False,
                  help="A YAML file of these settings (see reconciler/spec/schemas/daemon-config.json).")
    @click.option("--repo", envvar="RECONCILER_REPO", default=None,
                  help="Workflow repository (URL or path) to keep the environments in sync with.")
    @click.option("--poll-interval", envvar="RECONCILER_POLL_INTERVAL", type=click.FloatRange(min=0.1),
                  default=30.0, show_default=True, help="Seconds between sync passes.")
    @click.option("--max-running", type=int, default=None,
                  help="Default cap on running workflows per namespace (ConfigMap reconciler-limits overrides).")
    @click.option("--grace", type=float, default=10.0, show_default=True,
                  help="Seconds running steps get to finish on SIGTERM.")
    @click.option("--max-daemon-deaths", envvar="RECONCILER_MAX_DAEMON_DEATHS", type=click.IntRange(min=0),
                  default=3, show_default=True,
                  help="Fail a workflow once the daemon died this many times while running one of its nodes "
                       "(0: never). See docs/RUNS.md.")
    @click.option("--listen", envvar="RECONCILER_LISTEN", default=None, metavar="HOST:PORT",
                  help="Address of the HTTP API (default 127.0.0.1:8080; 'off': none). See docs/API.md.")
    @click.option("--api-tokens", envvar="RECONCILER_API_TOKENS", default=None, metavar="FILE",
                  type=click.Path(dir_okay=False),
                  help="Scoped API tokens: a YAML/JSON file of token digests, namespaces and verbs (docs/API.md).")
    @click.option("--log-level", default="INFO", show_default=True)
    @click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True,
                  help="auto: text on a terminal, JSON lines otherwise.")
    @step_options
    @click.pass_obj
    def up(obj: Context, listen: str | None, repo: str | None, poll_interval: float, max_running: int | None,
           grace: float, max_daemon_deaths: int, api_tokens: str | None, log_level: str, log_format: str,
           keep_scratch: bool, **steps) -> None:
        """Run the daemon: drive every unfinished workflow in the store until stopped."""
        from reconciler import limits, logs
        from reconciler.api.settings import ApiConfigError, api_settings
        from reconciler.daemon import Daemon

        logs.configure(log_level, log_format)
        try:
            limits.configure(limits.resolve(click.get_current_context().meta.get("limits")))
        except limits.LimitError as exc:
            raise click.ClickException(str(exc)) from None
        logging.getLogger("reconciler.daemon").info("limits: %s", limits.describe(limits.current()))
        _private_home(obj)

        from reconciler.source.credentials import CredentialsError, from_environment, split_url

        try:
            api = api_settings(listen, tokens_file=api_tokens)
            from_environment()  # RECONCILER_GIT_PASSWORD(_FILE) readable, before anything starts
        except (ApiConfigError, CredentialsError) as exc:
            raise click.ClickException(str(exc)) from None
        if repo and split_url(repo)[1] and \
                click.get_current_context().get_parameter_source("repo") == click.core.ParameterSource.COMMANDLINE:
            logging.getLogger("reconciler.daemon").warning(
                "--repo carries credentials: git never sees them, but they are in this process's own arguments "
                "(ps); set RECONCILER_REPO, the config file's repo, or RECONCILER_GIT_USERNAME/_PASSWORD instead")
        from reconciler.config import ConfigError

        config = click.get_current_context().meta.get("reconciler.config")
        settings = step_settings(obj.home, **{**steps, "hide": (*steps["hide"], *([config] if config else []))})
        try:
            daemon = Daemon(obj.home, repo=repo, poll_interval=poll_interval, max_running=max_running,
                            steps=settings, keep_scratch=keep_scratch, grace=grace, api=api,
                            max_deaths=max_daemon_deaths)
        except (ConfigError, ValueError) as exc:  # the backend's settings
            raise click.ClickException(str(exc)) from None
        except RuntimeError as exc:  # the sandbox cannot run here
            raise click.ClickException(f"{exc}\nSteps would run without a sandbox, sharing the daemon's trust; "
                                       "to accept that, pass --isolation tmpdir (see docs/SECURITY.md)") from None
        daemon.install_signal_handlers()
        daemon.run()

    @cli.command()
    @click.argument("name")
    @namespace_option
    @click.pass_obj
    def suspend(obj: Context, name: str, namespace: str) -> None:
        """Suspend a workflow: no new step starts; running steps finish."""
        _do(operations.suspend, obj.store, namespace, name)
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
        _do(operations.resume, obj.store, namespace, name, node, parse_parameters(parameters))
        click.echo(f"workflow {name} resumed" + (f" (node {node})" if node else ""))

    def _shutdown(obj: Context, name: str, namespace: str, how: str) -> None:
        _do(operations.shutdown, obj.store, namespace, name, how)
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
        runner = obj.runner() if wait else None
        wf = _do(operations.retry, obj.store, namespace, name, claim=runner.claim_patch() if runner else None)
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
        runner = obj.runner() if wait else None
        created = _do(operations.resubmit, obj.store, namespace, name, memoized=memoized,
                      parameters=parse_parameters(parameters), claim=runner.claim_patch() if runner else None)
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
        _do(operations.set_semaphore, obj.store, namespace, name, size)
        click.echo(f"semaphore {name} size {size}")

    @semaphore.command("list")
    @namespace_option
    @output_option
    @click.pass_obj
    def semaphore_list(obj: Context, namespace: str, output: str | None) -> None:
        """Mutexes and semaphores in use, with their holders."""
        print_locks(obj.store.list("Lock", namespace), output)


def print_locks(locks: list[dict], output: str | None) -> None:
    """`semaphore list`: the Lock objects as JSON, or a table of holders (shared with its remote form)."""
    if output == "json":
        print_json(locks)
        return
    rows = [{"metadata": lk["metadata"], "spec": lk.get("spec", {}), "status": lk.get("status", {})}
            for lk in locks]
    console.print(render.objects_table(rows, [
        ("HELD", lambda o: f"{len(o['status'].get('holders', []))}/{o['status'].get('size', '-')}"),
        ("HOLDERS", lambda o: ", ".join(o["status"].get("holders", []))),
    ]))

"""`reconciler`: a CLI shaped like `argo` and `kubectl`, on the embedded store by default."""

from __future__ import annotations

import os
import sys

import click

from reconciler import listing, manifests, operations
from reconciler.cli import controls, cron, doctor, gitops, promotion, remote, templates, watching
from reconciler.cli.common import (
    check_submit_source,
    err,
    fail,
    fail_operation,
    from_option,
    list_filters,
    namespace_option,
    no_latest,
    output_option,
    parse_parameters,
    print_applied,
    print_submitted,
    print_workflow,
    print_workflows,
    read_manifests,
    read_workflow_file,
    selector_option,
    status_option,
)
from reconciler.cli.context import Context
from reconciler.cli.running import run_here
from reconciler.config import BACKENDS
from reconciler.spec import lint_paths
from reconciler.spec.validation import collect_files
from reconciler.store.errors import DamagedStore, StoreError
from reconciler.sync.worktree import repository_problems


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="RECONCILER_HOME", type=click.Path(file_okay=False), help="Data directory.")
@click.option("--server", envvar="RECONCILER_SERVER", metavar="URL",
              help="A daemon's HTTP API to work through (token: RECONCILER_API_TOKEN); see docs/API.md.")
@click.option("--backend", envvar="RECONCILER_BACKEND", type=click.Choice(BACKENDS), default=None,
              help="Where objects are stored: sqlite in the data directory (default) or a Kubernetes cluster.")
@click.option("--context", "kube_context", envvar="RECONCILER_KUBE_CONTEXT", metavar="NAME", default=None,
              help="KUBECONFIG context for --backend kubernetes (in a Pod: its service account).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, server: str | None, backend: str | None,
        kube_context: str | None) -> None:
    """Run Argo-format workflows without a cluster, and keep them in sync with git."""
    # The environment carries the choice to the daemon's threads and to every process started from here.
    if backend:
        os.environ["RECONCILER_BACKEND"] = backend
    if kube_context:
        os.environ["RECONCILER_KUBE_CONTEXT"] = kube_context
    ctx.obj = Context(home)
    ctx.call_on_close(ctx.obj.close)




def _problems_or_exit(problems: list) -> None:
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        err.print(str(p), markup=False, highlight=False)
    if errors:
        sys.exit(2)


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@from_option
@click.option("-p", "--parameter", "parameters", multiple=True, help="name=value, repeatable.")
@click.option("--watch", is_flag=True, help="Run it and redraw the node tree until it ends.")
@click.option("--wait", is_flag=True, help="Run it and return when it ends; exit 0 only if Succeeded.")
@namespace_option
@output_option
@click.pass_obj
def submit(obj: Context, file: str | None, from_: str | None, parameters, watch: bool, wait: bool, namespace: str,
           output: str | None) -> None:
    """Submit a Workflow file, or one --from a template or cron workflow (and run it with --wait or --watch)."""
    check_submit_source(file, from_)
    params = parse_parameters(parameters)
    text = read_workflow_file(file) if file else None
    # Run here: the workflow is created already leased to this process, so a daemon never takes it.
    runner = obj.runner() if (watch or wait) else None
    claim = runner.claim_patch() if runner else None
    try:
        if text is None:
            created, warnings = operations.submit_from(obj.store, from_, namespace, params, annotations=claim)
        else:
            created, warnings = operations.submit_text(obj.store, text, file, namespace, params, annotations=claim)
    except operations.OperationError as exc:
        fail_operation(exc)
    _problems_or_exit(warnings)
    print_submitted(created, namespace, output, running=watch or wait)
    if not (watch or wait):
        return
    phases = [run_here(obj, runner, wf, watch=watch, output=output) for wf in created]
    sys.exit(0 if all(p == "Succeeded" for p in phases) else 1)


@cli.command("list")
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True)
@status_option
@selector_option
@click.option("-w", "--watch", is_flag=True, help="Then print a line per change until interrupted.")
@output_option
@click.pass_obj
def list_cmd(obj: Context, namespace: str, all_namespaces: bool, status: str | None, selector: str | None,
             watch: bool, output: str | None) -> None:
    """List workflows, newest first (-o wide: with pod counts and parameters; -w: then every change)."""
    phases, terms = list_filters(status, selector)
    ns = None if all_namespaces else namespace
    if watch:
        watching.show_list(watching.local_events(obj.store, ns, None), output)
        return
    # -o wide counts pods: only it reads the nodes
    items = obj.store.list("Workflow", ns) if output == "wide" else obj.store.list_brief("Workflow", ns)
    print_workflows(listing.select(items, phases, terms), output)


@cli.command()
@click.argument("name")
@click.option("-w", "--watch", is_flag=True, help="Print it again at each change until it ends.")
@namespace_option
@output_option
@click.pass_obj
def get(obj: Context, name: str, namespace: str, watch: bool, output: str | None) -> None:
    """Show a workflow and its node tree (NAME @latest: the namespace's newest workflow; -w: follow it)."""
    if name == listing.LATEST:
        name = listing.latest(obj.store, namespace) or fail(no_latest(namespace), 1)
    if watch:
        watching.show_workflow(watching.local_events(obj.store, namespace, name), name, output)
    try:
        wf = operations.get_workflow(obj.store, namespace, name, elsewhere=lambda _: True)
    except operations.OperationError as exc:
        fail_operation(exc)
    print_workflow(wf, output)


@cli.command()
@click.argument("name")
@click.option("--node", help="Only this node (id, name or display name).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the workflow ends.")
@namespace_option
@click.pass_obj
def logs(obj: Context, name: str, node: str | None, follow: bool, namespace: str) -> None:
    """Print the logs of a workflow's steps (-f: and follow them until it ends)."""
    from reconciler.runner.logstream import LogNotFound, stream_logs

    try:
        for line in stream_logs(obj.store, obj.home, namespace, name, node, follow):
            if line:
                click.echo(line, nl=False)
    except LogNotFound as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        pass


@cli.command()
@click.argument("names", nargs=-1, required=True)
@namespace_option
@click.pass_obj
def delete(obj: Context, names: tuple[str, ...], namespace: str) -> None:
    """Delete workflows (and their artifacts and logs)."""
    for name in names:
        try:
            operations.delete(obj.store, obj.home, namespace, name)
        except operations.OperationError as exc:
            fail_operation(exc)
        click.echo(f'Workflow "{name}" deleted')


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--env", "environment", metavar="ENV",
              help="Inside a workflow repository: only this environment's overrides and policies.")
@click.option("--no-policies", is_flag=True, help="Check the files alone, even inside a workflow repository.")
@click.pass_obj
def lint(obj: Context, paths: tuple[str, ...], environment: str | None, no_policies: bool) -> None:
    """Check workflow files; report every problem; exit 2 if any is an error.

    Inside a repository with a reconciler.yaml, the files are also built into each environment as
    the sync would (overrides, limits, policies); those problems name the environments.
    """
    problems = lint_paths(list(paths), template_lookup=obj.lookup)
    if not no_policies:
        try:
            problems += repository_problems(paths, problems, template_lookup=obj.lookup, environment=environment)
        except (KeyError, LookupError) as exc:
            fail(str(exc.args[0]))
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        err.print(str(p), markup=False, highlight=False)
    if errors:
        sys.exit(2)
    files = len(collect_files(list(paths))[0])
    click.echo(f"no problems found in {files} file{'' if files == 1 else 's'}" if not problems
               else f"no errors in {files} file{'' if files == 1 else 's'} (warnings above)")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@namespace_option
@click.option("--force", is_flag=True, help="Also replace objects git manages (the next sync restores them).")
@click.pass_obj
def apply(obj: Context, files: tuple[str, ...], namespace: str, force: bool) -> None:
    """Store WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and ConfigMaps."""
    try:
        lines, warnings = manifests.apply_manifests(obj.store, read_manifests(files), namespace, force=force)
    except operations.OperationError as exc:
        fail_operation(exc)
    print_applied(lines, warnings)


@cli.command()
@click.option("--apply", "apply_them", is_flag=True,
              help="Create or update them in the cluster of --backend kubernetes instead of printing them.")
@click.pass_obj
def crds(obj: Context, apply_them: bool) -> None:
    """The CustomResourceDefinitions of the kinds the reconciler stores that Kubernetes lacks, as YAML."""
    import yaml

    from reconciler.store.kinds import all_crds

    if not apply_them:
        click.echo(yaml.safe_dump_all(all_crds(), sort_keys=False), nl=False)
        return
    install = getattr(obj.store, "install_crds", None)
    if install is None:
        fail("crds --apply needs --backend kubernetes (RECONCILER_BACKEND=kubernetes)")
    install()
    click.echo(f"{len(all_crds())} CustomResourceDefinitions applied")


controls.register(cli)
doctor.register(cli)
gitops.register(cli)
promotion.register(cli)
cron.register(cli)
templates.register(cli)
remote.route(cli)  # with --server/RECONCILER_SERVER, commands go through the daemon's API


def main() -> None:
    try:
        cli()
    except StoreError as exc:
        # One line (for a damaged store: naming the file and the way out), from any command, `up`
        # included; never a traceback.
        err.print(str(exc) if isinstance(exc, DamagedStore) else f"store: {exc}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()

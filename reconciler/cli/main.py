"""`reconciler`: a CLI shaped like `argo` and `kubectl`, on the embedded store by default."""

from __future__ import annotations

import os
import sys

import click

from reconciler import operations
from reconciler.cli import controls, cron, gitops, remote, render
from reconciler.cli.common import (
    err,
    fail,
    fail_operation,
    namespace_option,
    output_option,
    parse_parameters,
    print_applied,
    print_objects,
    print_submitted,
    print_workflow,
    read_manifests,
    read_workflow_file,
)
from reconciler.cli.context import Context
from reconciler.cli.running import run_here
from reconciler.config import BACKENDS
from reconciler.spec import lint_paths


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
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--parameter", "parameters", multiple=True, help="name=value, repeatable.")
@click.option("--watch", is_flag=True, help="Run it and redraw the node tree until it ends.")
@click.option("--wait", is_flag=True, help="Run it and return when it ends; exit 0 only if Succeeded.")
@namespace_option
@output_option
@click.pass_obj
def submit(obj: Context, file: str, parameters, watch: bool, wait: bool, namespace: str, output: str | None) -> None:
    """Submit a Workflow file (and run it with --wait or --watch)."""
    params = parse_parameters(parameters)
    text = read_workflow_file(file)
    # Run here: the workflow is created already leased to this process, so a daemon never takes it.
    runner = obj.runner() if (watch or wait) else None
    try:
        created, warnings = operations.submit_text(obj.store, text, file, namespace, params,
                                                   annotations=runner.claim_patch() if runner else None)
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
@output_option
@click.pass_obj
def list_cmd(obj: Context, namespace: str, all_namespaces: bool, output: str | None) -> None:
    """List workflows."""
    items = obj.store.list_brief("Workflow", None if all_namespaces else namespace)
    items.sort(key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)
    print_objects([_brief(w) for w in items], output, render.workflows_table)


def _brief(wf: dict) -> dict:
    status = wf.get("status") or {}
    return {"metadata": wf["metadata"], "status": {k: v for k, v in status.items() if k != "nodes"}}


@cli.command()
@click.argument("name")
@namespace_option
@output_option
@click.pass_obj
def get(obj: Context, name: str, namespace: str, output: str | None) -> None:
    """Show a workflow and its node tree."""
    wf = obj.get_or_exit("Workflow", namespace, name)
    print_workflow(wf, output)
    if output not in ("json", "yaml") and obj.executor_isolation() != "bwrap":
        err.print(f"note: steps run with isolation '{obj.executor_isolation()}' "
                  "(no private filesystem view)")


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
@click.pass_obj
def lint(obj: Context, paths: tuple[str, ...]) -> None:
    """Check workflow files; report every problem; exit 2 if any is an error."""
    problems = lint_paths(list(paths), template_lookup=obj.lookup)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        err.print(str(p), markup=False, highlight=False)
    if errors:
        sys.exit(2)
    click.echo(f"no problems found in {len(paths)} path(s)" if not problems else "no errors (warnings above)")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@namespace_option
@click.pass_obj
def apply(obj: Context, files: tuple[str, ...], namespace: str) -> None:
    """Store WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and ConfigMaps."""
    try:
        lines, warnings = operations.apply_manifests(obj.store, read_manifests(files), namespace)
    except operations.OperationError as exc:
        fail_operation(exc)
    print_applied(lines, warnings)


@cli.group()
def template() -> None:
    """WorkflowTemplates."""


@template.command("list")
@namespace_option
@click.option("--cluster", is_flag=True, help="ClusterWorkflowTemplates instead.")
@output_option
@click.pass_obj
def template_list(obj: Context, namespace: str, cluster: bool, output: str | None) -> None:
    kind = "ClusterWorkflowTemplate" if cluster else "WorkflowTemplate"
    print_objects(obj.store.list(kind, "" if cluster else namespace), output)


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
gitops.register(cli)
cron.register(cli)
remote.route(cli)  # with --server/RECONCILER_SERVER, commands go through the daemon's API


def main() -> None:
    from reconciler.store.errors import StoreError

    try:
        cli()
    except StoreError as exc:  # e.g. the cluster of --backend kubernetes unreachable after the retries
        err.print(f"error: store: {exc}", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()

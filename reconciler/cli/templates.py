"""`reconciler template list|get|delete`: WorkflowTemplates (ClusterWorkflowTemplates with --cluster), as
`argo template` shows them. Registered by main.py with `register(cli)`."""

from __future__ import annotations

import time

import click

from reconciler import manifests, operations
from reconciler.cli import render
from reconciler.cli.common import console, fail_operation, namespace_option, output_option, print_json, print_objects
from reconciler.cli.context import Context
from reconciler.cli.cron import delete_each, delete_stored

cluster_option = click.option("--cluster", is_flag=True, help="ClusterWorkflowTemplates instead.")


def register(cli: click.Group) -> None:
    cli.add_command(template)


def kind_of(cluster: bool) -> str:
    return "ClusterWorkflowTemplate" if cluster else "WorkflowTemplate"


@click.group()
def template() -> None:
    """WorkflowTemplates: list, inspect and delete them."""


@template.command("list")
@namespace_option
@cluster_option
@output_option
@click.pass_obj
def template_list(obj: Context, namespace: str, cluster: bool, output: str | None) -> None:
    """List WorkflowTemplates (--cluster: ClusterWorkflowTemplates)."""
    print_objects(obj.store.list(kind_of(cluster), "" if cluster else namespace), output)


@template.command("get")
@click.argument("name")
@namespace_option
@cluster_option
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None)
@click.pass_obj
def template_get(obj: Context, name: str, namespace: str, cluster: bool, output: str | None) -> None:
    """Show one WorkflowTemplate: its entrypoint, templates, arguments and where it comes from."""
    try:
        item = manifests.get_object(obj.store, kind_of(cluster), "" if cluster else namespace, name)
    except operations.OperationError as exc:
        fail_operation(exc)
    print_template(item, output)


def print_template(item: dict, output: str | None) -> None:
    """One template as `template get` shows it (shared with its remote form)."""
    if output == "json":
        print_json(item)
        return
    if output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(item, sort_keys=False))
        return
    meta, spec = item["metadata"], item.get("spec") or {}
    rows = [("Name:", meta["name"])]
    if meta.get("namespace"):
        rows.append(("Namespace:", meta["namespace"]))
    rows.append(("Created:", f"{meta.get('creationTimestamp', '')} "
                             f"({render.age(meta.get('creationTimestamp'), time.time())} ago)"))
    rows.append(("Entrypoint:", spec.get("entrypoint") or "none"))
    names = [t.get("name", "") for t in spec.get("templates") or [] if isinstance(t, dict)]
    rows.append(("Templates:", ", ".join(names) or "none"))
    for param in (spec.get("arguments") or {}).get("parameters") or []:
        rows.append((f"  {param.get('name')}:", str(param.get("value", ""))))
    console.print(render.details_grid(rows + render.management_rows(item)))


@template.command("delete")
@click.argument("names", nargs=-1, required=True)
@namespace_option
@cluster_option
@click.option("--force", is_flag=True, help="Also a WorkflowTemplate git manages (the next sync recreates it).")
@click.pass_obj
def template_delete(obj: Context, names: tuple[str, ...], namespace: str, cluster: bool, force: bool) -> None:
    """Delete WorkflowTemplates (workflows already created from them keep their copy)."""
    kind = kind_of(cluster)
    delete_each(kind, names, lambda name: delete_stored(obj, "" if cluster else namespace, name, force, kind))

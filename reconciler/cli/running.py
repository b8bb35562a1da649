"""Running a workflow in the CLI's own process (submit --wait/--watch, retry/resubmit --wait)."""

from __future__ import annotations

from reconciler.cli import render
from reconciler.cli.common import console, fail, print_json
from reconciler.cli.context import Context


def run_here(obj: Context, runner, wf: dict, *, watch: bool, output: str | None) -> str:
    ns, name = wf["metadata"]["namespace"], wf["metadata"]["name"]
    try:
        if watch:
            from rich.live import Live

            with Live(render.workflow_view(wf), console=console, refresh_per_second=8,
                      transient=False) as live:
                final = runner.run(ns, name, on_change=lambda w: live.update(render.workflow_view(w)))
                live.update(render.workflow_view(final))
            console.print()
        else:
            final = runner.run(ns, name)
    except KeyboardInterrupt:
        obj.close()
        fail(f"interrupted; {name} stays in the store, unfinished", 130)
    final = obj.store.get("Workflow", ns, name)
    phase = final.get("status", {}).get("phase", "")
    if output == "json":
        print_json(final)
    elif not watch and output != "name":
        console.print(render.workflow_view(final))
    return phase

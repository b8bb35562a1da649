"""What a person sees: node trees like `argo get`/`argo submit --watch`, and listing tables."""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from reconciler.engine import nodes as N

ICONS = {
    N.SUCCEEDED: ("✔", "green"),
    N.FAILED: ("✖", "red"),
    N.ERROR: ("⚠", "red"),
    N.RUNNING: ("●", "cyan"),
    N.PENDING: ("◷", "yellow"),
    N.SKIPPED_PHASE: ("○", "dim"),
    N.OMITTED: ("○", "dim"),
}


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m"


def age(created: str | None, now: float | None = None) -> str:
    start = N.parse_rfc3339(created)
    return human_duration((now or time.time()) - start) if start else ""


def workflow_duration(wf: dict, now: float | None = None) -> float | None:
    status = wf.get("status") or {}
    start = status.get("startedAtUnix")
    if not start:
        return None
    return (status.get("finishedAtUnix") or now or time.time()) - start


SUSPEND_ICON = ("ǁ", "cyan")  # argo get's mark of a suspend node that is waiting


def is_suspended(wf: dict) -> bool:
    """Argo's IsWorkflowSuspended: spec.suspend, or a suspend node still waiting."""
    if (wf.get("spec") or {}).get("suspend"):
        return True
    return any(n.get("type") == N.SUSPEND and n.get("phase") == N.RUNNING
               for n in ((wf.get("status") or {}).get("nodes") or {}).values())


def workflow_status(wf: dict) -> Text:
    """The STATUS argo's printer shows: `Running (Suspended)`, `Failed (Terminated)`, else the phase."""
    phase = (wf.get("status") or {}).get("phase") or "Pending"
    shown = phase
    if phase == N.RUNNING and is_suspended(wf):
        shown = "Running (Suspended)"
    elif phase == N.FAILED and (wf.get("spec") or {}).get("shutdown"):
        shown = "Failed (Terminated)"
    return Text(shown, style=ICONS.get(phase, ("", ""))[1])


def summary(wf: dict) -> Table:
    status = wf.get("status") or {}
    meta = wf["metadata"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [
        ("Name:", meta["name"]),
        ("Namespace:", meta.get("namespace", "")),
        ("Status:", workflow_status(wf)),
    ]
    if status.get("message"):
        rows.append(("Message:", status["message"]))
    if status.get("startedAt"):
        rows.append(("Started:", status["startedAt"]))
    if status.get("finishedAt"):
        rows.append(("Finished:", status["finishedAt"]))
    rows.append(("Duration:", human_duration(workflow_duration(wf))))
    if status.get("progress"):
        rows.append(("Progress:", status["progress"]))
    params = ((status.get("storedWorkflowTemplateSpec") or wf.get("spec") or {}).get("arguments") or {}).get(
        "parameters"
    )
    for p in params or []:
        rows.append((f"  {p['name']}:", str(p.get("value", ""))))
    for label, value in rows:
        grid.add_row(label, value)
    return grid


# Containers whose `children` are what they contain. A DAG's `children` are only its first tasks
# and a DAG task's are the tasks depending on it (Argo's edges), so neither nests anything.
_NESTING = frozenset({N.STEPS, N.STEP_GROUP, N.RETRY, N.TASK_GROUP})


def tree_children(nodes: dict[str, dict]) -> tuple[list[dict], dict[str, list[dict]]]:
    """The roots and each node's children as `argo get` nests them: a Steps, StepGroup, Retry or
    TaskGroup node holds its `children`; a DAG node holds the other nodes of its boundary
    (`boundaryID`), in start order (then name), as Argo's printer sorts them. Any node placed by
    neither rule (say, its DAG is missing) falls back on a node listing it in `children`."""
    owner: dict[str, str] = {}
    for n in nodes.values():
        if n["type"] in _NESTING:
            for c in n.get("children", []):
                if c in nodes:
                    owner.setdefault(c, n["id"])
    linked: dict[str, str] = {}
    for n in nodes.values():
        for c in n.get("children", []):
            linked.setdefault(c, n["id"])
    kids: dict[str, list[dict]] = {}
    in_dag: dict[str, list[dict]] = {}
    roots = []
    for n in nodes.values():
        nid = n["id"]
        boundary = nodes.get(n.get("boundaryID", ""))
        if nid in owner:
            continue  # placed below, in its container's `children` order
        if boundary is not None and boundary["type"] == N.DAG and boundary["id"] != nid:
            in_dag.setdefault(boundary["id"], []).append(n)
        elif linked.get(nid) in nodes and linked[nid] != nid:
            kids.setdefault(linked[nid], []).append(n)
        else:
            roots.append(n)
    for n in nodes.values():
        if n["type"] in _NESTING:
            own = [nodes[c] for c in n.get("children", []) if owner.get(c) == n["id"]]
            if own:
                kids.setdefault(n["id"], []).extend(own)
    for dag_id, members in in_dag.items():
        members.sort(key=lambda n: (n.get("startedAtUnix") or 0, n["displayName"]))
        kids.setdefault(dag_id, []).extend(members)
    roots.sort(key=lambda n: (n["name"].endswith(".onExit"), n.get("startedAtUnix", 0)))
    return roots, kids


def _artifacts(node: dict) -> str:
    return ",".join(a.get("name", "") for a in (node.get("outputs") or {}).get("artifacts") or [])


def node_tree(wf: dict, now: float | None = None, wide: bool = False) -> Table:
    """One row per node, nested like `argo get`'s STEP column (see `tree_children`). A waiting suspend
    node has argo's ǁ mark, a node whose outputs came from the memoization cache says `(memoized)`.
    `wide` adds argo's ARTIFACTS column, and EXITCODE where argo has Kubernetes' RESOURCESDURATION and
    NODENAME."""
    nodes = (wf.get("status") or {}).get("nodes") or {}
    table = Table(box=None, padding=(0, 2), show_edge=False)
    columns = ("STEP", "TEMPLATE", "PODNAME", "DURATION", "ARTIFACTS", "MESSAGE", "EXITCODE") if wide else \
        ("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE")
    for col in columns:
        table.add_column(col, no_wrap=col != "MESSAGE")
    roots, tree = tree_children(nodes)
    now = now or time.time()
    shown: set[str] = set()

    def walk(node: dict, prefix: str, last: bool, depth: int) -> None:
        shown.add(node["id"])
        icon, colour = ICONS.get(node["phase"], ("?", ""))
        if node["type"] == N.SUSPEND and node["phase"] == N.RUNNING:
            icon, colour = SUSPEND_ICON
        branch = "" if depth == 0 else ("└─" if last else "├─")
        # Step groups add nothing a reader needs beyond their children, as in argo's output.
        label = Text(prefix + branch)
        label.append(icon, style=colour)
        label.append(" " + node["displayName"])
        if (node.get("memoizationStatus") or {}).get("hit"):
            label.append(" (memoized)", style="dim")
        start = node.get("startedAtUnix")
        end = node.get("finishedAtUnix") or now
        dur = human_duration(end - start) if start and node["type"] == N.POD else ""
        cells = [label, node.get("templateName", ""), node.get("podName", ""), dur]
        if wide:
            cells.append(_artifacts(node))
        cells.append(node.get("message", "") or "")
        if wide:
            cells.append(str((node.get("outputs") or {}).get("exitCode", "")))
        table.add_row(*cells)
        kids = [k for k in tree.get(node["id"], []) if k["id"] not in shown]
        child_prefix = prefix + ("" if depth == 0 else ("  " if last else "│ "))
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
    # A cycle in corrupt links would leave nodes out: show them rather than hide them.
    for node in nodes.values():
        if node["id"] not in shown:
            walk(node, "", True, 0)
    return table


def workflow_view(wf: dict, wide: bool = False) -> Group:
    return Group(summary(wf), Text(""), node_tree(wf, wide=wide))


def parameters_string(wf: dict, limit: int = 50) -> str:
    """argo list -o wide's PARAMETERS: name=value of the workflow's arguments, long values cut."""
    spec = (wf.get("status") or {}).get("storedWorkflowTemplateSpec") or wf.get("spec") or {}
    out = []
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        if "value" in p:
            value = str(p["value"])
            out.append(f"{p.get('name')}={value if len(value) <= limit else value[:limit - 18] + '...' + value[-15:]}")
    return ",".join(out)


def workflows_table(items: list[dict], wide: bool = False) -> Table:
    """`reconciler list`; `wide` (whole workflows, with nodes) adds argo's P/R/C and PARAMETERS."""
    from reconciler.listing import pod_counts

    table = Table(box=None, padding=(0, 2), show_edge=False)
    columns = ["NAME", "NAMESPACE", "STATUS", "AGE", "DURATION", "PROGRESS", "MESSAGE"]
    for col in columns + (["P/R/C", "PARAMETERS"] if wide else []):
        table.add_column(col)
    for wf in items:
        status = wf.get("status") or {}
        cells = [
            wf["metadata"]["name"],
            wf["metadata"].get("namespace", ""),
            workflow_status(wf),
            age(wf["metadata"].get("creationTimestamp")),
            human_duration(workflow_duration(wf)),
            status.get("progress", ""),
            status.get("message", ""),
        ]
        if wide:
            cells += ["/".join(str(n) for n in pod_counts(wf)), parameters_string(wf)]
        table.add_row(*cells)
    return table


def objects_table(items: list[dict], extra: list[tuple[str, object]] = ()) -> Table:
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("NAME")
    table.add_column("NAMESPACE")
    table.add_column("AGE")
    for title, _ in extra:
        table.add_column(title)
    for obj in items:
        meta = obj["metadata"]
        table.add_row(meta["name"], meta.get("namespace", ""), age(meta.get("creationTimestamp")),
                      *[str(fn(obj)) for _, fn in extra])
    return table


def details_grid(rows: list[tuple[str, object]]) -> Table:
    """`Label:  value` lines, as `argo cron get` and `argo template get` print an object."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def management_rows(obj: dict) -> list[tuple[str, str]]:
    """Where a git-managed object comes from (nothing for one a person manages)."""
    from reconciler.ownership import git_source

    source = git_source(obj)
    return [] if source is None else [("Managed by:", f"git: {source.describe()}")]

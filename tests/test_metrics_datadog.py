"""Metrics a Datadog user can chart, read from a real `reconciler up`'s /metrics: workflow outcomes
counted from the store whoever ran them (the CLI's `submit --wait`, `resubmit --wait`), counted once
across a restart; `environment` and `namespace` on workflow and sync metrics; no `*_created` series;
and the shipped Datadog dashboard only charts metrics the daemon exposes, under the names Datadog's
openmetrics check gives them."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REPO, wait_for
from .gitops_repo import make_remote, template
from .test_api_cli import cli
from .test_api_support import Daemon, start_daemon

pytestmark = pytest.mark.xdist_group("gitops-daemon")

DASHBOARD = REPO / "docs" / "datadog-dashboard.json"
WIDGET_TYPES = {"group", "timeseries", "query_value", "toplist", "note", "heatmap", "distribution", "query_table"}
QUERY = re.compile(r"\b(avg|sum|min|max|count|p50|p75|p90|p95|p99):([a-z0-9_.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?")


def run(command: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {{generateName: counted-}}
        spec:
          entrypoint: main
          templates:
          - name: main
            container: {{image: alpine:3, command: [sh, -c, "{command}"]}}
        """)



def families(daemon: Daemon) -> list:
    reply = daemon.client.get("/metrics", token=False)
    assert reply.status == 200
    return list(text_string_to_metric_families(reply.body.decode()))


def value(daemon: Daemon, name: str, **labels: str) -> float:
    for family in families(daemon):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def datadog_names(found: list) -> dict[str, set[str]]:
    """What Datadog's openmetrics check (namespace `reconciler`, raw_metric_prefix `reconciler_`,
    histogram_buckets_as_distributions) submits for each family, with the family's label names."""
    out: dict[str, set[str]] = {}
    for family in found:
        assert family.name.startswith("reconciler_"), family.name
        base = "reconciler." + family.name.removeprefix("reconciler_")
        name = {"counter": base + ".count", "gauge": base, "histogram": base}[family.type]
        out[name] = {k for s in family.samples for k in s.labels if k not in ("le",)}
    return out


def test_outcomes_from_the_store_labels_and_the_dashboard_match_a_real_daemon(tmp_path: Path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    home = tmp_path / "home"
    ok_file, bad_file = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    ok_file.write_text(run("echo fine"))
    bad_file.write_text(run("exit 3"))
    dev = {"environment": "dev", "namespace": "team-dev"}
    daemon = start_daemon(home, tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        assert wait_for(lambda: value(daemon, "reconciler_sync_results_total", **dev, phase="Synced",
                                      reason="Synced") >= 1)
        # Run by the CLI in its own process, not by the daemon: the daemon still counts them.
        submitted = cli(home, "submit", str(ok_file), "-n", "team-dev", "--wait", "-o", "name")
        assert submitted.returncode == 0, submitted.stderr
        name = submitted.stdout.split()[0]
        assert wait_for(lambda: value(daemon, "reconciler_workflows_finished_total", **dev, phase="Succeeded") == 1)
        resubmitted = cli(home, "resubmit", name, "-n", "team-dev", "--wait")
        assert resubmitted.returncode == 0, resubmitted.stderr
        assert cli(home, "submit", str(bad_file), "-n", "team-dev", "--wait").returncode == 1
        assert wait_for(lambda: value(daemon, "reconciler_workflows_finished_total", **dev, phase="Failed") == 1)
        assert value(daemon, "reconciler_workflows_finished_total", **dev, phase="Succeeded") == 2
        assert value(daemon, "reconciler_workflow_duration_seconds_count", **dev, phase="Succeeded") == 2
        assert value(daemon, "reconciler_workflows", **dev, phase="Succeeded") == 2
        assert value(daemon, "reconciler_out_of_sync", **dev) == 0
        found = families(daemon)
    finally:
        daemon.stop()
    samples = [s.name for f in found for s in f.samples]
    assert not [n for n in samples if n.endswith("_created")], "no *_created series"

    # The dashboard charts only what the daemon exposes, by the names and tags Datadog gives them.
    exposed = datadog_names(found)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["layout_type"] in ("ordered", "free")
    variables = {v["name"]: v["prefix"] for v in dashboard["template_variables"]}
    queries = []

    def walk(widgets: list) -> None:
        for widget in widgets:
            definition = widget["definition"]
            assert definition["type"] in WIDGET_TYPES and definition.get("title")
            if definition["type"] == "group":
                walk(definition["widgets"])
                continue
            assert definition["requests"]
            for request in definition["requests"]:
                assert isinstance(request["q"], str)
                if definition["type"] == "timeseries":
                    assert request.get("display_type", "line") in ("line", "bars", "area")
                if definition["type"] == "query_value":
                    assert request.get("aggregator", "avg") in ("avg", "last", "max", "min", "sum")
                queries.append(request["q"])

    walk(dashboard["widgets"])
    charted = set()
    for q in queries:
        matches = QUERY.findall(q)
        assert matches, f"not a metric query: {q}"
        for _, metric, scope, by in matches:
            charted.add(metric)
            assert metric in exposed, f"{metric} is not a metric the daemon exposes (as Datadog names it)"
            tags = {t.strip() for t in by.split(",") if t.strip()}
            for item in (s.strip() for s in scope.split(",")):
                if item.startswith("$"):
                    assert item[1:] in variables, f"{q}: no template variable {item}"
                    tags.add(variables[item[1:]])
            if exposed[metric]:  # label names are known from samples
                assert tags <= exposed[metric], f"{q}: tags {tags - exposed[metric]} not on {metric}"
    assert {"reconciler.workflows_finished.count", "reconciler.sync_results.count",
            "reconciler.workflow_duration_seconds", "reconciler.out_of_sync"} <= charted
    # The names Datadog shows are the ones docs/METRICS.md lists.
    doc = (REPO / "docs" / "METRICS.md").read_text()
    assert not [m for m in exposed if f"`{m}`" not in doc and not m.startswith("reconciler.process_")]


def test_a_restarted_daemon_does_not_count_earlier_outcomes_again(tmp_path: Path):
    home = tmp_path / "home"
    wf = tmp_path / "ok.yaml"
    wf.write_text(run("echo fine"))
    where = {"environment": "", "namespace": "default"}  # a namespace of no environment
    daemon = start_daemon(home, tmp_path)
    try:
        assert cli(home, "submit", str(wf), "--wait").returncode == 0
        assert wait_for(lambda: value(daemon, "reconciler_workflows_finished_total", **where, phase="Succeeded") == 1)
    finally:
        daemon.stop()
    daemon = start_daemon(home, tmp_path)
    try:
        assert cli(home, "submit", str(wf), "--wait").returncode == 0
        assert wait_for(lambda: value(daemon, "reconciler_workflows_finished_total", **where, phase="Succeeded") >= 1)
        time.sleep(2)  # a few more polls of the change feed: nothing else may be counted
        assert value(daemon, "reconciler_workflows_finished_total", **where, phase="Succeeded") == 1
        assert value(daemon, "reconciler_workflows", **where, phase="Succeeded") == 2
    finally:
        daemon.stop()

"""Metrics (parsed with prometheus-client's own parser) and JSON log lines with secrets masked."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from reconciler import logs, metrics
from reconciler.artifacts import LocalArtifactRepository
from reconciler.engine.submission import build_workflow
from reconciler.executors import InProcessExecutor
from reconciler.runner import WorkflowRunner
from reconciler.store import open_store


def samples() -> dict[tuple[str, tuple], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(name: str, **labels: str) -> float:
    return samples().get((name, tuple(sorted(labels.items()))), 0.0)


GUARDED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: metered-}
spec:
  entrypoint: main
  synchronization: {mutex: {name: metered}}
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: pod}
      - {name: b, depends: a, template: pod}
  - name: pod
    container: {image: alpine:3, command: [echo, hi]}
"""


def test_runner_reports_workflows_nodes_queue_and_lock_waits(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    metrics.count_workflows_from(lambda: store.list_brief("Workflow"))
    ns = "metrics-test"
    metrics.learn_environments({ns: "m-env"})
    where = {"environment": "m-env", "namespace": ns}
    before_nodes = value("reconciler_node_duration_seconds_count", **where, phase="Succeeded")
    before_waits = value("reconciler_semaphore_waits_total", **where, lock="mutex metered")
    names = [store.create(build_workflow(yaml.safe_load(GUARDED), namespace=ns))["metadata"]["name"] for _ in range(2)]
    runner = WorkflowRunner(store, InProcessExecutor(), LocalArtifactRepository(tmp_path / "a"), tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=runner.serve, args=(stop,), kwargs={"grace": 1})
    thread.start()
    try:
        for _ in range(200):
            phases = [(store.get("Workflow", ns, n).get("status") or {}).get("phase") for n in names]
            if phases == ["Succeeded", "Succeeded"]:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        thread.join()
    assert value("reconciler_workflows", environment="m-env", namespace=ns, phase="Succeeded") == 2
    assert value("reconciler_node_duration_seconds_count", **where, phase="Succeeded") - before_nodes == 4
    assert value("reconciler_queue_wait_seconds_count", **where) >= 2
    # The second workflow waited for the mutex the first held: counted once, not per retry.
    assert value("reconciler_semaphore_waits_total", **where, lock="mutex metered") - before_waits == 1


def test_sync_results_commit_info_and_policy_counts() -> None:
    from reconciler.spec import Problem
    from reconciler.sync.model import EnvironmentResult

    class Fetch:
        ok, seconds = False, 0.02

    denied = Problem("wf.yaml", 3, "spec.templates[0].container.image", "policy image-tag-pinned (deny): x")
    results = [
        EnvironmentResult("m-dev", "dev", "a-dev", "Synced", "Synced", "ok", commit="abc1234", seconds=0.1),
        EnvironmentResult("m-prod", "main", "a-prod", "Failed", "PolicyDenied", "no", commit="0001111",
                          problems=[denied], seconds=0.2),
    ]
    errors_before = value("reconciler_git_fetch_errors_total")
    metrics.observe_sync(results, Fetch())
    metrics.observe_sync([EnvironmentResult("m-dev", "dev", "a-dev", "Synced", "Synced", "ok", commit="def5678")])
    prod, dev = {"environment": "m-prod", "namespace": "a-prod"}, {"environment": "m-dev", "namespace": "a-dev"}
    assert value("reconciler_sync_results_total", **prod, phase="Failed", reason="PolicyDenied") == 1
    assert value("reconciler_out_of_sync", **prod) == 1
    assert value("reconciler_out_of_sync", **dev) == 0
    assert value("reconciler_policy_violations_total", **prod, action="deny") == 1
    assert value("reconciler_git_fetch_errors_total") - errors_before == 1
    info = [k for k in samples() if k[0] == "reconciler_environment_info" and ("environment", "m-dev") in k[1]]
    assert [dict(k[1])["commit"] for k in info] == ["def5678"]  # one series: the commit applied now
    assert value("reconciler_last_successful_sync_timestamp_seconds", **dev) > 0
    assert metrics.environment_of("a-prod") == "m-prod"  # workflow metrics of that namespace get its environment


def test_json_log_lines_carry_context_and_mask_secrets(monkeypatch) -> None:
    monkeypatch.setenv("RECONCILER_API_TOKEN", "tok-0123456789")
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("reconciler.sync", logging.WARNING, __file__, 1,
                               "fetch https://bob:hunter2@git.example/x.git failed; header Bearer abc.def; "
                               "token tok-0123456789; password=letmein", None, None)
    record.environment, record.commit, record.workflow = "prod", "abc1234", "etl-1"
    line = json.loads(formatter.format(record))
    assert line["level"] == "warning" and line["logger"] == "reconciler.sync"
    assert (line["environment"], line["commit"], line["workflow"]) == ("prod", "abc1234", "etl-1")
    assert line["time"].endswith("Z")
    for secret in ("hunter2", "abc.def", "tok-0123456789", "letmein"):
        assert secret not in line["message"]
    assert "git.example/x.git" in line["message"]

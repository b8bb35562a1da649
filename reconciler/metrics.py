"""Prometheus metrics, all named `reconciler_*`, for Datadog's OpenMetrics check (or Prometheus).

The parts of the daemon report events through the `observe_*` functions; counts that are a
property of the store (workflows by phase) are read when /metrics is scraped, so they are never
stale and cost nothing between scrapes. Everything lives in one registry of our own, so tests and
the API serve exactly these metrics and not the process collectors of whatever imported us."""

from __future__ import annotations

import calendar
import time
from collections import Counter as _Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(namespace="reconciler", registry=REGISTRY)

_SHORT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LONG = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400)

SYNC_DURATION = Histogram("reconciler_sync_duration_seconds", "Time one environment's sync pass took.",
                          ["environment"], buckets=_SHORT, registry=REGISTRY)
SYNC_RESULTS = Counter("reconciler_sync_results_total", "Sync passes by environment and result.",
                       ["environment", "phase", "reason"], registry=REGISTRY)
ENVIRONMENT_INFO = Gauge("reconciler_environment_info", "The commit applied in each environment (always 1).",
                         ["environment", "branch", "namespace", "commit"], registry=REGISTRY)
OUT_OF_SYNC = Gauge("reconciler_out_of_sync", "1 when the environment is not at its branch head.",
                    ["environment"], registry=REGISTRY)
DRIFT = Counter("reconciler_drift_total", "Managed objects found changed or deleted out of band, and put back.",
                ["environment"], registry=REGISTRY)
LAST_SYNC = Gauge("reconciler_last_successful_sync_timestamp_seconds", "When the environment last synced.",
                  ["environment"], registry=REGISTRY)
POLICY_VIOLATIONS = Counter("reconciler_policy_violations_total", "Policy violations found while syncing.",
                            ["environment", "action"], registry=REGISTRY)
FETCH_DURATION = Histogram("reconciler_git_fetch_duration_seconds", "Time to fetch the workflow repository.",
                           buckets=_SHORT, registry=REGISTRY)
FETCH_ERRORS = Counter("reconciler_git_fetch_errors_total", "Failed fetches of the workflow repository.",
                       registry=REGISTRY)
WORKFLOW_DURATION = Histogram("reconciler_workflow_duration_seconds", "Run time of finished workflows.",
                              ["namespace", "phase"], buckets=_LONG, registry=REGISTRY)
NODE_DURATION = Histogram("reconciler_node_duration_seconds", "Run time of finished steps (pods).",
                          ["namespace", "phase"], buckets=_LONG, registry=REGISTRY)
QUEUE_WAIT = Histogram("reconciler_queue_wait_seconds",
                       "From a workflow's creation to its start (caps, locks and the runner's pick-up).",
                       ["namespace"], buckets=_LONG, registry=REGISTRY)
SCHEDULER_LAG = Histogram("reconciler_scheduler_lag_seconds", "Cron fire time minus scheduled time.",
                          buckets=_SHORT, registry=REGISTRY)
CRON_FIRES = Counter("reconciler_cron_fires_total", "CronWorkflow fires by outcome.",
                     ["namespace", "cron", "outcome"], registry=REGISTRY)
SEMAPHORE_WAITS = Counter("reconciler_semaphore_waits_total",
                          "Times a workflow or step had to wait for a mutex, semaphore or namespace cap.",
                          ["namespace", "lock"], registry=REGISTRY)


class WorkflowPhases:
    """`reconciler_workflows{namespace, phase}`: counted from the store at scrape time."""

    def __init__(self, list_workflows: Callable[[], Iterable[dict]]) -> None:
        self.list_workflows = list_workflows

    def describe(self) -> list:
        return [GaugeMetricFamily("reconciler_workflows", "Workflows in the store by phase.",
                                  labels=["namespace", "phase"])]

    def collect(self) -> list:
        family = GaugeMetricFamily("reconciler_workflows", "Workflows in the store by phase.",
                                   labels=["namespace", "phase"])
        tally = _Tally((w["metadata"].get("namespace", ""), (w.get("status") or {}).get("phase") or "Pending")
                        for w in self.list_workflows())
        for (namespace, phase), count in sorted(tally.items()):
            family.add_metric([namespace, phase], count)
        return [family]


_workflow_phases: WorkflowPhases | None = None


def count_workflows_from(list_workflows: Callable[[], Iterable[dict]]) -> None:
    """Have /metrics count workflows by phase with `list_workflows` (the daemon passes its store)."""
    global _workflow_phases
    if _workflow_phases is not None:
        REGISTRY.unregister(_workflow_phases)
    _workflow_phases = WorkflowPhases(list_workflows)
    REGISTRY.register(_workflow_phases)


def render() -> tuple[bytes, str]:
    """The body and content type of a /metrics answer."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# ---- what the parts of the daemon call ------------------------------------------------------------
def observe_sync(results: Iterable, fetch: object | None = None) -> None:
    """After a sync pass: `results` are sync.model.EnvironmentResult, `fetch` a source FetchResult."""
    if fetch is not None:
        FETCH_DURATION.observe(getattr(fetch, "seconds", 0.0))
        if not getattr(fetch, "ok", True):
            FETCH_ERRORS.inc()
    for r in results:
        env = r.environment
        SYNC_DURATION.labels(env).observe(r.seconds)
        SYNC_RESULTS.labels(env, r.phase, r.reason).inc()
        OUT_OF_SYNC.labels(env).set(0 if r.phase == "Synced" else 1)
        if r.applied and r.plan.drift:
            DRIFT.labels(env).inc(r.plan.drift)
        if r.phase == "Synced":
            LAST_SYNC.labels(env).set(time.time())
        if r.commit:
            for labels in list(ENVIRONMENT_INFO._metrics):  # one series per environment: the current commit
                if labels[0] == env:
                    ENVIRONMENT_INFO.remove(*labels)
            ENVIRONMENT_INFO.labels(env, r.branch, r.namespace, r.commit).set(1)
        for problems, action in ((r.problems, "deny"), (r.warnings, "warn")):
            found = sum(1 for p in problems if p.message.startswith("policy "))
            if found:
                POLICY_VIOLATIONS.labels(env, action).inc(found)


def observe_workflow_started(namespace: str, created: str | None, now: float) -> None:
    if created:
        try:
            at = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return
        QUEUE_WAIT.labels(namespace).observe(max(0.0, now - at))


def observe_workflow_finished(namespace: str, phase: str, seconds: float) -> None:
    WORKFLOW_DURATION.labels(namespace, phase).observe(max(0.0, seconds))


def observe_node_finished(namespace: str, phase: str, seconds: float) -> None:
    NODE_DURATION.labels(namespace, phase).observe(max(0.0, seconds))


def observe_lock_wait(namespace: str, lock: str) -> None:
    SEMAPHORE_WAITS.labels(namespace, lock).inc()


def observe_fire(result: object) -> None:
    """A schedule.firing.FireResult."""
    CRON_FIRES.labels(result.namespace, result.cron, result.outcome).inc()
    SCHEDULER_LAG.observe(max(0.0, result.lag))

"""Prometheus metrics, all named `reconciler_*`, for Datadog's OpenMetrics check (or Prometheus).

The parts of the daemon report events through the `observe_*` functions; counts that are a
property of the store (workflows by phase) are read when /metrics is scraped, so they are never
stale and cost nothing between scrapes. Everything lives in one registry of our own, so tests and
the API serve exactly these metrics and not the process collectors of whatever imported us.

Every workflow and sync metric carries both `environment` and `namespace`, so one dashboard filter
serves both. A workflow's environment is the one whose namespace it runs in ("" outside any
environment); the map is learnt from sync passes and the Environment objects (`learn_environments`).
Metric names as Datadog shows them are listed in docs/METRICS.md.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections import Counter as _Tally
from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

# No `*_created` series: Datadog's openmetrics check would chart each as a gauge of a start time,
# one more custom metric per counter and histogram. Set here, whatever PROMETHEUS_DISABLE_CREATED_SERIES
# says, because the process serves only this registry.
prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(namespace="reconciler", registry=REGISTRY)

_SHORT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LONG = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400)
_SYNC = ["environment", "namespace"]

SYNC_DURATION = Histogram("reconciler_sync_duration_seconds", "Time one environment's sync pass took.",
                          _SYNC, buckets=_SHORT, registry=REGISTRY)
SYNC_RESULTS = Counter("reconciler_sync_results_total", "Sync passes by environment and result.",
                       [*_SYNC, "phase", "reason"], registry=REGISTRY)
# The commit label makes one series per environment at a time (the previous one is removed), but
# every deploy starts a new one: about one new series per deploy, what an info metric is for.
ENVIRONMENT_INFO = Gauge("reconciler_environment_info", "The commit applied in each environment (always 1).",
                         ["environment", "branch", "namespace", "commit"], registry=REGISTRY)
OUT_OF_SYNC = Gauge("reconciler_out_of_sync", "1 when the environment is not at its branch head.",
                    _SYNC, registry=REGISTRY)
SUSPENDED = Gauge("reconciler_environment_suspended", "1 while the environment's sync is suspended.",
                  _SYNC, registry=REGISTRY)
DRIFT = Counter("reconciler_drift_total", "Managed objects found changed or deleted out of band, and put back.",
                _SYNC, registry=REGISTRY)
LAST_SYNC = Gauge("reconciler_last_successful_sync_timestamp_seconds", "When the environment last synced.",
                  _SYNC, registry=REGISTRY)
POLICY_VIOLATIONS = Counter("reconciler_policy_violations_total", "Policy violations found while syncing.",
                            [*_SYNC, "action"], registry=REGISTRY)
FETCH_DURATION = Histogram("reconciler_git_fetch_duration_seconds", "Time to fetch the workflow repository.",
                           buckets=_SHORT, registry=REGISTRY)
FETCH_ERRORS = Counter("reconciler_git_fetch_errors_total", "Failed fetches of the workflow repository.",
                       registry=REGISTRY)
WORKFLOWS_FINISHED = Counter("reconciler_workflows_finished_total",
                             "Workflows that finished, by phase, whoever ran them (counted from the store).",
                             [*_SYNC, "phase"], registry=REGISTRY)
WORKFLOW_DURATION = Histogram("reconciler_workflow_duration_seconds", "Run time of finished workflows.",
                              [*_SYNC, "phase"], buckets=_LONG, registry=REGISTRY)
NODE_DURATION = Histogram("reconciler_node_duration_seconds", "Run time of finished steps (pods).",
                          [*_SYNC, "phase"], buckets=_LONG, registry=REGISTRY)
QUEUE_WAIT = Histogram("reconciler_queue_wait_seconds",
                       "From a workflow's creation to its start (caps, locks and the runner's pick-up).",
                       _SYNC, buckets=_LONG, registry=REGISTRY)
SCHEDULER_LAG = Histogram("reconciler_scheduler_lag_seconds", "Cron fire time minus scheduled time.",
                          buckets=_SHORT, registry=REGISTRY)
CRON_FIRES = Counter("reconciler_cron_fires_total", "CronWorkflow fires by outcome.",
                     [*_SYNC, "cron", "outcome"], registry=REGISTRY)
SEMAPHORE_WAITS = Counter("reconciler_semaphore_waits_total",
                          "Times a workflow or step had to wait for a mutex, semaphore or namespace cap.",
                          [*_SYNC, "lock"], registry=REGISTRY)

_environments: dict[str, str] = {}  # namespace -> environment
_environments_lock = threading.Lock()


def learn_environments(namespaces: dict[str, str]) -> None:
    """Which environment each namespace belongs to ({namespace: environment})."""
    with _environments_lock:
        _environments.update(namespaces)


def environment_of(namespace: str) -> str:
    """The environment a namespace belongs to, "" when none does."""
    with _environments_lock:
        return _environments.get(namespace, "")


def _where(namespace: str) -> tuple[str, str]:
    return environment_of(namespace), namespace


class WorkflowPhases:
    """`reconciler_workflows{environment, namespace, phase}`: counted from the store at scrape time."""

    def __init__(self, list_workflows: Callable[[], Iterable[dict]]) -> None:
        self.list_workflows = list_workflows

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("reconciler_workflows", "Workflows in the store by phase.",
                                 labels=[*_SYNC, "phase"])

    def describe(self) -> list:
        return [self._family()]

    def collect(self) -> list:
        family = self._family()
        tally = _Tally((w["metadata"].get("namespace", ""), (w.get("status") or {}).get("phase") or "Pending")
                        for w in self.list_workflows())
        for (namespace, phase), count in sorted(tally.items()):
            family.add_metric([*_where(namespace), phase], count)
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
        env, where = r.environment, (r.environment, r.namespace)
        learn_environments({r.namespace: env})
        SUSPENDED.labels(*where).set(1 if r.reason == "Suspended" else 0)
        if r.reason == "Suspended":
            continue  # a skipped pass is no sync: its duration and result would only blur the others
        SYNC_DURATION.labels(*where).observe(r.seconds)
        SYNC_RESULTS.labels(*where, r.phase, r.reason).inc()
        OUT_OF_SYNC.labels(*where).set(0 if r.phase == "Synced" else 1)
        if r.applied and r.plan.drift:
            DRIFT.labels(*where).inc(r.plan.drift)
        if r.phase == "Synced":
            LAST_SYNC.labels(*where).set(time.time())
        if r.commit:
            for labels in list(ENVIRONMENT_INFO._metrics):  # one series per environment: the current commit
                if labels[0] == env:
                    ENVIRONMENT_INFO.remove(*labels)
            ENVIRONMENT_INFO.labels(env, r.branch, r.namespace, r.commit).set(1)
        for problems, action in ((r.problems, "deny"), (r.warnings, "warn")):
            found = sum(1 for p in problems if p.message.startswith("policy "))
            if found:
                POLICY_VIOLATIONS.labels(*where, action).inc(found)


def observe_workflow_started(namespace: str, created: str | None, now: float) -> None:
    if created:
        try:
            at = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return
        QUEUE_WAIT.labels(*_where(namespace)).observe(max(0.0, now - at))


def observe_workflow_finished(namespace: str, phase: str, seconds: float | None) -> None:
    """One finished workflow (reconciler.outcomes calls this once per workflow run, from the store)."""
    where = _where(namespace)
    WORKFLOWS_FINISHED.labels(*where, phase).inc()
    if seconds is not None:
        WORKFLOW_DURATION.labels(*where, phase).observe(max(0.0, seconds))


def observe_node_finished(namespace: str, phase: str, seconds: float) -> None:
    NODE_DURATION.labels(*_where(namespace), phase).observe(max(0.0, seconds))


def observe_lock_wait(namespace: str, lock: str) -> None:
    SEMAPHORE_WAITS.labels(*_where(namespace), lock).inc()


def observe_fire(result: object) -> None:
    """A schedule.firing.FireResult."""
    CRON_FIRES.labels(*_where(result.namespace), result.cron, result.outcome).inc()
    SCHEDULER_LAG.observe(max(0.0, result.lag))

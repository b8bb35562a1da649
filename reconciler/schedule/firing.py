"""One fire: apply the concurrency policy, create the Workflow, record it in the CronWorkflow's status.

Idempotency: the Workflow is named `<cron>-<unix seconds of the scheduled time>`, so creating it
twice for one scheduled time fails with AlreadyExists. The Workflow is created *before*
status.lastScheduledTime is written: a crash in between leaves a workflow whose fire is not yet
recorded, and the next attempt finds it by name and only records it. Recording first would lose
the fire instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from reconciler.engine.submission import API_VERSION, SubmissionError, build_workflow
from reconciler.spec.expressions.conditions import evaluate_when
from reconciler.spec.expressions.errors import ExpressionError
from reconciler.spec.expressions.expr import evaluate as evaluate_expr
from reconciler.spec.expressions.templating import substitute
from reconciler.store.base import ObjectStore
from reconciler.store.errors import AlreadyExists, NotFound

from . import policy as policies
from .status import SUBMISSION_ERROR, update_status, with_condition, without_condition
from .triggers import CronSpec, format_time, parse_cron_spec, parse_time

log = logging.getLogger(__name__)

CRON_LABEL = "workflows.argoproj.io/cron-workflow"
SCHEDULED_ANNOTATION = "workflows.argoproj.io/scheduled-time"

CREATED = "created"
EXISTS = "exists"  # this scheduled time had fired already: only recorded
SKIPPED = "skipped"  # concurrencyPolicy Forbid, or spec.when evaluated false
SUSPENDED = "suspended"
STOPPED = "stopped"  # spec.stopStrategy held: status.phase Stopped, no more fires
ERROR = "error"  # the Workflow could not be built (e.g. its WorkflowTemplate is missing)


@dataclass
class FireResult:
    namespace: str
    cron: str
    scheduled: datetime
    workflow: str
    outcome: str
    fired_at: float
    terminated: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def lag(self) -> float:
        """Seconds between the scheduled time and the fire."""
        return self.fired_at - self.scheduled.timestamp()


def workflow_name(cron_name: str, scheduled: datetime) -> str:
    return f"{cron_name}-{int(scheduled.timestamp())}"


def build_scheduled_workflow(
    cron: dict, scheduled: datetime, lookup: Callable[[str, str, str], dict | None] | None = None
) -> dict:
    """The Workflow one fire creates: workflowSpec, workflowMetadata merged into its metadata, Argo's
    cron label and scheduled-time annotation, owned by the CronWorkflow."""
    meta = cron["metadata"]
    spec = cron.get("spec") or {}
    extra = spec.get("workflowMetadata") or {}
    labels = dict(extra.get("labels") or {})
    labels[CRON_LABEL] = meta["name"]
    annotations = dict(extra.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = format_time(scheduled)
    doc = {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "name": workflow_name(meta["name"], scheduled),
            "namespace": meta.get("namespace") or "default",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": cron.get("apiVersion", API_VERSION),
                "kind": "CronWorkflow",
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": spec.get("workflowSpec") or {},
    }
    # build_workflow deep-copies `doc`, so nothing of `cron` is shared with the result.
    return build_workflow(doc, namespace=doc["metadata"]["namespace"], lookup=lookup)


def fire(
    store: ObjectStore,
    cron: dict,
    scheduled: datetime,
    now: float,
    *,
    spec: CronSpec | None = None,
    lookup: Callable[[str, str, str], dict | None] | None = None,
    default_tz: tzinfo | None = None,
) -> FireResult:
    """Fire `cron` for `scheduled` at `now` (unix seconds). `cron` is the object as just read."""
    spec = spec or parse_cron_spec(cron.get("spec") or {}, default_tz)
    meta = cron["metadata"]
    ns, name = meta.get("namespace") or "default", meta["name"]
    wf_name = workflow_name(name, scheduled)
    result = FireResult(ns, name, scheduled, wf_name, CREATED, now)
    if spec.suspend:
        result.outcome = SUSPENDED
        return result
    try:
        stop = stop_holds(cron)
    except ExpressionError as exc:
        result.outcome, result.message = ERROR, f"failed to check CronWorkflow '{name}' stopping condition: {exc}"
        _report(store, cron, now, result.message)
        return result
    stopped = (cron.get("status") or {}).get("phase") == "Stopped" and (cron.get("spec") or {}).get("stopStrategy")
    if stop or stopped:
        result.outcome, result.message = STOPPED, "the stopping condition was reached"
        if stop and (cron.get("status") or {}).get("phase") != "Stopped":
            update_status(store, ns, name, lambda c: {"phase": "Stopped"}, current=cron)
        return result
    try:
        proceed = when_holds(cron)
    except ExpressionError as exc:
        result.outcome, result.message = ERROR, f"failed to evaluate when: {exc}"
        _report(store, cron, now, result.message)
        return result
    if not proceed:
        result.outcome, result.message = SKIPPED, f"when '{(cron.get('spec') or {}).get('when')}' evaluated false"
        log.info("%s/%s: skipped the %s fire: %s", ns, name, format_time(scheduled), result.message)
        return result

    if spec.concurrency_policy == "Allow":
        # No policy to apply: AlreadyExists from create() is the idempotency check, and status.active
        # is pruned by the sweep, which saves a read per active workflow on every fire.
        running = None
    else:
        # Before the policy: a restart in the middle of this very fire must neither see its own
        # workflow as "previous" (Forbid would skip, Replace would stop it) nor create a second.
        try:
            existing = store.get("Workflow", ns, wf_name)
        except NotFound:
            existing = None
        if existing is not None:
            result.outcome = EXISTS
            _record(store, cron, spec, scheduled, existing, None, now)
            return result
        running = policies.running_workflows(store, cron)
        decision = policies.decide(spec.concurrency_policy, running)
        if not decision.proceed:
            result.outcome, result.message = SKIPPED, decision.reason
            log.info("%s/%s: skipped the %s fire: %s", ns, name, format_time(scheduled), decision.reason)
            _record_active(store, cron, running)
            return result
        if decision.terminate:
            log.info("%s/%s: %s", ns, name, decision.reason)
            result.terminated = policies.terminate(store, ns, decision.terminate)

    try:
        wf = build_scheduled_workflow(cron, scheduled, lookup)
    except SubmissionError as exc:
        result.outcome, result.message = ERROR, f"Failed to submit Workflow: {exc}"
        _report(store, cron, now, result.message)
        return result
    try:
        created = store.create(wf)
    except AlreadyExists:
        result.outcome = EXISTS
        created = store.get("Workflow", ns, wf_name)
    _record(store, cron, spec, scheduled, created, running, now)
    return result


def _cron_variables(cron: dict) -> dict:
    """Argo's cron expressionEnv, without the `cronworkflow.` prefix."""
    meta, status = cron["metadata"], cron.get("status") or {}
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "default",
        "labels": dict(meta.get("labels") or {}),
        "annotations": dict(meta.get("annotations") or {}),
        "labels.json": json.dumps(meta.get("labels") or {}, separators=(",", ":")),
        "annotations.json": json.dumps(meta.get("annotations") or {}, separators=(",", ":")),
        "failed": int(status.get("failed") or 0),
        "succeeded": int(status.get("succeeded") or 0),
        "lastScheduledTime": status.get("lastScheduledTime"),
    }


def when_holds(cron: dict) -> bool:
    """Argo's evalWhen: spec.when with {{cronworkflow.*}} substituted, evaluated as a step's when."""
    text = (cron.get("spec") or {}).get("when")
    if not text:
        return True
    scope = {f"cronworkflow.{k}": ("" if v is None else str(v)) for k, v in _cron_variables(cron).items()
             if not isinstance(v, dict)}
    return evaluate_when(substitute(str(text), scope))


def stop_holds(cron: dict) -> bool:
    """Argo's checkStopingCondition: spec.stopStrategy.expression over `cronworkflow`, a boolean."""
    expression = ((cron.get("spec") or {}).get("stopStrategy") or {}).get("expression")
    if not expression:
        return False
    variables = {k: v for k, v in _cron_variables(cron).items() if "." not in k}
    value = evaluate_expr(str(expression), {"cronworkflow": variables})
    if not isinstance(value, bool):
        raise ExpressionError(f"stopStrategy expression {expression!r} evaluated to {value!r}, not a boolean")
    return value


def _report(store: ObjectStore, cron: dict, now: float, message: str) -> None:
    stamp = format_time(datetime.fromtimestamp(now, timezone.utc))
    update_status(store, cron["metadata"].get("namespace") or "default", cron["metadata"]["name"],
                  lambda c: {"conditions": with_condition((c.get("status") or {}).get("conditions"), SUBMISSION_ERROR,
                                                          message, stamp)}, current=cron)


def _record(
    store: ObjectStore,
    cron: dict,
    spec: CronSpec,
    scheduled: datetime,
    created: dict,
    running: list[dict] | None,
    now: float,
) -> None:
    """status: lastScheduledTime (never moved back), active (+ the new workflow), the schedule used."""
    new_ref = policies.workflow_ref(created)

    def change(current: dict) -> dict:
        status = current.get("status") or {}
        last = parse_time(status.get("lastScheduledTime"))
        when = scheduled if last is None or scheduled.timestamp() > last.timestamp() else last
        if running is None:
            refs = [r for r in status.get("active") or [] if r.get("name") != new_ref["name"]]
        else:
            refs = [policies.workflow_ref(w) for w in running if w["metadata"]["name"] != new_ref["name"]]
        finished = policies.is_finished(created)
        patch = {
            "lastScheduledTime": format_time(when),
            "active": refs + ([] if finished else [new_ref]),
            "lastUsedSchedule": spec.schedule.text,
        }
        if any(c.get("type") == SUBMISSION_ERROR for c in status.get("conditions") or []):
            patch["conditions"] = without_condition(status.get("conditions"), SUBMISSION_ERROR)
        return patch

    update_status(store, cron["metadata"].get("namespace") or "default", cron["metadata"]["name"], change,
                  current=cron)


def _record_active(store: ObjectStore, cron: dict, running: list[dict]) -> None:
    refs = [policies.workflow_ref(w) for w in running]

    def change(current: dict) -> dict | None:
        old = [r.get("name") for r in (current.get("status") or {}).get("active") or []]
        return None if old == [r["name"] for r in refs] else {"active": refs}

    update_status(store, cron["metadata"].get("namespace") or "default", cron["metadata"]["name"], change,
                  current=cron)

"""reconciler.schedule.firing / policy / history on a real SQLite store: what one fire creates and
records, the three concurrency policies with a still-running previous workflow, idempotency by
name, and history limits with the workflows' files and artifacts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler.artifacts import LocalArtifactRepository
from reconciler.schedule import CRON_LABEL, SCHEDULED_ANNOTATION, delete_workflow_data, enforce_history, fire
from reconciler.schedule.firing import CREATED, ERROR, EXISTS, SKIPPED, STOPPED, SUSPENDED
from reconciler.schedule.history import beyond_limits
from reconciler.schedule.sweeping import sweep
from reconciler.schedule.triggers import parse_cron_spec
from reconciler.store import open_store
from tests.schedule_support import cron_obj, cron_workflows, names, set_phase, ts

UTC = timezone.utc
T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 10, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "store.db")
    yield s
    s.close()


def apply(store, **kwargs) -> dict:
    return store.create(cron_obj(**kwargs))


def fresh(store, name: str = "tick") -> dict:
    return store.get("CronWorkflow", "default", name)


def test_fire_creates_a_named_labelled_workflow_and_records_it(store):
    cron = apply(store, workflowMetadata={"labels": {"team": "data"}, "annotations": {"owner": "ana"}})
    result = fire(store, cron, T0, T0.timestamp() + 0.25)
    assert result.outcome == CREATED and result.workflow == f"tick-{int(T0.timestamp())}"
    assert result.lag == pytest.approx(0.25)
    wf = store.get("Workflow", "default", result.workflow)
    assert wf["metadata"]["labels"] == {"team": "data", CRON_LABEL: "tick"}
    assert wf["metadata"]["annotations"] == {"owner": "ana", SCHEDULED_ANNOTATION: "2024-01-01T10:00:00Z"}
    assert wf["metadata"]["ownerReferences"][0]["kind"] == "CronWorkflow"
    assert wf["metadata"]["ownerReferences"][0]["uid"] == cron["metadata"]["uid"]
    assert wf["spec"] == cron["spec"]["workflowSpec"]
    assert wf["status"]["phase"] == "Pending"  # what the runner picks up
    status = fresh(store)["status"]
    assert status["lastScheduledTime"] == "2024-01-01T10:00:00Z"
    assert [r["name"] for r in status["active"]] == [result.workflow]
    assert status["active"][0]["uid"] == wf["metadata"]["uid"]
    assert status["lastUsedSchedule"] == "CRON_TZ=UTC * * * * *"


def test_fire_is_idempotent_by_name(store):
    cron = apply(store)
    assert fire(store, cron, T0, T0.timestamp()).outcome == CREATED
    again = fire(store, fresh(store), T0, T0.timestamp() + 5)
    assert again.outcome == EXISTS
    assert names(store) == [f"tick-{int(T0.timestamp())}"]


def test_last_scheduled_time_never_moves_back(store):
    cron = apply(store)
    fire(store, cron, T1, T1.timestamp())
    fire(store, fresh(store), T0, T1.timestamp() + 1)  # a late catch-up of an older time
    assert fresh(store)["status"]["lastScheduledTime"] == "2024-01-01T10:01:00Z"


def test_suspended_does_not_fire(store):
    cron = apply(store, suspend=True)
    assert fire(store, cron, T0, T0.timestamp()).outcome == SUSPENDED
    assert names(store) == []


def test_when_false_skips_the_fire_and_when_true_fires(store):
    """Argo's evalWhen: {{cronworkflow.*}} substituted, then evaluated as a step's when."""
    cron = apply(store, when="{{cronworkflow.name}} == other")
    result = fire(store, cron, T0, T0.timestamp())
    assert result.outcome == SKIPPED and "evaluated false" in result.message
    assert names(store) == []
    store.delete("CronWorkflow", "default", "tick")
    cron = apply(store, when="{{cronworkflow.name}} == tick && {{cronworkflow.failed}} == 0")
    assert fire(store, cron, T0, T0.timestamp()).outcome == CREATED
    assert names(store) == [f"tick-{int(T0.timestamp())}"]


def test_stop_strategy_counts_finished_runs_and_stops_firing(store):
    """Argo's checkStopingCondition over status.succeeded/failed, which the sweep counts as workflows
    leave status.active."""
    cron = apply(store, stopStrategy={"expression": "cronworkflow.succeeded >= 1"})
    first = fire(store, cron, T0, T0.timestamp()).workflow
    set_phase(store, first, "Succeeded")
    sweep(store, None)
    assert fresh(store)["status"]["succeeded"] == 1 and fresh(store)["status"]["active"] == []
    result = fire(store, fresh(store), T1, T1.timestamp())
    assert result.outcome == STOPPED
    assert names(store) == [first]
    assert fresh(store)["status"]["phase"] == "Stopped"
    sweep(store, None)
    assert fresh(store)["status"]["succeeded"] == 1  # a run is counted once


def test_a_failed_run_counts_as_failed(store):
    cron = apply(store, stopStrategy={"expression": "cronworkflow.failed > 0"})
    first = fire(store, cron, T0, T0.timestamp()).workflow
    set_phase(store, first, "Error")
    sweep(store, None)
    assert (fresh(store)["status"].get("succeeded"), fresh(store)["status"]["failed"]) == (0, 1)
    assert fire(store, fresh(store), T1, T1.timestamp()).outcome == STOPPED


def test_a_when_that_cannot_be_evaluated_is_a_condition_not_a_fire(store):
    cron = apply(store, when="{{cronworkflow.name}} ==")
    result = fire(store, cron, T0, T0.timestamp())
    assert result.outcome == ERROR and result.message.startswith("failed to evaluate when:")
    assert names(store) == []
    (condition,) = fresh(store)["status"]["conditions"]
    assert condition["message"] == result.message


def running_previous(store, policy: str) -> tuple[dict, str]:
    """A CronWorkflow whose 10:00 workflow is still Running at 10:01."""
    cron = apply(store, concurrencyPolicy=policy)
    first = fire(store, cron, T0, T0.timestamp()).workflow
    set_phase(store, first, "Running")
    return fresh(store), first


def test_allow_runs_alongside_a_running_previous(store):
    cron, first = running_previous(store, "Allow")
    result = fire(store, cron, T1, T1.timestamp())
    assert result.outcome == CREATED
    assert names(store) == [first, result.workflow]
    assert store.get("Workflow", "default", first)["spec"].get("shutdown") is None
    assert [r["name"] for r in fresh(store)["status"]["active"]] == [first, result.workflow]


def test_forbid_skips_while_previous_runs_and_fires_once_it_finished(store):
    cron, first = running_previous(store, "Forbid")
    result = fire(store, cron, T1, T1.timestamp())
    assert result.outcome == SKIPPED and "still running" in result.message
    assert names(store) == [first]
    assert fresh(store)["status"]["lastScheduledTime"] == "2024-01-01T10:00:00Z"
    set_phase(store, first, "Succeeded")
    t2 = datetime(2024, 1, 1, 10, 2, tzinfo=UTC)
    assert fire(store, fresh(store), t2, t2.timestamp()).outcome == CREATED
    assert [r["name"] for r in fresh(store)["status"]["active"]] == [f"tick-{int(t2.timestamp())}"]


def test_replace_terminates_the_running_previous_then_creates(store):
    cron, first = running_previous(store, "Replace")
    result = fire(store, cron, T1, T1.timestamp())
    assert result.outcome == CREATED and result.terminated == [first]
    old = store.get("Workflow", "default", first)
    assert old["spec"]["shutdown"] == "Terminate"
    assert old["status"]["phase"] == "Running"  # the runner stops it; the status is not ours to write
    assert names(store) == [first, result.workflow]


def test_replace_with_nothing_running_terminates_nothing(store):
    cron = apply(store, concurrencyPolicy="Replace")
    first = fire(store, cron, T0, T0.timestamp()).workflow
    set_phase(store, first, "Failed")
    result = fire(store, fresh(store), T1, T1.timestamp())
    assert result.outcome == CREATED and result.terminated == []
    assert store.get("Workflow", "default", first)["spec"].get("shutdown") is None


def test_replace_after_a_crash_mid_fire_does_not_stop_its_own_workflow(store):
    """The workflow for 10:01 was created, then the daemon died before recording it: firing 10:01
    again must only record it (not terminate it as "the previous one", not create a second)."""
    cron, first = running_previous(store, "Replace")
    from reconciler.schedule.firing import build_scheduled_workflow

    own = store.create(build_scheduled_workflow(cron, T1))
    set_phase(store, own["metadata"]["name"], "Running")
    result = fire(store, fresh(store), T1, T1.timestamp() + 30)
    assert result.outcome == EXISTS and result.terminated == []
    assert store.get("Workflow", "default", own["metadata"]["name"])["spec"].get("shutdown") is None
    assert fresh(store)["status"]["lastScheduledTime"] == "2024-01-01T10:01:00Z"


def test_workflow_template_ref_is_resolved_and_a_missing_one_is_a_condition(store):
    from reconciler.engine.submission import store_lookup

    cron = apply(store, workflowSpec={"workflowTemplateRef": {"name": "etl"}})
    result = fire(store, cron, T0, T0.timestamp(), lookup=store_lookup(store))
    assert result.outcome == ERROR and "etl" in result.message
    conditions = fresh(store)["status"]["conditions"]
    assert conditions[0]["type"] == "SubmissionError" and "etl" in conditions[0]["message"]
    store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                  "metadata": {"name": "etl", "namespace": "default"},
                  "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x"}}]}})
    result = fire(store, fresh(store), T1, T1.timestamp(), lookup=store_lookup(store))
    assert result.outcome == CREATED
    wf = store.get("Workflow", "default", result.workflow)
    assert wf["status"]["storedWorkflowTemplateSpec"]["entrypoint"] == "main"
    assert "conditions" not in fresh(store)["status"] or fresh(store)["status"]["conditions"] == []


# -- history --------------------------------------------------------------------------------------

def test_beyond_limits_keeps_the_most_recently_finished():
    def wf(name, phase, finished):
        return {"metadata": {"name": name}, "status": {"phase": phase, "finishedAtUnix": finished}}

    workflows = [wf("s1", "Succeeded", 1), wf("s2", "Succeeded", 5), wf("s3", "Succeeded", 3),
                 wf("f1", "Failed", 2), wf("e1", "Error", 4), wf("r1", "Running", None)]
    assert [w["metadata"]["name"] for w in beyond_limits(workflows, 2, 1)] == ["s1", "f1"]
    assert [w["metadata"]["name"] for w in beyond_limits(workflows, 0, 0)] == ["s1", "f1", "s3", "e1", "s2"]
    assert beyond_limits(workflows, 3, 2) == []


def test_history_limits_delete_old_workflows_with_their_files_and_artifacts(store, tmp_path):
    home = tmp_path / "home"
    apply(store, successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    made = []
    for minute, phase in enumerate(["Succeeded", "Failed", "Succeeded", "Error", "Succeeded", "Running"]):
        t = datetime(2024, 1, 1, 10, minute, tzinfo=UTC)
        name = fire(store, fresh(store), t, t.timestamp()).workflow
        set_phase(store, name, phase, finished_at=t.timestamp() + 30 if phase != "Running" else None)
        for sub in ("logs", "runs", "volumes"):
            (home / sub / "default" / name).mkdir(parents=True)
            (home / sub / "default" / name / "f.txt").write_text("x")
        LocalArtifactRepository(home / "artifacts").path(f"default/{name}/out.tgz").parent.mkdir(parents=True)
        (home / "artifacts" / "default" / name / "out.tgz").write_text("x")
        made.append(name)
    spec = parse_cron_spec(fresh(store)["spec"])
    deleted = enforce_history(store, home, spec, cron_workflows(store))
    # Kept: the 2 newest Succeeded (10:02, 10:04), the newest failure (10:03 Error), the running one.
    assert deleted == [made[0], made[1]]
    assert names(store) == [made[2], made[3], made[4], made[5]]
    for name in deleted:
        for sub in ("logs", "runs", "volumes", "artifacts"):
            assert not (home / sub / "default" / name).exists()
    assert (home / "artifacts" / "default" / made[2] / "out.tgz").exists()
    assert (home / "logs" / "default" / made[5] / "f.txt").exists()


def test_delete_workflow_data_cleans_files_even_when_the_object_is_gone(store, tmp_path):
    home = tmp_path / "home"
    (home / "logs" / "default" / "gone").mkdir(parents=True)
    assert delete_workflow_data(store, home, "default", "gone") is False
    assert not (home / "logs" / "default" / "gone").exists()
    assert ts(2024, 1, 1) == T0.replace(hour=0).timestamp()

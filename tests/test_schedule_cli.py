"""`reconciler cron list|get|suspend|resume` as a user runs them: real subprocesses on a data directory."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from reconciler.store import open_store
from tests.conftest import run_cli

CRON = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata:
  name: nightly
spec:
  schedules: ["0 2 * * *", "30 14 * * 1-5"]
  timezone: Europe/Paris
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 120
  workflowSpec:
    entrypoint: main
    templates:
      - name: main
        container: {image: alpine, command: [echo, hi]}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata:
  name: broken
spec:
  schedule: "every day at nine"
  workflowSpec:
    entrypoint: main
    templates:
      - name: main
        container: {image: alpine, command: [echo, hi]}
"""


@pytest.fixture
def applied(home: Path, tmp_path: Path) -> Path:
    good, broken = CRON.split("---\n")
    path = tmp_path / "crons.yaml"
    path.write_text(good)
    out = run_cli(home, "apply", str(path), check=True).stdout
    assert "cronworkflow/nightly created" in out
    # lint refuses an unusable schedule; one that reached the store another way must still show.
    with open_store(home / "store.db") as store:
        obj = yaml.safe_load(broken)
        obj["metadata"]["namespace"] = "default"
        store.create(obj)
    return home


def test_apply_refuses_an_unusable_schedule_with_file_and_line(home: Path, tmp_path: Path):
    path = tmp_path / "crons.yaml"
    path.write_text(CRON)
    proc = run_cli(home, "apply", str(path))
    assert proc.returncode == 2
    assert f"{path}:21: spec.schedule: schedule 'every day at nine'" in proc.stderr
    assert run_cli(home, "cron", "list", "-o", "name", check=True).stdout.split() == []


def table(stdout: str) -> tuple[list[str], dict[str, str]]:
    lines = stdout.splitlines()
    header = lines[0]
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    return header.split("  "), rows


def test_list_shows_schedule_suspended_next_and_last_run(applied):
    proc = run_cli(applied, "cron", "list", check=True)
    header = proc.stdout.splitlines()[0]
    for column in ("NAME", "NAMESPACE", "AGE", "SCHEDULE", "SUSPENDED", "NEXT RUN", "LAST RUN"):
        assert column in header
    _, rows = table(proc.stdout)
    assert "0 2 * * *,30 14 * * 1-5" in rows["nightly"] and "false" in rows["nightly"]
    assert rows["nightly"].rstrip().endswith("N/A")  # never ran
    assert rows["broken"].count("N/A") == 2  # unusable schedule: no next run either


def test_list_json_and_name_outputs(applied):
    items = json.loads(run_cli(applied, "cron", "list", "-o", "json", check=True).stdout)
    assert [i["metadata"]["name"] for i in items] == ["broken", "nightly"]
    assert items[1]["spec"]["timezone"] == "Europe/Paris"
    assert run_cli(applied, "cron", "list", "-o", "name", check=True).stdout.split() == ["broken", "nightly"]
    assert run_cli(applied, "cron", "list", "-n", "other", "-o", "name", check=True).stdout == ""
    assert run_cli(applied, "cron", "list", "-A", "-o", "name", check=True).stdout.split() == ["broken", "nightly"]


def test_get_shows_the_schedule_the_next_and_the_last_run(applied):
    with open_store(applied / "store.db") as store:
        store.patch("CronWorkflow", "default", "nightly", {"status": {
            "lastScheduledTime": "2024-01-01T01:00:00Z",
            "active": [{"kind": "Workflow", "name": "nightly-1704070800", "namespace": "default"}]}})
    out = run_cli(applied, "cron", "get", "nightly", check=True).stdout
    assert "Schedule:" in out and "0 2 * * *,30 14 * * 1-5" in out
    assert "Europe/Paris" in out and "Forbid" in out and "120" in out
    assert "LastScheduledTime:" in out and "2024-01-01T01:00:00Z" in out
    assert "nightly-1704070800" in out
    line = next(x for x in out.splitlines() if x.startswith("NextScheduledTime:"))
    stamp = line.split()[1]
    nxt = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert 0 < nxt.timestamp() - time.time() <= 24 * 3600
    assert nxt.minute in (0, 30)


def test_get_reports_an_unusable_schedule(applied):
    out = run_cli(applied, "cron", "get", "broken", check=True).stdout
    assert "expected 5 fields" in out
    line = next(x for x in out.splitlines() if x.startswith("NextScheduledTime:"))
    assert line.split()[1:] == ["N/A"]


def test_get_json_and_yaml(applied):
    as_json = json.loads(run_cli(applied, "cron", "get", "nightly", "-o", "json", check=True).stdout)
    as_yaml = yaml.safe_load(run_cli(applied, "cron", "get", "nightly", "-o", "yaml", check=True).stdout)
    assert as_json == as_yaml
    assert as_json["spec"]["concurrencyPolicy"] == "Forbid"


def test_suspend_and_resume_patch_spec_suspend(applied):
    assert run_cli(applied, "cron", "suspend", "nightly", check=True).stdout.strip() == "CronWorkflow 'nightly' suspended"
    assert json.loads(run_cli(applied, "cron", "get", "nightly", "-o", "json", check=True).stdout)["spec"]["suspend"] is True
    _, rows = table(run_cli(applied, "cron", "list", check=True).stdout)
    assert " true " in rows["nightly"] and rows["nightly"].count("N/A") == 2
    assert run_cli(applied, "cron", "resume", "nightly", check=True).stdout.strip() == "CronWorkflow 'nightly' resumed"
    obj = json.loads(run_cli(applied, "cron", "get", "nightly", "-o", "json", check=True).stdout)
    assert obj["spec"]["suspend"] is False
    assert obj["spec"]["workflowSpec"]["entrypoint"] == "main"  # a patch, not a replace


@pytest.mark.parametrize("command", [["get", "nope"], ["suspend", "nope"], ["resume", "nope"]])
def test_unknown_cron_exits_1(applied, command):
    proc = run_cli(applied, "cron", *command)
    assert proc.returncode == 1
    assert "cronworkflow 'nope' not found in namespace default" in proc.stderr

"""`reconciler up --config FILE` (RECONCILER_CONFIG): validated settings, overridden by flags and
environment variables; the daemon then serves /metrics parsed by prometheus-client's parser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_api_support import TOKEN, Client, free_port

pytestmark = pytest.mark.xdist_group("daemon")


def _up(home: Path, config: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    full.update(RECONCILER_HOME=str(home), RECONCILER_CONFIG=str(config), RECONCILER_API_TOKEN=TOKEN, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_config_file_settings_apply_and_metrics_are_served(home: Path, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"listen: 127.0.0.1:{port}\nmaxRunningWorkflows: 3\nlogFormat: json\ngrace: 1\n")
    proc = _up(home, config)
    try:
        client = Client(port)
        client.wait_ready(proc, 60, "/readyz")
        reply = client.get("/metrics", token=False)
        assert reply.status == 200
        names = {f.name for f in text_string_to_metric_families(reply.body.decode())}
        assert {"reconciler_workflows", "reconciler_node_duration_seconds", "reconciler_sync_duration_seconds",
                "reconciler_scheduler_lag_seconds", "reconciler_semaphore_waits"} <= names
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert out.lstrip().startswith("{")  # logFormat: json from the file


def test_environment_overrides_the_file(home: Path, tmp_path: Path) -> None:
    file_port, env_port = free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"listen: 127.0.0.1:{file_port}\n")
    proc = _up(home, config, env={"RECONCILER_LISTEN": f"127.0.0.1:{env_port}"})
    try:
        Client(env_port).wait_ready(proc, 60, "/healthz")
        with pytest.raises(OSError):
            Client(file_port, timeout=2).get("/healthz")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.parametrize(("text", "message"), [
    ("pollInterval: 0\n", "pollInterval: 0 is less than the minimum of 0.1"),
    ("bogus: 1\n", "'bogus' was unexpected"),
    ("backend: etcd\n", "backend: 'etcd' is not one of ['sqlite', 'kubernetes']"),
    ("kubernetes: {namespaces: [Bad_NS]}\n", "kubernetes.namespaces.0: 'Bad_NS' does not match"),
    ("listen: [1\n", "not valid YAML"),
])
def test_a_bad_config_file_is_refused_with_file_and_field(home: Path, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    started = time.monotonic()
    proc = _up(home, config)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert str(config) in out and message in out
    assert time.monotonic() - started < 20

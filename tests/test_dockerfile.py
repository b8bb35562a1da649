"""The Dockerfile and .dockerignore, checked by reading them: there is no Docker daemon (and no
registry to pull python:3.11-slim from) on these machines, so the image is NOT built here.
The HEALTHCHECK command is run for real against a local HTTP server."""

from __future__ import annotations

import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        lines.append(current)
        current = ""
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def one(stage, word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert found, f"no {word}"
    return found[-1]


def env_of(stage) -> dict[str, str]:
    env = {}
    for word, rest in stage:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_base_image_is_python_311_slim():
    ins = instructions()
    args = dict(rest.split("=", 1) for word, rest in ins if word == "ARG" and "=" in rest)
    froms = [rest.split()[0] for word, rest in ins if word == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f) for f in froms]
    assert resolved and all(f == "python:3.11-slim" for f in resolved), resolved


def test_runs_as_a_numeric_non_root_user():
    stage = final_stage()
    user = one(stage, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, user
    assert any("--uid 10001" in rest for w, rest in stage if w == "RUN")
    # USER comes after every RUN of the final stage: nothing runs as root after it.
    words = [w for w, _ in stage]
    assert max(i for i, w in enumerate(words) if w == "RUN") < words.index("USER")


def test_entrypoint_and_cmd_run_reconciler_up():
    stage = final_stage()
    assert json.loads(one(stage, "ENTRYPOINT")) == ["reconciler"]
    assert json.loads(one(stage, "CMD")) == ["up"]


def test_env_expose_and_chart_agree():
    stage = final_stage()
    env = env_of(stage)
    assert env["RECONCILER_HOME"] == "/var/lib/reconciler"
    assert env["RECONCILER_LISTEN"] == "0.0.0.0:8080"
    port = int(env["RECONCILER_LISTEN"].rsplit(":", 1)[1])
    assert one(stage, "EXPOSE").split() == [str(port)]
    values = yaml.safe_load((ROOT / "helm" / "reconciler" / "values.yaml").read_text())
    assert values["config"]["port"] == port
    assert one(stage, "WORKDIR") == env["RECONCILER_HOME"]


def test_installs_the_package_git_and_ssh():
    ins = instructions()
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert re.search(r"pip install \.", runs)
    assert re.search(r"apt-get install -y --no-install-recommends git openssh-client ca-certificates", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    copies = [rest for word, rest in ins if word == "COPY"]
    assert "pyproject.toml setup.py README.md ./" in copies and "reconciler ./reconciler" in copies
    assert "sample-repo ./sample-repo" in copies  # setup.py packages it: `reconciler sample-repo` in the image


def _healthcheck_command() -> list[str]:
    rest = one(final_stage(), "HEALTHCHECK")
    cmd = json.loads(rest[rest.index("CMD") + 3:].strip())
    assert cmd[0] == "python" and "urllib.request" in cmd[2] and "/healthz" in cmd[2]
    return [sys.executable, *cmd[1:]]


class _Health(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(self.code if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("code, expected_rc", [(200, 0), (500, 1)])
def test_healthcheck_command_probes_healthz_on_the_listen_port(code, expected_rc):
    handler = type("Handler", (_Health,), {"code": code})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"RECONCILER_LISTEN": f"0.0.0.0:{server.server_address[1]}", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(_healthcheck_command(), env=env, capture_output=True, timeout=20, check=False)
        assert done.returncode == expected_rc, done.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_dockerignore_lets_in_only_what_the_build_copies():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "an allow-list: everything excluded first"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "setup.py", "README.md", "reconciler", "sample-repo"}
    for cache in ("**/__pycache__", "**/.pytest_cache", "**/*.egg-info"):
        assert cache in lines

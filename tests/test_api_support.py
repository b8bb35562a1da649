"""Helpers for the HTTP API tests (tests/test_api_*.py): a real `reconciler up` on a free port, and a
small real-HTTP client. No tests here."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN = "test-token-0123456789"
WEBHOOK_SECRET = "hook-secret-abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    port: int
    token: str | None = TOKEN
    host: str = "127.0.0.1"
    timeout: float = 30

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                token: str | None | bool = True) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        hdrs = dict(headers or {})
        use = self.token if token is True else (token or None)
        if use:
            hdrs["Authorization"] = f"Bearer {use}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def wait_ready(self, proc: subprocess.Popen | None = None, timeout: float = 60, path: str = "/readyz") -> Reply:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"daemon exited with {proc.returncode}")
            try:
                last = self.get(path, token=False)
                if last.status == 200:
                    return last
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{path} not ready in {timeout}s: {last}")


def github_signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Daemon:
    home: Path
    port: int
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> Client:
        return Client(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_daemon(home: Path, tmp: Path, *args: str, env: dict[str, str] | None = None,
                 ready_path: str = "/readyz", timeout: float = 60) -> Daemon:
    port = free_port()
    full_env = dict(os.environ, RECONCILER_HOME=str(home), RECONCILER_API_TOKEN=TOKEN,
                    RECONCILER_WEBHOOK_SECRET=WEBHOOK_SECRET, **(env or {}))
    for name in ("RECONCILER_SERVER", "RECONCILER_LISTEN", "RECONCILER_API_OPEN_READS"):
        if not env or name not in env:
            full_env.pop(name, None)
    log = tmp / f"up-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--grace", "2",
                                 "--listen", f"127.0.0.1:{port}", *args], stdout=out, stderr=out, env=full_env)
    daemon = Daemon(home, port, proc, log, full_env)
    try:
        daemon.client.wait_ready(proc, timeout, ready_path)
    except AssertionError as exc:
        daemon.stop()
        raise AssertionError(f"{exc}\n{daemon.logs()[-3000:]}") from None
    return daemon

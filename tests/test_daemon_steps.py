"""`daemon: true`: the step counts as done once started, is reachable at {{steps.X.ip}} (127.0.0.1:
steps share the host network) while its scope runs, and is killed when the scope ends."""

from __future__ import annotations

import socket

import pytest

from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import node, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"from-daemon")
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", {port}), H).serve_forever()
"""

CLIENT = """
import time, urllib.request
for _ in range(100):
    try:
        print(urllib.request.urlopen("http://{{{{inputs.parameters.ip}}}}:{port}/", timeout=1).read().decode())
        break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit("daemon never answered")
"""


def _wf(port: int) -> str:
    def block(text: str) -> str:
        return "\n".join("        " + line for line in text.format(port=port).strip().splitlines())
    return f"""
metadata: {{name: dmn}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: server, template: server}}
    - - {{name: client, template: client, arguments: {{parameters: [{{name: ip, value: "{{{{steps.server.ip}}}}"}}]}}}}
  - name: server
    daemon: true
    script:
      image: python
      command: [python]
      source: |
{block(SERVER)}
  - name: client
    inputs: {{parameters: [{{name: ip}}]}}
    script:
      image: python
      command: [python]
      source: |
{block(CLIENT)}
"""


def test_a_daemon_serves_its_scope_and_is_killed_when_the_scope_ends(tmp_path) -> None:
    port = _free_port()
    wf = run(tmp_path, _wf(port), limit=30)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "client")["outputs"]["result"] == "from-daemon"
    server = node(wf, "server")
    assert server["phase"] == "Succeeded" and "daemoned" not in server
    assert node(wf, "client")["inputs"]["parameters"][0]["value"] == "127.0.0.1"
    with socket.socket() as s, pytest.raises(OSError):  # nothing listens any more
        s.settimeout(1)
        s.connect(("127.0.0.1", port))


def test_a_daemon_that_exits_early_is_failed(tmp_path) -> None:
    text = """
metadata: {name: early}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: d, template: d}
    - - {name: wait, template: wait}
  - name: d
    daemon: true
    container: {image: a, command: ["true"]}
  - name: wait
    suspend: {duration: "1"}
"""
    wf = run(tmp_path, text, executor=shell_executor())
    assert node(wf, "d")["phase"] == "Failed"
    assert node(wf, "d")["message"].startswith("daemon exited before its scope ended")

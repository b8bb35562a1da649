"""`http` templates against a real HTTP server on 127.0.0.1: the body is outputs.result, a 2xx
(or the successCondition) decides the phase, as in Argo's agent (workflow/executor/agent.go)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.spec import load_text, validate_documents
from tests.engine_inprocess import shell_executor
from tests.test_engine_helpers import node, run


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path == "/ping":
            code, text = 200, "pong"
        elif self.path == "/echo":
            code, text = 200, json.dumps({"method": self.command, "token": self.headers.get("X-Token"), "body": body})
        elif self.path == "/gone":
            code, text = 404, "gone"
        else:
            code, text = 500, "boom"
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _wf(http: str, check: str = "") -> str:
    steps = "      - - {name: call, template: call}\n"
    if check:
        steps += f"      - - {{name: check, template: check, arguments: {{parameters: [{{name: got, value: '{check}'}}]}}}}\n"
    return f"""
metadata: {{name: h}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
{steps}  - name: call
    http: {http}
  - name: check
    inputs: {{parameters: [{{name: got}}]}}
    container: {{image: alpine, command: [sh, -c, 'test "{{{{inputs.parameters.got}}}}" = ok']}}
"""


def test_the_response_body_is_outputs_result(tmp_path, server) -> None:
    text = _wf(f'{{url: "{server}/ping"}}', check='{{=steps.call.outputs.result == "pong" ? "ok" : "no"}}')
    wf = run(tmp_path, text, executor=shell_executor())
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "call")["outputs"]["result"] == "pong"


def test_method_headers_and_body_are_sent(tmp_path, server) -> None:
    http = f'{{url: "{server}/echo", method: POST, headers: [{{name: X-Token, value: t1}}], body: "hello"}}'
    wf = run(tmp_path, _wf(http), executor=shell_executor())
    assert json.loads(node(wf, "call")["outputs"]["result"]) == {"method": "POST", "token": "t1", "body": "hello"}


def test_a_non_2xx_answer_fails_the_step_without_a_success_condition(tmp_path, server) -> None:
    wf = run(tmp_path, _wf(f'{{url: "{server}/boom"}}'), executor=shell_executor())
    call = node(wf, "call")
    assert (wf["status"]["phase"], call["phase"]) == ("Failed", "Failed")
    assert call["message"] == "received non-2xx response code: 500"


def test_success_condition_sees_the_response(tmp_path, server) -> None:
    ok = run(tmp_path / "a", _wf(f'{{url: "{server}/gone", successCondition: "response.statusCode == 404"}}'),
             executor=shell_executor())
    assert node(ok, "call")["phase"] == "Succeeded"
    bad = run(tmp_path / "b", _wf(f'{{url: "{server}/ping", successCondition: "response.body == \\"x\\""}}'),
              executor=shell_executor())
    assert node(bad, "call")["message"] == "successCondition 'response.body == \"x\"' evaluated false"


def test_only_http_and_https_urls_are_requested(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    wf = run(tmp_path, _wf(f'{{url: "file://{secret}"}}'), executor=shell_executor())
    call = node(wf, "call")
    assert call["phase"] == "Error"
    assert "only http and https URLs are requested" in call["message"]
    assert "do not read" not in json.dumps(wf)


def test_an_http_template_lints_clean_and_a_secret_header_is_warned() -> None:
    text = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n" + _wf(
        '{url: "https://example.invalid/", headers: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]}')
    problems = validate_documents(load_text(text, "wf.yaml"))
    assert [(p.severity, p.field) for p in problems] == [
        ("warning", "spec.templates[1].http.headers[0].valueFrom")]

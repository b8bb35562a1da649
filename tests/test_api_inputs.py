"""Bad input to the HTTP API, over real HTTP to a real uvicorn server (in this process, on port 0):
the right 4xx, a JSON error body, and nothing changed in the store."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import operations
from reconciler.api.app import ApiState, create_app
from reconciler.api.server import ApiServer
from reconciler.api.settings import ApiConfigError, ApiSettings, api_settings
from reconciler.store import open_store

from .test_api_support import TOKEN, Client, github_signature

HELLO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: hello}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [echo, hi]}
"""


class Api:
    def __init__(self, tmp: Path, settings: ApiSettings) -> None:
        self.home = tmp / "home"
        self.home.mkdir(exist_ok=True)
        self.store = open_store(self.home / "store.db")
        operations.submit_text(self.store, HELLO, "hello.yaml", "default", {})
        self.server = ApiServer(create_app(ApiState(self.store, self.home, settings)), "127.0.0.1", 0)
        self.server.start()
        self.client = Client(self.server.port, token=settings.token)

    def version(self) -> str:
        return self.store.current_version()

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path, ApiSettings(port=0, token=TOKEN))
    yield a
    a.close()


def error_of(reply) -> dict:
    body = reply.json()
    assert set(body) == {"code", "message", "problems"} and body["code"] == reply.status, body
    return body


def test_missing_or_wrong_token_is_401_with_a_bearer_challenge(api):
    before = api.version()
    for token in (False, "wrong-token"):
        for method, path in (("GET", "/api/v1/workflows"), ("GET", "/api/v1/workflows/default/hello"),
                             ("PUT", "/api/v1/workflows/default/hello/suspend"),
                             ("DELETE", "/api/v1/workflows/default/hello"), ("POST", "/api/v1/sync")):
            reply = api.client.request(method, path, token=token)
            assert reply.status == 401, (method, path, reply.body)
            assert reply.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in reply.body.decode()
    basic = api.client.get("/api/v1/workflows", token=False, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status == 401
    assert api.version() == before
    assert api.client.get("/api/v1/workflows/default/hello").status == 200
    for path in ("/healthz", "/readyz", "/api/v1/openapi.json"):
        assert api.client.get(path, token=False).status == 200, path


def test_open_reads_still_need_the_token_to_write(tmp_path):
    a = Api(tmp_path, ApiSettings(port=0, token=TOKEN, open_reads=True))
    try:
        assert a.client.get("/api/v1/workflows", token=False).status == 200
        assert a.client.get("/api/v1/workflows/default/hello/log", token=False).status == 200
        assert a.client.request("PUT", "/api/v1/workflows/default/hello/suspend", token=False).status == 401
        assert a.client.request("PUT", "/api/v1/workflows/default/hello/suspend").status == 200
    finally:
        a.close()


def test_malformed_json_is_400_and_stores_nothing(api):
    before = api.version()
    for body in (b"{bad", b'{"manifest": ', b"\xff\xfe", b"[1, 2]", b"", b'"just a string"'):
        reply = api.client.request("POST", "/api/v1/workflows/default", body,
                                   headers={"Content-Type": "application/json"})
        assert reply.status == 400, (body, reply.body)
        assert error_of(reply)["message"]
    assert api.client.request("PUT", "/api/v1/workflows/default/hello/resume", b"{nope").status == 400
    assert api.client.request("POST", "/api/v1/workflows/default", {"manifest": 3}).status == 400
    assert api.client.request("POST", "/api/v1/workflows/default",
                              {"manifest": HELLO, "parameters": ["a=b"]}).status == 400
    assert api.client.request("POST", "/api/v1/workflows/default", {"kind": "Pod"}).status == 400
    assert api.version() == before


def test_invalid_workflows_are_400_with_file_line_problems(api):
    before = api.version()
    bad = HELLO.replace("entrypoint: main", "entrypoint: main\n  daemonize: true")
    reply = api.client.request("POST", "/api/v1/workflows/default", {"manifest": bad, "filename": "wf/hello.yaml"})
    body = error_of(reply)
    assert reply.status == 400 and body["problems"], body
    assert body["problems"][0].startswith("wf/hello.yaml:6: spec.daemonize:"), body["problems"]
    other_ns = api.client.request("POST", "/api/v1/workflows/default",
                                  {"manifest": HELLO.replace("{name: hello}", "{name: x, namespace: prod}")})
    assert other_ns.status == 400 and "prod" in error_of(other_ns)["message"]
    taken = api.client.request("POST", "/api/v1/workflows/default", {"manifest": HELLO})
    assert taken.status == 409
    assert api.version() == before


def test_submit_as_manifest_or_object_then_controls(api):
    assert len(api.client.get("/api/v1/workflows").json()["items"]) == 1  # cached now; writes must show
    created = api.client.request("POST", "/api/v1/workflows/team-a",
                                 {"manifest": HELLO.replace("{name: hello}", "{generateName: hi-}"),
                                  "parameters": {}})
    assert created.status == 201, created.body
    name = created.json()["items"][0]["metadata"]["name"]
    obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "as-json"},
           "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine:3"}}]}}
    assert api.client.request("POST", "/api/v1/workflows/team-a", obj).status == 201
    assert api.client.request("POST", "/api/v1/workflows/team-a", {"workflow": {**obj, "metadata": {
        "name": "wrapped"}}}).status == 201
    listed = api.client.get("/api/v1/workflows?namespace=team-a").json()["items"]
    assert {w["metadata"]["name"] for w in listed} == {name, "as-json", "wrapped"}
    assert all("nodes" not in w["status"] for w in listed)
    assert len(api.client.get("/api/v1/workflows").json()["items"]) == 4
    assert len(api.client.get("/api/v1/workflows/team-a?limit=1").json()["items"]) == 1
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/suspend").json()["action"] == "suspended"
    assert api.store.get("Workflow", "team-a", name)["spec"]["suspend"] is True
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/resume", {"node": 5}).status == 400
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/resume",
                              {"parameters": {"a": "b"}}).status == 400  # outputs need a node
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/resume").status == 200
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/resubmit", {"memoized": "yes"}).status == 400
    assert api.client.request("PUT", f"/api/v1/workflows/team-a/{name}/retry").status == 409  # not finished
    assert api.client.request("DELETE", f"/api/v1/workflows/team-a/{name}").status == 200
    assert api.client.get(f"/api/v1/workflows/team-a/{name}").status == 404
    assert name not in {w["metadata"]["name"] for w in api.client.get("/api/v1/workflows").json()["items"]}
    api.store.patch("Workflow", "team-a", "as-json", {"status": {"phase": "Failed"}})
    phases = {w["metadata"]["name"]: w["status"].get("phase") for w in
              api.client.get("/api/v1/workflows?namespace=team-a").json()["items"]}
    assert phases["as-json"] == "Failed"


def test_unknown_workflow_is_404_and_nothing_changes(api):
    before = api.version()
    for method, path in (("GET", "/api/v1/workflows/default/nope"), ("DELETE", "/api/v1/workflows/default/nope"),
                         ("GET", "/api/v1/workflows/default/nope/log"), ("GET", "/api/v1/workflows/other/hello"),
                         *[("PUT", f"/api/v1/workflows/default/nope/{op}") for op in
                           ("suspend", "resume", "stop", "terminate", "retry", "resubmit")]):
        reply = api.client.request(method, path)
        assert reply.status == 404, (method, path, reply.body)
        assert "nope" in error_of(reply)["message"] or "hello" in error_of(reply)["message"]
    assert api.client.get("/api/v1/workflows/default/hello/log?node=nope").status == 404
    assert api.client.get("/api/v1/no-such-route").status == 404
    assert api.client.request("PATCH", "/api/v1/workflows/default/hello").status == 405
    assert api.version() == before


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/workflows/default/../x"),
    ("GET", "/api/v1/workflows/default/%2e%2e%2fx"),
    ("DELETE", "/api/v1/workflows/default/%2e%2e%2fhello"),
    ("DELETE", "/api/v1/workflows/default/%2e%2e"),
    ("PUT", "/api/v1/workflows/default/..%2Fhello/suspend"),
    ("PUT", "/api/v1/workflows/default/../default/hello/suspend"),
    ("DELETE", "/api/v1/workflows/default//hello"),
    ("DELETE", "/api/v1/workflows/default/Hello"),
    ("DELETE", "/api/v1/workflows/default/hello_1"),
    ("DELETE", "/api/v1/workflows/default/-hello"),
    ("DELETE", "/api/v1/workflows/default/" + "a" * 254),
    ("DELETE", "/api/v1/workflows/Default/hello"),
    ("DELETE", "/api/v1/workflows/de.fault/hello"),
    ("POST", "/api/v1/workflows/..%5cx"),
    ("GET", "/api/v1/workflows?namespace=../etc"),
    ("GET", "/api/v1/cron-workflows?namespace=a%2Fb"),
    ("GET", "/api/v1/sync/history/..%2f..%2fx"),
    ("GET", "/api/v1/sync/history/UP"),
    ("GET", "/api/v1/workflows/default/hello%00/log"),
])
def test_path_like_and_invalid_names_are_400_and_change_nothing(api, method, path):
    before = api.version()
    body = {"manifest": HELLO} if method == "POST" else None
    reply = api.client.request(method, path, body)
    assert reply.status == 400, (path, reply.status, reply.body)
    assert error_of(reply)["message"]
    assert api.version() == before
    assert api.store.get("Workflow", "default", "hello")


def test_oversized_bodies_are_413_before_parsing(api):
    before = api.version()
    big = b'{"manifest": "' + b"x" * (1 << 20) + b'"}'
    reply = api.client.request("POST", "/api/v1/workflows/default", big, headers={"Content-Type": "application/json"})
    assert reply.status == 413 and error_of(reply)
    # Without a Content-Length (chunked): counted as it arrives.
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=30)
    conn.putrequest("POST", "/api/v1/workflows/default")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(20):
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the whole body is sent
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()
    hook = api.client.request("POST", "/api/v1/webhook/github", big, token=False,
                              headers={"X-Hub-Signature-256": github_signature(big)})
    assert hook.status == 413
    assert api.version() == before


def test_webhooks_without_a_secret_are_404_and_sync_without_a_repo_is_503(api):
    body = b'{"ref": "refs/heads/dev"}'
    assert api.client.request("POST", "/api/v1/webhook/github", body, token=False,
                              headers={"X-Hub-Signature-256": github_signature(body)}).status == 404
    assert api.client.request("POST", "/api/v1/webhook/gitlab", body, token=False,
                              headers={"X-Gitlab-Token": "x"}).status == 404
    reply = api.client.request("POST", "/api/v1/sync")
    assert reply.status == 503 and "--repo" in error_of(reply)["message"]
    assert api.client.get("/api/v1/sync/status").json()["items"] == []


def test_without_a_token_loopback_may_do_everything_but_not_for_other_sites(tmp_path):
    a = Api(tmp_path, ApiSettings(port=0, token=None))
    try:
        c = a.client
        assert c.get("/api/v1/workflows").status == 200
        assert c.get("/api/v1/workflows", headers={"Host": f"localhost:{a.server.port}"}).status == 200
        rebound = c.get("/api/v1/workflows", headers={"Host": "attacker.example"})
        assert rebound.status == 403  # DNS rebinding
        before = a.version()
        cross = c.request("PUT", "/api/v1/workflows/default/hello/suspend", headers={"Origin": "https://evil.example"})
        assert cross.status == 403 and a.version() == before
        same = c.request("PUT", "/api/v1/workflows/default/hello/suspend",
                         headers={"Origin": f"http://127.0.0.1:{a.server.port}"})
        assert same.status == 200
    finally:
        a.close()


def test_openapi_lists_the_routes(api):
    doc = api.client.get("/api/v1/openapi.json", token=False).json()
    paths = doc["paths"]
    for path in ("/api/v1/workflows", "/api/v1/workflows/{namespace}/{name}", "/api/v1/workflows/{namespace}/{name}/log",
                 "/api/v1/workflows/{namespace}/{name}/resume", "/api/v1/cron-workflows", "/api/v1/sync/status",
                 "/api/v1/sync/history/{env}", "/api/v1/sync", "/api/v1/webhook/github", "/healthz", "/readyz"):
        assert path in paths, path
    assert "requestBody" in paths["/api/v1/workflows/{namespace}"]["post"]


def test_settings_rules(tmp_path):
    assert api_settings("off", {}) is None
    default = api_settings(None, {})
    assert (default.host, default.port, default.token, default.explicit) == ("127.0.0.1", 8080, None, False)
    with pytest.raises(ApiConfigError, match="without a token"):
        api_settings("0.0.0.0:8080", {})
    public = api_settings("0.0.0.0:9000", {"RECONCILER_API_TOKEN": "t"})
    assert public.port == 9000 and public.explicit
    assert api_settings("[::1]:0", {}).host == "::1"
    assert api_settings("9001", {}).host == "127.0.0.1"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert api_settings(None, {"RECONCILER_API_TOKEN_FILE": str(token_file)}).token == "from-file"
    with pytest.raises(ApiConfigError, match="not both"):
        api_settings(None, {"RECONCILER_API_TOKEN_FILE": str(token_file), "RECONCILER_API_TOKEN": "x"})
    with pytest.raises(ApiConfigError, match="_FILE"):
        api_settings(None, {"RECONCILER_WEBHOOK_SECRET_FILE": str(tmp_path / "missing")})
    for bad in ("localhost", "host:port", "1.2.3.4:70000"):
        with pytest.raises(ApiConfigError):
            api_settings(bad, {})
    assert api_settings(None, {"RECONCILER_API_OPEN_READS": "true"}).open_reads


def test_errors_never_echo_the_body_back_as_json_of_another_shape(api):
    reply = api.client.request("POST", "/api/v1/workflows/default", json.dumps({"manifest": "kind: [unclosed"}))
    assert reply.status == 400 and error_of(reply)["problems"]

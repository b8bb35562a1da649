"""Issue 10, parts 5 and 6, against a real `reconciler up` over real HTTP: git credentials stay off disk
and out of every process's arguments (a real git HTTP server that wants basic auth), the data
directory is private, malformed webhook signatures and deeply nested JSON are refused, a replayed
webhook delivery changes nothing, and scoped tokens keep the dev team out of prod. Each test checks
that the attacker's goal was not reached and that the daemon is still up."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.source import GitSource

from ..gitops_repo import GitRemote, make_remote, template
from ..test_api_support import Client, Daemon, github_signature, start_daemon
from .git_http import GitHttpServer

pytestmark = pytest.mark.xdist_group("security-api")
PASSWORD = "Pw-9f3kq-NOT-in-any-file"

HELLO = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine:3, command: [sh, -c, 'echo hello > /tmp/out.txt; cat /tmp/out.txt']}
    outputs:
      artifacts:
      - {name: out, path: /tmp/out.txt}
"""


def wait_for(predicate, timeout: float = 40.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def env_status(client: Client, env: str) -> dict:
    reply = client.get("/api/v1/sync/status")
    assert reply.status == 200, reply.body
    return {e["name"]: e for e in reply.json()["items"]}[env]


def passes(client: Client) -> int:
    return client.get("/api/v1/sync/status").json()["passes"]


def alive(daemon: Daemon) -> bool:
    return daemon.proc.poll() is None and daemon.client.get("/healthz", token=False).status == 200


# ---- part 5: git credentials ---------------------------------------------------------------------------


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descends_from(pid: int, root: int) -> bool:
    while pid and pid != 1:
        if pid == root:
            return True
        pid = _parent(pid) or 0
    return False


class CmdlineWatch:
    """Reads /proc/PID/cmdline of every process this test started (the daemon, its git processes, their
    helpers) while running: which git processes were seen, and whether any had the password among its
    arguments. Other tests' processes (other xdist workers) are left out: one of them puts a password
    into git's arguments on purpose, to leave the state an older version left."""

    def __init__(self, secret: str) -> None:
        self.root = os.getpid()
        self.secret = secret.encode()
        self.git_seen: set[bytes] = set()
        self.leaks: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        cmdline = f.read()
                except OSError:
                    continue
                interesting = self.secret in cmdline or b"git" in cmdline.split(b"\0")[0]
                if not interesting or not _descends_from(int(entry.name), self.root):
                    continue
                if self.secret in cmdline:
                    self.leaks.append(cmdline)
                if b"git" in cmdline.split(b"\0")[0]:
                    self.git_seen.add(cmdline.replace(b"\0", b" ").strip())
            time.sleep(0.005)


def git_shim(folder: Path) -> tuple[Path, Path]:
    """A `git` first on PATH that records its arguments (one NUL-separated line per call), then runs git."""
    folder.mkdir()
    record = folder / "argv.log"
    shim = folder / "git"
    shim.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" >> '{record}'\necho >> '{record}'\n"
                    f"exec '{shutil.which('git')}' \"$@\"\n")
    shim.chmod(0o755)
    return folder, record


def files_containing(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


@pytest.fixture
def auth_remote(tmp_path: Path) -> Iterator[tuple[GitRemote, GitHttpServer]]:
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    server = GitHttpServer(remote.bare.parent, "alice", PASSWORD, delay=0.3).start()
    try:
        yield remote, server
    finally:
        server.stop()


@pytest.mark.parametrize("given", ["in-url", "from-environment"])
def test_git_password_is_never_written_to_disk_nor_passed_as_an_argument(auth_remote, tmp_path, given):
    remote, server = auth_remote
    shim_dir, argv_log = git_shim(tmp_path / "shim")
    user_home = tmp_path / "user"  # the daemon user's git config keeps whatever credentials git approves
    user_home.mkdir()
    (user_home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}", "HOME": str(user_home)}
    if given == "in-url":  # the repository URL as the issue gave it (through the environment, not our argv)
        env["RECONCILER_REPO"] = server.url(remote.bare.name, f"alice:{PASSWORD}")
    else:
        secret_file = tmp_path / "git-password"
        secret_file.write_text(PASSWORD + "\n")
        env.update(RECONCILER_REPO=server.url(remote.bare.name), RECONCILER_GIT_USERNAME="alice",
                   RECONCILER_GIT_PASSWORD_FILE=str(secret_file))
    home = tmp_path / "home"
    with CmdlineWatch(PASSWORD) as watch:
        daemon = start_daemon(home, tmp_path, "--poll-interval", "3600", env=env)
        try:
            assert env_status(daemon.client, "dev")["commit"] == remote.remote_head("dev")
            new = remote.commit("dev", {"workflows/report.yaml": template("report")}, "add report")
            synced = daemon.client.request("POST", "/api/v1/sync?wait=true&env=dev")
            assert synced.status == 200, synced.body
            assert env_status(daemon.client, "dev")["commit"] == new  # fetched through basic auth
            assert alive(daemon)
        finally:
            daemon.stop()
    # The server asked for the password and got it: the credentials did reach git.
    assert any(status == 401 for *_, status in server.requests)
    assert any(status == 200 and "upload-pack" in path for _, path, status in server.requests)
    calls = argv_log.read_bytes().split(b"\0\n")
    assert any(b"fetch" in call for call in calls), calls
    assert not [c for c in calls if PASSWORD.encode() in c]
    assert any(b"remote-http" in seen for seen in watch.git_seen), watch.git_seen  # the watch did see git at work
    assert watch.leaks == []
    assert files_containing(home, PASSWORD) == [] and files_containing(user_home, PASSWORD) == []
    assert not (user_home / ".git-credentials").exists()
    configs = list((home / "sources").glob("*/config"))
    assert configs and all("@" not in c.read_text() and "alice" not in c.read_text() for c in configs)
    assert PASSWORD not in daemon.logs()


def test_an_old_copy_with_the_password_in_its_config_is_cleaned_and_still_fetches(auth_remote, tmp_path):
    remote, server = auth_remote
    url = server.url(remote.bare.name, f"alice:{PASSWORD}")
    home = tmp_path / "home"
    # What older versions left: a copy named by a hash of the URL with its password, the URL in its config.
    legacy = home / "sources" / f"remote-{hashlib.sha256(url.encode()).hexdigest()[:10]}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(legacy)], check=True)
    subprocess.run(["git", "-C", str(legacy), "remote", "add", "origin", url], check=True)
    source = GitSource(url, home)
    result = source.fetch()
    source.close()
    assert result.ok, result.error
    assert source.branches()["dev"] == remote.remote_head("dev")
    assert not legacy.exists() and source.path.exists()
    assert files_containing(home, PASSWORD) == []


def test_a_credential_helper_from_the_environment_still_answers_when_we_hold_no_credentials(
        auth_remote, tmp_path, monkeypatch):
    remote, server = auth_remote
    token = tmp_path / "token"
    token.write_text(PASSWORD)
    # What the Helm chart sets: a helper through git's environment config, reading a mounted Secret.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "credential.helper")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0",
                       f'!f() {{ test "$1" = get || exit 0; echo username=alice; echo "password=$(cat {token})"; }}; f')
    source = GitSource(server.url(remote.bare.name), tmp_path / "home")
    try:
        result = source.fetch()
    finally:
        source.close()
    assert result.ok, result.error
    assert source.credentials is None and files_containing(tmp_path / "home", PASSWORD) == []


# ---- part 5: the data directory ------------------------------------------------------------------------


def test_everything_the_daemon_keeps_is_private_to_its_owner(tmp_path):
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "store.db").touch(mode=0o644)
    os.chmod(home, 0o755)  # left by an older version (or made by hand): the daemon tightens it
    os.chmod(home / "store.db", 0o644)
    daemon = start_daemon(home, tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        created = daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": HELLO})
        assert created.status == 201, created.body
        name = created.json()["items"][0]["metadata"]["name"]
        wait_for(lambda: daemon.client.get(f"/api/v1/workflows/default/{name}").json()["status"].get("phase")
                 == "Succeeded", what="the workflow to succeed")
    finally:
        daemon.stop()
    assert "removed group/other access" in daemon.logs()
    for wanted in ("store.db", "logs", "artifacts", "sources"):
        assert (home / wanted).exists(), wanted
    loose = []
    for path in [home, *home.rglob("*")]:
        relative = path.relative_to(home).parts
        if relative and relative[0] in ("runs", "volumes"):
            continue  # steps' scratch and volumes: the executor's to give the step's uid; home is 0700 above them
        if stat.S_IMODE(path.lstat().st_mode) & 0o077 and not path.is_symlink():
            loose.append(f"{path} {stat.S_IMODE(path.lstat().st_mode):04o}")
    assert loose == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


# ---- part 6: the API -----------------------------------------------------------------------------------


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Daemon, GitRemote]]:
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    daemon = start_daemon(tmp_path / "home", tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        yield daemon, remote
    finally:
        daemon.stop()


def push(branch: str, sha: str, **extra: object) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "after": sha, **extra}).encode()


def hook(client: Client, body: bytes, signature: str | bytes | None = None, delivery: str | None = None):
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json",
               "X-Hub-Signature-256": github_signature(body) if signature is None else signature}
    if delivery:
        headers["X-GitHub-Delivery"] = delivery
    return client.request("POST", "/api/v1/webhook/github", body, token=False, headers=headers)


def test_malformed_webhook_signatures_are_401_and_trigger_nothing(synced):
    daemon, remote = synced
    client = daemon.client
    before = passes(client)
    body = push("dev", remote.remote_head("dev"))
    good = github_signature(body)
    for signature in (b"sha256=" + b"\xff" * 64, good[:-2] + "\u00e9\u00e9", good.removeprefix("sha256="),
                      good[:-1], good + "0", "sha256=" + "zz" * 32, "sha1=" + good[7:47], "sha256=", " "):
        reply = hook(client, body, signature)
        assert reply.status == 401, (signature, reply.status, reply.body)
        assert reply.json()["code"] == 401
    gitlab = client.request("POST", "/api/v1/webhook/gitlab", body, token=False,
                            headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": b"\xe9\xff secret"})
    assert gitlab.status == 401
    bearer = client.request("GET", "/api/v1/workflows", token=False, headers={"Authorization": b"Bearer \xff\xfe"})
    assert bearer.status == 401
    time.sleep(1.0)  # had any of them triggered a pass, it would have started by now
    assert passes(client) == before
    assert alive(daemon) and "Traceback" not in daemon.logs()


def test_json_nested_100000_deep_is_400_on_every_json_route_and_stores_nothing(synced):
    daemon, remote = synced
    client = daemon.client
    count = len(client.get("/api/v1/workflows").json()["items"])
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"workflow": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}"
    for method, path in (("POST", "/api/v1/workflows/team-dev"), ("POST", "/api/v1/apply/team-dev"),
                         ("PUT", "/api/v1/semaphores/team-dev"), ("PUT", "/api/v1/workflows/team-dev/x/resume")):
        for body in (deep, deep_object):
            reply = client.request(method, path, body)
            assert reply.status == 400, (path, reply.status, reply.body[:200])
            assert "nested" in reply.json()["message"]
    # Valid JSON whose YAML manifest nests 20,000 levels: the YAML loader recurses, still a 400.
    yaml_deep = client.request("POST", "/api/v1/workflows/team-dev", {"manifest": "[" * 20_000 + "]" * 20_000})
    assert yaml_deep.status == 400, yaml_deep.body[:200]
    signed = hook(client, deep)
    assert signed.status == 400 and "nested" in signed.json()["message"]
    assert len(client.get("/api/v1/workflows").json()["items"]) == count
    assert alive(daemon) and "RecursionError" not in daemon.logs()


def test_a_replayed_webhook_delivery_changes_nothing_even_after_a_restart(synced, tmp_path):
    daemon, remote = synced
    client = daemon.client
    new = remote.commit("dev", {"workflows/report.yaml": template("report")}, "add report")
    body = push("dev", new)
    before = passes(client)
    first = hook(client, body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status == 202 and first.json()["triggered"] is True
    wait_for(lambda: env_status(client, "dev")["commit"] == new, what="the push to sync")
    wait_for(lambda: passes(client) == before + 1, what="the pass to finish")
    history = len(client.get("/api/v1/sync/history/dev").json()["items"])

    same = hook(client, body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    fresh_id = hook(client, body, delivery="00000000-1111-2222-3333-444444444444")  # the id is not signed
    for reply in (same, fresh_id):
        assert reply.status == 200, reply.body
        assert reply.json()["duplicate"] is True and reply.json()["triggered"] is False
    time.sleep(1.5)
    assert passes(client) == before + 1
    assert len(client.get("/api/v1/sync/history/dev").json()["items"]) == history

    daemon.stop()  # the set of deliveries is in the store: a restart does not forget it
    again = start_daemon(daemon.home, tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        start = passes(again.client)
        replay = hook(again.client, body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        assert replay.status == 200 and replay.json()["duplicate"] is True
        time.sleep(1.5)
        assert passes(again.client) == start and alive(again)
    finally:
        again.stop()


def test_a_signed_push_naming_an_older_commit_does_not_move_the_environment_back(synced):
    daemon, remote = synced
    client = daemon.client
    old = env_status(client, "dev")["commit"]
    new = remote.commit("dev", {"workflows/report.yaml": template("report")}, "add report")
    assert hook(client, push("dev", new)).status == 202
    wait_for(lambda: env_status(client, "dev")["commit"] == new, what="the push to sync")
    before = passes(client)
    stale = hook(client, push("dev", old, before=new, forced=True))  # no delivery id, a body never seen
    assert stale.status == 202
    wait_for(lambda: passes(client) > before, what="the pass it triggered")
    status = env_status(client, "dev")
    assert status["commit"] == new and status["phase"] == "Synced"
    assert remote.remote_head("dev") == new


# ---- part 6: scoped tokens -----------------------------------------------------------------------------

DEV_TOKEN, READER_TOKEN = "dev-team-token-4a1b", "dashboards-token-77c2"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def scoped(tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(json.dumps({"tokens": [
        {"name": "dev-team", "sha256": digest(DEV_TOKEN), "namespaces": ["team-dev"], "verbs": ["read", "write"]},
        {"name": "dashboards", "sha256": digest(READER_TOKEN), "namespaces": "*", "verbs": ["read"]},
    ]}))
    daemon = start_daemon(tmp_path / "home", tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600",
                          "--api-tokens", str(tokens))
    try:
        yield daemon, tokens
    finally:
        daemon.stop()


def test_the_dev_token_cannot_read_or_write_prod_and_can_use_dev(scoped):
    daemon, tokens = scoped
    admin, dev = daemon.client, Client(daemon.port, token=DEV_TOKEN)
    assert DEV_TOKEN not in tokens.read_text()  # only digests are kept
    prod_wf = admin.request("POST", "/api/v1/workflows/team-prod", {"manifest": HELLO})
    assert prod_wf.status == 201, prod_wf.body  # RECONCILER_API_TOKEN: every namespace, read and write
    prod_name = prod_wf.json()["items"][0]["metadata"]["name"]
    prod_path = f"/api/v1/workflows/team-prod/{prod_name}"

    refused = [
        dev.get(prod_path), dev.get("/api/v1/workflows/team-prod"), dev.get("/api/v1/workflows?namespace=team-prod"),
        dev.get(f"{prod_path}/log"), dev.get("/api/v1/cron-workflows?namespace=team-prod"),
        dev.get("/api/v1/sync/history/prod"),
        dev.request("POST", "/api/v1/workflows/team-prod", {"manifest": HELLO}),
        dev.request("PUT", f"{prod_path}/suspend"), dev.request("DELETE", prod_path),
        dev.request("PUT", "/api/v1/semaphores/team-prod", {"ref": "locks/db", "size": 9}),
        dev.request("POST", "/api/v1/sync?wait=true&env=prod"), dev.request("POST", "/api/v1/sync"),
        # into dev's door, aimed at prod (the document names its namespace) or at every namespace
        dev.request("POST", "/api/v1/apply/team-dev",
                    {"manifest": template("sneaky").replace("name: sneaky", "name: sneaky\n  namespace: team-prod")}),
        dev.request("POST", "/api/v1/apply/team-dev",
                    {"manifest": template("shared").replace("kind: WorkflowTemplate", "kind: ClusterWorkflowTemplate")}),
    ]
    assert [r.status for r in refused] == [403] * len(refused), [(r.status, r.body[:120]) for r in refused]
    after = admin.get(prod_path).json()
    assert after["metadata"]["name"] == prod_name and not after["spec"].get("suspend")
    assert [w["metadata"]["namespace"] for w in admin.get("/api/v1/workflows").json()["items"]] == ["team-prod"]
    prod_templates = admin.get("/api/v1/workflow-templates?namespace=team-prod").json()["items"]
    assert [t["metadata"]["name"] for t in prod_templates] == ["etl"]  # nothing applied there
    assert admin.get("/api/v1/cluster-workflow-templates").json()["items"] == []

    mine = dev.request("POST", "/api/v1/workflows/team-dev", {"manifest": HELLO})
    assert mine.status == 201, mine.body
    assert dev.get(f"/api/v1/workflows/team-dev/{mine.json()['items'][0]['metadata']['name']}").status == 200
    listed = dev.get("/api/v1/workflows").json()["items"]  # what `list -A` asks for
    assert {w["metadata"]["namespace"] for w in listed} == {"team-dev"}
    assert {t["metadata"]["namespace"] for t in dev.get("/api/v1/workflow-templates").json()["items"]} == {"team-dev"}
    status = dev.get("/api/v1/sync/status").json()["items"]
    assert [e["name"] for e in status] == ["dev"]
    assert dev.get("/api/v1/sync/history/dev").status == 200
    synced = dev.request("POST", "/api/v1/sync?wait=true&env=dev")
    assert synced.status == 200 and [r["name"] for r in synced.json()["items"]] == ["dev"]
    cli = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "list", "-A", "-o", "json"],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "RECONCILER_SERVER": daemon.url, "RECONCILER_API_TOKEN": DEV_TOKEN})
    assert cli.returncode == 0, cli.stderr
    assert {w["metadata"]["namespace"] for w in json.loads(cli.stdout)} == {"team-dev"}
    assert alive(daemon)


def test_a_read_only_token_cannot_submit_and_an_unknown_token_gets_nothing(scoped):
    daemon, _ = scoped
    reader, stranger = Client(daemon.port, token=READER_TOKEN), Client(daemon.port, token="not-a-token")
    before = daemon.client.get("/api/v1/workflows").json()["items"]
    for client, status in ((reader, 403), (stranger, 401)):
        assert client.request("POST", "/api/v1/workflows/team-dev", {"manifest": HELLO}).status == status
        assert client.request("POST", "/api/v1/apply/team-dev", {"manifest": template("x")}).status == status
        assert client.request("POST", "/api/v1/sync?wait=true&env=dev").status == status
    assert daemon.client.get("/api/v1/workflows").json()["items"] == before
    assert reader.get("/api/v1/workflows/team-prod").status == 200  # "*": every namespace, to read
    assert {e["name"] for e in reader.get("/api/v1/sync/status").json()["items"]} == {"dev", "qa", "prod"}
    assert stranger.get("/api/v1/workflows").status == 401
    assert alive(daemon)


@pytest.mark.parametrize("entry, says", [
    ({"name": "x", "token": DEV_TOKEN, "namespaces": ["team-dev"], "verbs": ["read"]}, "never in clear"),
    ({"name": "x", "sha256": "abc", "namespaces": ["team-dev"], "verbs": ["read"]}, "tokens[0].sha256"),
    ({"name": "x", "sha256": "0" * 64, "namespaces": ["Team_Dev"], "verbs": ["read"]}, "tokens[0].namespaces"),
    ({"name": "x", "sha256": "0" * 64, "namespaces": "*", "verbs": ["admin"]}, "tokens[0].verbs"),
])
def test_a_bad_tokens_file_stops_the_daemon_with_the_file_and_entry_named(tmp_path, entry, says):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(json.dumps({"tokens": [entry]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "--home", str(tmp_path / "home"), "up",
                           "--listen", "127.0.0.1:0", "--api-tokens", str(tokens)],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode != 0
    assert str(tokens) in proc.stderr and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "store.db").exists()  # refused before anything was opened


def test_an_unreadable_git_password_file_stops_the_daemon_with_its_name(tmp_path):
    missing = tmp_path / "no-such-secret"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "--home", str(tmp_path / "home"), "up",
                           "--listen", "127.0.0.1:0", "--repo", "https://git.invalid/team/workflows.git"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**env, "RECONCILER_GIT_PASSWORD_FILE": str(missing)})
    assert proc.returncode != 0 and f"RECONCILER_GIT_PASSWORD_FILE={missing}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

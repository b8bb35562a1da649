"""Issue 10, part 1: names and paths from input.

The name rules are checked against Kubernetes' own examples (apimachinery's validation tests); the
path helper against escape attempts and the 255-byte limit; then each attack of the issue is run
against a real `reconciler up` (API with its token, git sync from a temporary remote, the CLI),
asserting the attacker's goal was not reached: no file outside the data directory, nothing stored,
the daemon still up and restartable, a clear error with file and line."""

from __future__ import annotations

import json

import pytest

from reconciler import names, paths
from reconciler.store import Invalid, SqliteStore

from ..conftest import run_cli
from ..gitops_repo import make_remote, template
from ..test_api_support import start_daemon
from .support_names import (
    LONG_VALID_NAME,
    environments,
    escape_name,
    wait_for,
    workflow,
    workflows,
)

pytestmark = pytest.mark.xdist_group("security-names")

# ---- the name rules, on Kubernetes' own examples -------------------------------------------------

LABEL_OK = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2", "a" * 63]
LABEL_BAD = ["", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a", "a_b",
             "1_", "_1", "1_2", ".", "a.", ".a", "a.b", "1.", ".1", "1.2", " ", "a ", " a", "a b", "1 ", " 1",
             "1 2", "a" * 64]
SUBDOMAIN_OK = LABEL_OK + ["a.a", "ab.a", "abc.a", "a1.a", "a-1.a", "a--1--2--b.a", "a.1", "ab.1", "0.a", "01.a",
                           "1--a--b--2.1", "a.b.c.d.e", "aa.bb.cc.dd.ee", "1.2.3.4.5", "11.22.33.44.55", "a" * 253]
SUBDOMAIN_BAD = ["", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a", "a_b",
                 "1_", "_1", "1_2", ".", "a.", ".a", "a..b", "1.", ".1", "1..2", " ", "a ", " a", "a b", "1 ",
                 " 1", "1 2", "A.a", "aB.a", "ab.A", "A1.a", "a1.A", "A.1", "aB.1", "A1.1", "1A.1", "0.A", "01.A",
                 "012.A", "1A.a", "1a.A", "A.B.C.D.E", "AA.BB.CC.DD.EE", "a.B.c.d.e", "aa.bB.cc.dd.ee", "a@b",
                 "a,b", "a_b", "a;b", "a:b", "a%b", "a?b", "a$b", "a" * 254, "../x", "a/b", "a\0b"]
LABEL_VALUE_OK = ["simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234", "a" * 63, ""]
LABEL_VALUE_BAD = ["nospecialchars%^=@", "Tama-nui-te-rā", "\u2264", "-starts-with-dash", "ends-with-dash-",
                   ".starts.with.dot", "ends.with.dot.", "a" * 64]
QUALIFIED_OK = ["simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple", "now-with-dashes/simple",
                "now-with-dashes/now-with-dashes", "now.with.dots/simple", "now-with.dashes-and.dots/simple",
                "1-num.2-num/3-num", "1234/5678", "1.2.3.4/5678", "Uppercase_Is_OK_123",
                "example.com/Uppercase_Is_OK_123", "requests.storage-foo", "a" * 63, "a" * 253 + "/" + "b" * 63]
QUALIFIED_BAD = ["nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-", "only/one/slash",
                 "Example.com/abc", "example_com/abc", "example.com/", "/simple", "a" * 64, "a" * 254 + "/abc"]


@pytest.mark.parametrize("value", LABEL_OK)
def test_dns1123_label_accepts_kubernetes_examples(value):
    assert names.dns1123_label(value) == []


@pytest.mark.parametrize("value", LABEL_BAD)
def test_dns1123_label_refuses_kubernetes_examples(value):
    assert names.dns1123_label(value)


@pytest.mark.parametrize("value", SUBDOMAIN_OK)
def test_dns1123_subdomain_accepts_kubernetes_examples(value):
    assert names.dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", SUBDOMAIN_BAD)
def test_dns1123_subdomain_refuses_kubernetes_examples(value):
    assert names.dns1123_subdomain(value)


@pytest.mark.parametrize("value", LABEL_VALUE_OK)
def test_label_value_accepts_kubernetes_examples(value):
    assert names.label_value(value) == []


@pytest.mark.parametrize("value", LABEL_VALUE_BAD)
def test_label_value_refuses_kubernetes_examples(value):
    assert names.label_value(value)


@pytest.mark.parametrize("value", QUALIFIED_OK)
def test_label_key_accepts_kubernetes_examples(value):
    assert names.qualified_name(value) == []


@pytest.mark.parametrize("value", QUALIFIED_BAD)
def test_label_key_refuses_kubernetes_examples(value):
    assert names.qualified_name(value)


def test_messages_are_worded_as_kubernetes_words_them():
    assert names.dns1123_label("a" * 64)[0] == "must be no more than 63 characters"
    assert names.dns1123_label("a.b") == ["must not contain dots"]
    assert names.dns1123_label("A") == [
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
        "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    with pytest.raises(names.InvalidName) as caught:
        names.check_meta("Workflow", {"name": "../x", "namespace": "default"})
    assert str(caught.value).startswith(
        'Workflow.argoproj.io "../x" is invalid: metadata.name: Invalid value: "../x": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters, '-' or '.'")
    assert names.qualified_name("example.com/")[0] == "name part must be non-empty"
    assert names.qualified_name("Example.com/abc")[0].startswith("prefix part a lowercase RFC 1123 subdomain")


def test_argo_limits_the_names_of_its_kinds():
    assert names.argo_name_error("Workflow", "a" * 63) is None
    assert names.argo_name_error("Workflow", "a" * 64) == (
        f'workflow name "{"a" * 64}" must not be more than 63 characters long (currently 64)')
    assert "must not be more than 52 characters" in names.argo_name_error("CronWorkflow", "a" * 53)
    assert names.argo_name_error("ConfigMap", "a" * 253) is None  # Kubernetes' 253 is the only limit there


def test_generate_name_follows_the_simple_name_generator():
    generated = names.generate_name("a" * 100)
    assert len(generated) == 63 and generated.startswith("a" * 58)
    assert set(generated[58:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert len(names.generate_name("etl-")) == 9
    assert names.generate_name_prefix("etl-") == []  # a trailing dash is what prefixes are for
    assert names.generate_name_prefix("Etl-")
    # apimachinery's maskTrailingDash passes "abc.-" (it checks "abca"), but every name it would
    # generate ("abc.-xxxxx") is invalid: refused here, with that example.
    [msg] = names.generate_name_prefix("abc.-")
    assert msg.startswith('generates invalid names such as "abc.-xxxxx"')


def test_names_built_from_user_values_are_made_valid():
    assert names.object_name("mutex.guard") == "mutex.guard"  # already valid: unchanged
    made = names.object_name("semaphore.my-config.Max_Parallel")
    assert names.dns1123_subdomain(made) == [] and made.startswith("semaphore-my-config-max-parallel-")
    assert made != names.object_name("semaphore.my-config.max_parallel")  # the hash keeps them apart
    assert names.dns1123_subdomain(names.object_name("!" * 300)) == []


def test_schema_name_fields_use_the_same_rules_in_the_same_words(tmp_path):
    from reconciler.spec import load_text, validate_documents
    from reconciler.spec.validation import _load_schemas

    defs = _load_schemas()[1]["common.json"]["$defs"]
    assert defs["objectName"]["pattern"] == names.SUBDOMAIN_PATTERN
    assert defs["namespaceName"]["pattern"] == names.LABEL_PATTERN
    text = workflow("ok").replace("  entrypoint: main\n", "  entrypoint: main\n  synchronization:\n"
                                                              "    mutex: {name: Big_One, namespace: ../x}\n")
    problems = [str(p) for p in validate_documents(load_text(text, "w.yaml"))]
    assert any(p.startswith('w.yaml:8: spec.synchronization.mutex.namespace: Invalid value: "../x": a lowercase '
                            "RFC 1123 label") for p in problems), problems


# ---- the path helper -----------------------------------------------------------------------------

@pytest.mark.parametrize("part", ["..", "../x", "a/../../b", "/etc", "a\0b", "", ".", "a//b", "a/"])
def test_under_refuses_what_would_escape(tmp_path, part):
    with pytest.raises(paths.PathEscape):
        paths.under(tmp_path, "logs", part)


def test_under_refuses_a_symlinked_folder_leading_outside_but_not_one_inside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "logs").mkdir(parents=True)
    outside.mkdir()
    (root / "logs" / "ns").symlink_to(outside)
    with pytest.raises(paths.PathEscape):
        paths.under(root, "logs", "ns", "wf")
    (root / "inner").mkdir()
    (root / "logs" / "ok").symlink_to(root / "inner")
    assert paths.under(root, "logs", "ok", "wf") == root / "logs" / "ok" / "wf"
    # A stored symlink as the last part is allowed when the caller never follows it.
    (root / "logs" / "link").symlink_to("/etc/passwd")
    assert paths.under(root, "logs", "link", follow_last=False).is_symlink()
    with pytest.raises(paths.PathEscape):
        paths.under(root, "logs", "link")


def test_long_components_map_to_short_stable_folders_that_really_exist(tmp_path):
    long = "x" * 300 + ".log"
    first = paths.under(tmp_path, "logs", long)
    assert len(first.name.encode()) <= 255 and first.name.endswith(".log") and first.name.startswith("x" * 48)
    assert paths.under(tmp_path, "logs", long) == first  # same input, same folder
    assert paths.under(tmp_path, "logs", "x" * 300 + "y.log") != first  # same prefix, another folder
    first.parent.mkdir(parents=True)
    first.write_text("written")  # the filesystem takes it: no ENAMETOOLONG
    assert first.read_text() == "written"
    assert paths.under(tmp_path, "a" * 255) == tmp_path / ("a" * 255)  # at the limit: unchanged
    wide = "é" * 200  # 400 bytes: cut on a character boundary
    assert len(paths.component(wide).encode()) <= 255 and paths.component(wide).startswith("é" * 24)


def test_the_limit_can_be_lowered(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_MAX_NAME_BYTES", "100")
    assert len(paths.component("n" * 101).encode()) <= 100
    assert paths.component("n" * 100) == "n" * 100
    assert len(paths.component("n" * 100, reserve=21).encode()) <= 79


# ---- the store: the lowest door -----------------------------------------------------------------

def test_the_store_refuses_invalid_names_whatever_the_caller(tmp_path):
    with SqliteStore(tmp_path / "store.db") as store:
        base = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {}}
        for meta in ({"name": escape_name(tmp_path / "x")}, {"name": LONG_VALID_NAME},
                     {"name": "ok", "namespace": "../../etc"}, {"generateName": "Bad-"},
                     {"name": "ok", "labels": {"a": "-x"}}):
            with pytest.raises(Invalid):
                store.create({**base, "metadata": meta})
        assert store.list("Workflow") == []  # nothing stored
        cm = store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c" * 253}, "data": {}})
        cm["metadata"]["labels"] = {"bad key!": "v"}
        with pytest.raises(Invalid):
            store.update(cm)
        with pytest.raises(Invalid):
            store.patch("ConfigMap", "default", "c" * 253, {"metadata": {"labels": {"k": "v" * 64}}})
        assert "labels" not in store.get("ConfigMap", "default", "c" * 253)["metadata"]


# ---- the attacks of the issue, on a real daemon -------------------------------------------------

def test_api_refuses_a_path_escaping_name_with_an_emptydir(tmp_path):
    target = tmp_path / "x"
    daemon = start_daemon(tmp_path / "home", tmp_path)
    try:
        manifest = workflow(escape_name(target), command="echo pwned > /vol/pwned", volume=True)
        reply = daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": manifest, "filename": "x.yaml"})
        assert reply.status == 400, reply.body
        body = reply.json()
        assert any(p.startswith("x.yaml:4: metadata.name: Invalid value") for p in body["problems"]), body
        as_json = daemon.client.request("POST", "/api/v1/workflows/default",
                                        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                         "metadata": {"generateName": "../../../x-"}, "spec": {"entrypoint": "m"}})
        assert as_json.status == 400 and "metadata.generateName" in " ".join(as_json.json()["problems"])
        bad_ns = daemon.client.request("POST", "/api/v1/workflows/..%2F..%2Fetc", {"manifest": workflow("ok")})
        assert bad_ns.status in (400, 404)
        assert workflows(daemon) == []  # nothing stored
        assert daemon.client.get("/healthz", token=False).status == 200
        assert not target.exists() and not (tmp_path / "x.log").exists()
        assert not list(tmp_path.glob("**/pwned"))
    finally:
        daemon.stop()


def test_a_valid_242_character_name_is_refused_and_the_daemon_stays_up_and_restartable(tmp_path):
    home = tmp_path / "home"
    daemon = start_daemon(home, tmp_path)
    try:
        reply = daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": workflow(LONG_VALID_NAME)})
        assert reply.status == 400, reply.body
        assert any("must not be more than 63 characters long (currently 242)" in p for p in reply.json()["problems"])
        applied = daemon.client.request("POST", "/api/v1/apply/default", {"manifest": template("t" * 64)})
        assert applied.status == 400 and "workflow template name" in applied.body.decode()
        assert workflows(daemon) == []
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.logs()[-2000:]
    again = start_daemon(home, tmp_path)  # restarts: nothing poisonous was stored
    try:
        assert again.client.get("/healthz", token=False).status == 200
    finally:
        again.stop()
    assert "ENAMETOOLONG" not in daemon.logs() + again.logs()


def test_long_names_map_to_short_folders_on_a_real_run(tmp_path):
    """With the component limit lowered to 64 bytes, a 63-character workflow's log and scratch
    folder names (67+ bytes) are hashed: the run succeeds and its log is served."""
    name = "w" * 63
    daemon = start_daemon(tmp_path / "home", tmp_path, env={"RECONCILER_MAX_NAME_BYTES": "64"})
    try:
        reply = daemon.client.request("POST", "/api/v1/workflows/default", {"manifest": workflow(name)})
        assert reply.status == 201, reply.body
        done = wait_for(lambda: [w for w in workflows(daemon)
                                 if (w.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error")])
        assert done[0]["status"]["phase"] == "Succeeded", done[0]["status"]
        log = daemon.client.get(f"/api/v1/workflows/default/{name}/log")
        assert log.status == 200 and "hi" in log.body.decode()
        saved = list((tmp_path / "home" / "logs" / "default" / name).iterdir())
        assert saved and all("+" in p.name and len(p.name) <= 64 for p in saved)
    finally:
        daemon.stop()


def test_git_sync_refuses_bad_names_with_file_and_line_and_keeps_the_last_good_state(tmp_path):
    target = tmp_path / "x"
    remote = make_remote(tmp_path / "git", {"workflows/etl.yaml": template("etl")})
    daemon = start_daemon(tmp_path / "home", tmp_path, "--repo", str(remote.bare), "--poll-interval", "3600")
    try:
        good = environments(daemon)["dev"]
        assert good["phase"] == "Synced"
        remote.commit("dev", {"workflows/pwn.yaml": workflow(escape_name(target), command="echo pwned > /vol/p",
                                                             volume=True),
                              "workflows/long.yaml": template(LONG_VALID_NAME)}, "attack")
        reply = daemon.client.request("POST", "/api/v1/sync?wait=true&env=dev")
        assert reply.status == 200, reply.body
        dev = environments(daemon)["dev"]
        assert dev["phase"] == "Failed"
        assert "workflows/pwn.yaml:4: metadata.name: Invalid value" in dev["message"]
        assert "workflows/long.yaml:4: metadata.name" in dev["message"]
        assert dev["commit"] == good["commit"]  # the last good commit stays applied
        templates = daemon.client.get("/api/v1/workflow-templates?namespace=team-dev").json()["items"]
        assert [t["metadata"]["name"] for t in templates] == ["etl"]
        assert workflows(daemon) == []
        assert not target.exists() and not list(tmp_path.glob("**/p"))
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()


def test_cli_refuses_bad_names_with_exit_2_and_one_line(home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(workflow(escape_name(tmp_path / "x"), volume=True))
    proc = run_cli(home, "submit", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()  # one line per problem: not a DNS name, longer than 63
    assert len(lines) == 2 and all(line.startswith(f"{bad}:4: metadata.name: Invalid value") for line in lines)
    good = tmp_path / "good.yaml"
    good.write_text(workflow("fine"))
    proc = run_cli(home, "submit", str(good), "-n", "../../etc")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith('invalid namespace "../../etc"')
    gen = tmp_path / "gen.yaml"
    gen.write_text(template("t").replace("name: t", "generateName: Upper-"))
    proc = run_cli(home, "apply", str(gen))
    assert proc.returncode == 2 and f"{gen}:4: metadata.generateName: Invalid value" in proc.stderr
    assert json.loads(run_cli(home, "list", "-A", "-o", "json", check=True).stdout) == []
    assert not (tmp_path / "x").exists()


def test_the_same_run_once_workflow_in_three_namespaces_runs_in_each(tmp_path):
    """`reconciler sync` creates the same Workflow (same name, same node ids) in team-dev, team-qa
    and team-prod before `up` starts; `up` must run all three, not exit with 'already running'."""
    home = tmp_path / "home"
    remote = make_remote(tmp_path / "git", {"workflows/once.yaml": workflow("run-once", command="sleep 1; echo ok")})
    sync = run_cli(home, "sync", "--repo", str(remote.bare))
    assert sync.returncode == 0, sync.stderr
    created = json.loads(run_cli(home, "list", "-A", "-o", "json", check=True).stdout)
    assert sorted(w["metadata"]["namespace"] for w in created) == ["team-dev", "team-prod", "team-qa"]
    assert len({w["metadata"]["name"] for w in created}) == 1  # one name, so the same node ids
    daemon = start_daemon(home, tmp_path)
    try:
        finished = wait_for(lambda: (lambda ws: ws if all((w.get("status") or {}).get("phase") in
                                                          ("Succeeded", "Failed", "Error") for w in ws) else None)(
            workflows(daemon)), timeout=90)
        assert [w["status"]["phase"] for w in finished] == ["Succeeded"] * 3, [w["status"] for w in finished]
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert "already running" not in daemon.logs()

"""LocalProcessExecutor and InProcessExecutor, with real subprocesses (and real bwrap where it runs)."""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from pathlib import Path

import pytest

from reconciler.executors import (
    DEADLINE_MESSAGE,
    ERROR,
    FAILED,
    SUCCEEDED,
    InProcessExecutor,
    InputFile,
    LocalProcessExecutor,
    OutputArtifactSpec,
    PodJob,
    PodResult,
    SidecarSpec,
    Volume,
    probe_bwrap,
)
from reconciler.executors import local as local_mod

BWRAP = probe_bwrap()[0]
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="bwrap overlay sandbox cannot run here")
BOTH = [pytest.param("bwrap", marks=needs_bwrap), "tmpdir"]


@pytest.fixture(params=BOTH)
def ex(request):
    e = LocalProcessExecutor(isolation=request.param, kill_grace=0.5)
    yield e
    e.close()


@pytest.fixture
def bx():
    if not BWRAP:
        pytest.skip("bwrap overlay sandbox cannot run here")
    e = LocalProcessExecutor(isolation="bwrap", kill_grace=0.5)
    yield e
    e.close()


def mkjob(tmp_path: Path, node: str, command: list[str], args: list[str] | None = None, **kw) -> PodJob:
    return PodJob(node, f"pod-{node}", "wf", "ns", "busybox", command, args or [],
                  scratch_dir=tmp_path / "scratch" / node, **kw)


def sh(tmp_path: Path, node: str, script: str, **kw) -> PodJob:
    return mkjob(tmp_path, node, ["sh", "-c"], [script], **kw)


def run_all(ex, *jobs: PodJob, timeout: float = 30) -> dict[str, PodResult]:
    for j in jobs:
        ex.start(j)
    results: dict[str, PodResult] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(jobs):
        assert time.monotonic() < deadline, f"jobs still running: {ex.running()}"
        for r in ex.poll(1.0):
            results[r.node_id] = r
    assert ex.running() == set()
    return results


def run1(ex, job: PodJob) -> PodResult:
    return run_all(ex, job)[job.node_id]


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains marker."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def assert_gone(marker: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while processes_with(marker):
        assert time.monotonic() < deadline, f"orphans left: {processes_with(marker)}"
        time.sleep(0.05)


def wait_for_text(path: Path, text: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)


# ---- phases, exit codes, logs ----------------------------------------------------------------


def test_exit_codes(ex, tmp_path):
    rs = run_all(ex, sh(tmp_path, "ok", "exit 0"), sh(tmp_path, "bad", "exit 3"),
                 sh(tmp_path, "nf", "no-such-command-xyz"))
    assert (rs["ok"].phase, rs["ok"].exit_code, rs["ok"].message) == (SUCCEEDED, 0, "")
    assert (rs["bad"].phase, rs["bad"].exit_code, rs["bad"].message) == (FAILED, 3, "Error (exit code 3)")
    assert (rs["nf"].phase, rs["nf"].exit_code) == (FAILED, 127)
    assert rs["ok"].started_at <= rs["ok"].finished_at


def test_command_not_found_is_a_failed_start(ex, tmp_path):
    r = run1(ex, mkjob(tmp_path, "n", ["no-such-binary-xyz"], ["a"]))
    assert r.phase == FAILED and r.exit_code is None
    assert 'exec: "no-such-binary-xyz": executable file not found in $PATH' in r.message


def test_stdout_and_combined_log_in_arrival_order(ex, tmp_path):
    r = run1(ex, sh(tmp_path, "n", "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three"))
    assert r.stdout == "one\nthree\n"
    assert r.log_path.read_text() == "one\ntwo\nthree\n"


def test_isolation_reported(ex):
    assert ex.isolation in ("bwrap", "tmpdir")
    assert ex.name == "local"


def test_starting_a_running_node_twice_is_refused(ex, tmp_path):
    ex.start(sh(tmp_path, "n", "sleep 0.3"))
    with pytest.raises(ValueError):
        ex.start(sh(tmp_path, "n", "true"))
    assert ex.running() == {("ns", "n")}
    while not ex.poll(1.0):
        pass


def test_hundreds_of_concurrent_jobs(ex, tmp_path):
    jobs = [sh(tmp_path, f"j{i}", f"sleep 0.2; echo {i}") for i in range(200)]
    rs = run_all(ex, *jobs, timeout=120)
    assert all(rs[f"j{i}"].phase == SUCCEEDED and rs[f"j{i}"].stdout == f"{i}\n" for i in range(200))


# ---- private view (bwrap) --------------------------------------------------------------------


def test_concurrent_jobs_have_private_tmp(bx, tmp_path):
    out = f"/tmp/out-{uuid.uuid4().hex}.txt"  # one fixed absolute path, unique to this test run
    a = sh(tmp_path, "a", f"echo A > {out}; sleep 0.5; cat {out}", output_parameter_paths={"v": out})
    b = sh(tmp_path, "b", f"echo B > {out}; sleep 0.5; cat {out}", output_parameter_paths={"v": out})
    rs = run_all(bx, a, b)
    assert (rs["a"].stdout, rs["a"].output_parameters["v"]) == ("A\n", "A")
    assert (rs["b"].stdout, rs["b"].output_parameters["v"]) == ("B\n", "B")
    assert not Path(out).exists()  # the host never saw the steps' writes


def test_relative_writes_land_in_view_root(bx, tmp_path):
    name = f"result-{uuid.uuid4().hex}.txt"
    r = run1(bx, sh(tmp_path, "n", f"echo 42 > {name}", output_parameter_paths={"r": f"/{name}"}))
    assert r.output_parameters["r"] == "42"
    assert not Path("/", name).exists()


def test_output_artifact_directory_merges_host_and_step(bx, tmp_path):
    lower = tmp_path / "lowerdir"
    (lower / "sub").mkdir(parents=True)
    (lower / "keep").write_text("keep")
    (lower / "gone").write_text("gone")
    (lower / "sub" / "old").write_text("old")
    mark = f"recon-{uuid.uuid4().hex}"
    script = (f"cd {lower} && rm gone && echo new > added && echo changed > keep && "
              f"rm -rf sub && mkdir sub && echo fresh > sub/only && mkdir -p /etc/{mark} && echo x > /etc/{mark}/f")
    r = run1(bx, sh(tmp_path, "n", script, output_artifacts=[
        OutputArtifactSpec("d", str(lower)), OutputArtifactSpec("etc", "/etc"),
        OutputArtifactSpec("missing", "/no/such/path", optional=True)]))
    assert r.phase == SUCCEEDED, r.log_path.read_text()
    d = r.output_artifacts["d"]
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == ["added", "keep", "sub", "sub/only"]
    assert (d / "keep").read_text() == "changed\n"
    etc = r.output_artifacts["etc"]
    assert (etc / mark / "f").read_text() == "x\n"
    assert (etc / "passwd").read_bytes() == Path("/etc/passwd").read_bytes()  # untouched host file
    assert r.output_artifacts["missing"] is None
    assert (lower / "gone").exists() and not Path("/etc", mark).exists()  # host untouched


def test_untouched_host_path_as_artifact(bx, tmp_path):
    (tmp_path / "host.txt").write_text("from host\n")
    r = run1(bx, sh(tmp_path, "n", "true", output_artifacts=[OutputArtifactSpec("h", str(tmp_path / "host.txt"))]))
    assert r.output_artifacts["h"].read_text() == "from host\n"


def test_input_file_and_dir_at_absolute_paths(bx, tmp_path):
    (tmp_path / "msg").write_text("hello world\n")
    (tmp_path / "indir").mkdir()
    (tmp_path / "indir" / "a").write_text("A")
    msg, etc = f"/tmp/message-{uuid.uuid4().hex}", f"/tmp/etc-{uuid.uuid4().hex}"
    r = run1(bx, sh(tmp_path, "n", f"cat {msg}; cat {etc}/a; ls -ld /tmp | cut -c1-10", input_files=[
        InputFile(msg, tmp_path / "msg"), InputFile(etc, tmp_path / "indir")]))
    assert r.stdout == "hello world\nA" + "drwxrwxrwt\n"  # /tmp keeps its mode in the view
    assert not Path(msg).exists() and not Path(etc).exists()  # placed in the view only


def test_working_dir_is_created_and_relative_outputs_follow_it(bx, tmp_path):
    wd = f"/srv/recon-{uuid.uuid4().hex}"
    r = run1(bx, sh(tmp_path, "n", "pwd; echo v > rel.txt", working_dir=wd, output_parameter_paths={"p": "rel.txt"}))
    assert r.stdout == f"{wd}\n" and r.output_parameters["p"] == "v"
    assert not Path(wd).exists()


# ---- outputs, inputs, env, scripts (both isolations) -----------------------------------------


def test_output_parameters(ex, tmp_path):
    out = tmp_path / "params"
    out.mkdir()
    script = f"printf 'hello\\n\\n' > {out}/two; printf 'x' > {out}/none; echo '  sp  ' > {out}/sp"
    r = run1(ex, sh(tmp_path, "n", script, output_parameter_paths={
        "two": f"{out}/two", "none": f"{out}/none", "sp": f"{out}/sp", "missing": f"{out}/nope"}))
    # Argo trims exactly one trailing newline and nothing else.
    assert r.output_parameters == {"two": "hello\n", "none": "x", "sp": "  sp  ", "missing": None}


def test_input_file_readable_by_cat(ex, tmp_path):
    (tmp_path / "msg").write_text("hello world\n")
    # tmpdir isolation has no private /, so use a path of our own there.
    path = "/tmp/message" if ex.isolation == "bwrap" else str(tmp_path / "placed" / "message")
    r = run1(ex, sh(tmp_path, "n", f"cat {path}", input_files=[InputFile(path, tmp_path / "msg")]))
    assert r.stdout == "hello world\n"


def test_missing_input_source_is_an_error(ex, tmp_path):
    r = run1(ex, sh(tmp_path, "n", "true", input_files=[InputFile("/tmp/x", tmp_path / "absent")],
                    output_parameter_paths={"p": "/tmp/x"}))
    assert r.phase == ERROR and r.output_parameters == {"p": None}


def test_env_tmpdir_and_working_dir(ex, tmp_path):
    r = run1(ex, sh(tmp_path, "n", 'echo "$FOO|$TMPDIR"; pwd; echo rel > rel.txt', env={"FOO": "bar baz"},
                    working_dir="/data", output_parameter_paths={"rel": "rel.txt"}))
    foo, tmpdir = r.stdout.splitlines()[0].split("|")
    assert foo == "bar baz"
    assert r.output_parameters["rel"] == "rel"
    if ex.isolation == "bwrap":
        assert tmpdir == "/tmp" and r.stdout.splitlines()[1] == "/data"
    else:
        assert tmpdir.startswith(str(tmp_path)) and r.stdout.splitlines()[1].endswith("/root/data")


def test_environment_is_minimal(ex, tmp_path, monkeypatch):
    monkeypatch.setenv("RECON_SECRET_TOKEN", "leak")
    e = LocalProcessExecutor(isolation=ex.isolation)
    try:
        r = run1(e, sh(tmp_path, "n", "env"))
    finally:
        e.close()
    assert "RECON_SECRET_TOKEN" not in r.stdout and "PATH=" in r.stdout


@pytest.mark.parametrize("command,source,expected", [
    (["python"], "import sys\nprint(sum([1, 2]), sys.argv[0].endswith('script'))\n", "3 True\n"),
    (["sh", "-c"], "echo from sh\n", "from sh\n"),
    (["bash"], 'x=(a b c)\necho "${#x[@]}"\n', "3\n"),
])
def test_script_source(ex, tmp_path, command, source, expected):
    r = run1(ex, mkjob(tmp_path, "n", command, script_source=source))
    assert (r.phase, r.stdout) == (SUCCEEDED, expected), r.log_path.read_text()


def test_python_resolves_even_without_python_on_path(ex, tmp_path):
    r = run1(ex, mkjob(tmp_path, "n", ["python", "-c", "print('ok')"], env={"PATH": "/usr/bin:/bin"}))
    assert r.stdout == "ok\n"


def test_volume_shared_by_sequential_jobs(ex, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    mount = "/mnt/vol" if ex.isolation == "bwrap" else str(tmp_path / "mnt" / "vol")
    v = [Volume(vol, mount)]
    w = run1(ex, sh(tmp_path, "w", f"echo hello world | tee {mount}/hello_world.txt", volumes=v))
    r = run1(ex, sh(tmp_path, "r", f"cat {mount}/hello_world.txt", volumes=v))
    assert w.phase == r.phase == SUCCEEDED
    assert r.stdout == "hello world\n" and (vol / "hello_world.txt").read_text() == "hello world\n"


# ---- deadlines, kill, orphans, sidecars -----------------------------------------------------


def test_timeout_kills_and_reports(ex, tmp_path):
    marker = f"{1000 + random.random():.9f}"
    t = time.monotonic()
    r = run1(ex, sh(tmp_path, "n", f"sleep {marker} & sleep 30", timeout=0.5))
    assert time.monotonic() - t < 5
    assert (r.phase, r.message) == (FAILED, DEADLINE_MESSAGE)
    assert_gone(marker)


def test_kill_leaves_no_orphans(ex, tmp_path):
    marker = f"{1000 + random.random():.9f}"
    ex.start(sh(tmp_path, "n", f"sleep {marker} & sleep {marker} & echo started; wait"))
    wait_for_text(tmp_path / "scratch" / "n" / "main.log", "started")
    assert len(processes_with(marker)) >= 2
    ex.kill(("ns", "n"), "Stopped with strategy 'Stop'")
    [r] = ex.poll(10)
    assert (r.phase, r.message) == (FAILED, "Stopped with strategy 'Stop'")
    assert ex.running() == set()
    assert_gone(marker)


def test_kill_escalates_to_sigkill(ex, tmp_path):
    ex.start(sh(tmp_path, "n", "trap '' TERM; echo ready; while :; do sleep 0.05; done"))
    wait_for_text(tmp_path / "scratch" / "n" / "main.log", "ready")
    t = time.monotonic()
    ex.kill(("ns", "n"), "bye")
    [r] = ex.poll(10)
    assert r.phase == FAILED and r.message == "bye" and time.monotonic() - t < 5


def test_background_children_die_when_main_exits(ex, tmp_path):
    marker = f"{1000 + random.random():.9f}"
    r = run1(ex, sh(tmp_path, "n", f"sleep {marker} & echo done"))
    assert (r.phase, r.stdout) == (SUCCEEDED, "done\n")
    assert_gone(marker)


def test_sidecars_start_first_and_are_killed(ex, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    mount = "/mnt/side" if ex.isolation == "bwrap" else str(tmp_path / "mnt" / "side")
    marker = f"{1000 + random.random():.9f}"
    side = SidecarSpec("nginx", ["sh", "-c"], [f"echo up > {mount}/ready; exec sleep {marker}"], {})
    main = f"i=0; while [ ! -f {mount}/ready ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; cat {mount}/ready"
    r = run1(ex, sh(tmp_path, "n", main, sidecars=[side], volumes=[Volume(vol, mount)]))
    assert (r.phase, r.stdout) == (SUCCEEDED, "up\n")
    assert_gone(marker)


def test_close_kills_running_jobs(tmp_path):
    marker = f"{1000 + random.random():.9f}"
    e = LocalProcessExecutor(isolation="auto")
    e.start(sh(tmp_path, "n", f"sleep {marker}"))
    wait_for = time.monotonic() + 5
    while not processes_with(marker) and time.monotonic() < wait_for:
        time.sleep(0.02)
    e.close()
    assert_gone(marker)
    with pytest.raises(RuntimeError):
        e.start(sh(tmp_path, "m", "true"))


# ---- isolation selection -----------------------------------------------------------------------


def test_auto_falls_back_to_tmpdir_with_a_warning(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(local_mod, "probe_bwrap", lambda: (False, "no user namespaces"))
    monkeypatch.setattr(local_mod, "_fallback_warned", False)
    with caplog.at_level(logging.WARNING, logger=local_mod.__name__):
        e = LocalProcessExecutor(isolation="auto")
    try:
        assert e.isolation == "tmpdir"
        assert "no user namespaces" in caplog.text
        assert run1(e, sh(tmp_path, "n", "echo hi")).stdout == "hi\n"
    finally:
        e.close()
    with pytest.raises(RuntimeError, match="no user namespaces"):
        LocalProcessExecutor(isolation="bwrap")
    with pytest.raises(ValueError):
        LocalProcessExecutor(isolation="docker")


# ---- in-process executor ---------------------------------------------------------------------


def test_inprocess_default_results(tmp_path):
    e = InProcessExecutor()
    j = mkjob(tmp_path, "n", ["echo"], output_parameter_paths={"p": "/tmp/p"},
              output_artifacts=[OutputArtifactSpec("a", "/tmp/a")])
    e.start(j)
    assert e.running() == {("ns", "n")}
    [r] = e.poll(0)
    assert (r.phase, r.exit_code, r.stdout, r.message) == (SUCCEEDED, 0, "", "")
    assert r.output_parameters == {"p": None} and r.output_artifacts == {"a": None}
    assert r.log_path.read_text() == ""
    assert e.running() == set() and e.poll(0) == []
    assert not (tmp_path / "scratch").exists()  # no files per job


def test_inprocess_custom_func_and_errors(tmp_path):
    def func(job: PodJob) -> PodResult:
        if job.node_id == "boom":
            raise RuntimeError("kaput")
        return PodResult(job.node_id, FAILED, 2, "Error (exit code 2)", "out", Path(os.devnull), {}, {}, 0.0, 0.0,
                         namespace=job.namespace)

    e = InProcessExecutor(func)
    e.start(mkjob(tmp_path, "a", ["x"]))
    e.start(mkjob(tmp_path, "boom", ["x"]))
    rs = {r.node_id: r for r in e.poll(1)}
    assert rs["a"].phase == FAILED and rs["a"].stdout == "out"
    assert rs["boom"].phase == ERROR and "kaput" in rs["boom"].message


def test_inprocess_many_jobs_and_poll_waits(tmp_path):
    e = InProcessExecutor()
    for i in range(20_000):
        e.start(PodJob(f"n{i}", "p", "wf", "ns", "img", ["true"], [], scratch_dir=tmp_path))
    assert len(e.poll(0)) == 20_000
    t = time.monotonic()
    assert e.poll(0.2) == []
    assert time.monotonic() - t >= 0.15  # an idle poll waits instead of spinning the engine loop

"""Run each step as a local subprocess, in its own process group and filesystem view.

One supervisor thread owns every child: it spawns them, waits on their pidfds and output pipes
with one epoll selector, and fires deadline and kill-grace timers. ``start`` prepares the step's
view (inputs, script) in the caller's thread and hands the spawn to the supervisor; ``poll``
collects declared outputs in the caller's thread, so a large artifact copy never stalls the
reading of other steps' pipes. That keeps the per-job cost to a few syscalls and no extra
thread or helper process besides bwrap itself.

Spawning happens on the long-lived supervisor thread on purpose: ``bwrap --die-with-parent``
kills the step when the *thread* that forked it exits, so spawning from a short-lived engine
worker thread would kill steps at random.

Logs: stdout and stderr are separate pipes read by the supervisor; each chunk is appended to the
combined log as it arrives (arrival order, as a container runtime records them), up to
``limits.log_bytes``, after which one truncation line is written and the rest dropped while the
step keeps running. Only the last ``limits.result_bytes`` (+1) of stdout stay in memory, for
``outputs.result``, which keeps Argo's tail of stdout.
When the main process exits its whole process group is killed, like Argo killing the pod, so
background children cannot outlive the step. Needs Linux >= 5.3 (pidfd_open).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import paths
from reconciler.limits import TooLarge, current, human

from .base import (
    DEADLINE_MESSAGE,
    ERROR,
    FAILED,
    SUCCEEDED,
    Executor,
    JobKey,
    PodJob,
    PodResult,
    error_result,
    exit_message,
)
from .sandbox import OverlayView, PythonShim, TmpdirView, bwrap_binary, probe_bwrap

log = logging.getLogger(__name__)

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_BWRAP_EXEC = re.compile(rb"^bwrap: execvp (.*?): (.*)$", re.MULTILINE)
_ERR_HEAD = 4096  # stderr bytes kept to recognise bwrap's own failures
_fallback_warned = False

View = OverlayView | TmpdirView


@dataclass(eq=False)
class _Sidecar:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    log_path: Path
    proc: subprocess.Popen | None = None


@dataclass(eq=False)
class _Run:
    job: PodJob
    view: View
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    sidecars: list[_Sidecar]
    started_at: float = 0.0
    finished_at: float = 0.0
    proc: subprocess.Popen | None = None
    pidfd: int = -1
    fds: dict[int, bool] = field(default_factory=dict)  # pipe read end -> is stdout
    log_fd: int = -1
    out: bytearray = field(default_factory=bytearray)  # the tail of stdout, at most result cap + 1 bytes
    out_total: int = 0  # stdout bytes seen
    log_written: int = 0
    log_truncated: bool = False
    err_head: bytes = b""
    exit_code: int | None = None
    kill_reason: str | None = None
    stage: str = "main"  # what _launch was starting, for its error message
    done: bool = False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # the whole group is already gone
        pass


PGID_FILE = ".process-groups"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def record_process_groups(scratch: Path | None, pids: list[int]) -> None:
    """Note a step's process groups in its scratch directory, so a daemon that died without
    killing them lets its successor find and kill them (see reap_orphans)."""
    if scratch is None:
        return
    lines = [f"{pid} {process_start_time(pid)}" for pid in pids]
    (Path(scratch) / PGID_FILE).write_text("\n".join(lines) + "\n")


def reap_orphans(root: Path) -> int:
    """Kill the process groups recorded under `root` (a workflow's run directory) that are still
    the processes recorded; returns how many were killed."""
    killed = 0
    for record in Path(root).glob(f"*/{PGID_FILE}"):
        try:
            lines = record.read_text().split("\n")
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and process_start_time(int(parts[0])) == parts[1]:
                _killpg(int(parts[0]), signal.SIGKILL)
                killed += 1
        record.unlink(missing_ok=True)
    return killed


def _start_failure(cmd: str, detail: str) -> str:
    if "No such file" in detail:
        detail = "executable file not found in $PATH"
    return f'failed to start: exec: "{cmd}": {detail}'


class LocalProcessExecutor(Executor):
    name = "local"

    def __init__(self, isolation: str = "auto", kill_grace: float = 1.0, python: str | None = None) -> None:
        global _fallback_warned
        if isolation not in ("auto", "bwrap", "tmpdir"):
            raise ValueError(f"isolation must be auto, bwrap or tmpdir, not {isolation!r}")
        self._bwrap: str | None = None
        if isolation != "tmpdir":
            ok, why = probe_bwrap()
            if ok:
                self._bwrap = bwrap_binary()
            elif isolation == "bwrap":
                raise RuntimeError(f"bwrap isolation is not available here: {why}")
            elif not _fallback_warned:
                _fallback_warned = True
                log.warning("bwrap cannot run (%s); steps get only a per-step cwd and TMPDIR, "
                            "not a private view of /", why)
        self.isolation = "bwrap" if self._bwrap else "tmpdir"
        self.kill_grace = kill_grace
        self._limits = current()
        self._shim = PythonShim(python or sys.executable)
        self._base_env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        self._base_env.setdefault("PATH", _DEFAULT_PATH)
        self._lock = threading.Lock()
        self._running: set[JobKey] = set()
        self._results: queue.SimpleQueue[_Run | PodResult] = queue.SimpleQueue()
        self._commands: deque[tuple] = deque()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._sel = selectors.EpollSelector()
        self._sel.register(self._wake, selectors.EVENT_READ, None)
        self._runs: dict[JobKey, _Run] = {}  # supervisor thread only
        self._timers: list[tuple[float, int, str, _Run]] = []
        self._seq = itertools.count()
        self._closed = False  # no more start(); guarded by _lock
        self._stopping = False  # supervisor: exit once every run is reaped
        self._thread = threading.Thread(target=self._supervise, name="local-executor", daemon=True)
        self._thread.start()

    # ---- engine-facing API ------------------------------------------------------------------

    def start(self, job: PodJob) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is closed")
            if job.key in self._running:
                raise ValueError(f"node {job.node_id} is already running in namespace {job.namespace}")
            self._running.add(job.key)
        try:
            run = self._prepare(job)
        except Exception as exc:  # bad input artifact, unwritable scratch: the pod never started
            log.debug("preparing %s failed", job.node_id, exc_info=True)
            self._results.put(error_result(job, ERROR, f"{type(exc).__name__}: {exc}"))
            return
        self._send("start", run)

    def kill(self, key: JobKey, reason: str = "") -> None:
        self._send("kill", key, reason)

    def poll(self, timeout: float) -> list[PodResult]:
        try:
            items = [self._results.get(timeout=timeout) if timeout > 0 else self._results.get_nowait()]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self._results.get_nowait())
            except queue.Empty:
                break
        results = [x if isinstance(x, PodResult) else self._collect(x) for x in items]
        with self._lock:
            self._running.difference_update(r.key for r in results)
        return results

    def running(self) -> set[JobKey]:
        with self._lock:
            return set(self._running)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._send("close")
        self._thread.join()
        self._sel.close()
        os.close(self._wake)
        os.close(self._devnull)
        self._shim.close()

    # ---- preparation (caller's thread) ------------------------------------------------------

    def _view(self, scratch: Path, working_dir: str | None, prefix: str = "") -> View:
        if self._bwrap:
            return OverlayView(self._bwrap, scratch, working_dir, prefix)
        return TmpdirView(scratch, working_dir, prefix)

    def _env(self, view: View, extra: dict[str, str]) -> dict[str, str]:
        env = dict(self._base_env)
        env["TMPDIR"] = view.tmpdir
        env.update(extra)
        env["PATH"] = f"{view.add_shim(self._shim)}:{env.get('PATH') or _DEFAULT_PATH}"
        return env

    def _prepare(self, job: PodJob) -> _Run:
        scratch = job.scratch_dir
        scratch.mkdir(parents=True, exist_ok=True)
        view = self._view(scratch, job.working_dir)
        for f in job.input_files:
            view.place_input(f.path, Path(f.source))
        command = list(job.command) + list(job.args)
        if job.script_source is not None:
            command.append(view.place_script(job.script_source))
        if not command:
            raise ValueError("no command or args to run")
        sidecars = []
        for i, sc in enumerate(job.sidecars):
            sc_view = self._view(scratch, None, prefix=f"sidecar{i}-")
            label = sc.name if _SAFE_NAME.fullmatch(sc.name) else str(i)
            sc_argv = sc_view.argv(list(sc.command) + list(sc.args), job.volumes)
            sidecars.append(_Sidecar(sc.name, sc_argv, self._env(sc_view, sc.env), sc_view.cwd,
                                     paths.under(scratch, f"sidecar-{label}.log")))
        return _Run(job=job, view=view, argv=view.argv(command, job.volumes), env=self._env(view, job.env),
                    log_path=scratch / "main.log", sidecars=sidecars)

    def _send(self, *cmd: object) -> None:
        self._commands.append(cmd)
        os.eventfd_write(self._wake, 1)

    # ---- supervisor thread -----------------------------------------------------------------

    def _supervise(self) -> None:
        while not (self._stopping and not self._runs):
            try:
                self._step()
            except Exception:  # a bug here must not orphan every running step
                log.exception("local executor supervisor error")

    def _step(self) -> None:
        delay = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
        for key, _ in self._sel.select(delay):
            if key.data is None:
                try:
                    os.eventfd_read(self._wake)
                except BlockingIOError:
                    pass
                while self._commands:
                    self._command(self._commands.popleft())
                continue
            run, is_exit = key.data
            if run.done:
                continue  # finished earlier in this same batch
            if is_exit:
                self._finish(run)
            else:
                self._read(run, key.fd)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, run = heapq.heappop(self._timers)
            if run.done:
                continue
            if kind == "deadline":
                self._terminate(run, DEADLINE_MESSAGE)
            else:
                self._signal(run, signal.SIGKILL)

    def _command(self, cmd: tuple) -> None:
        kind = cmd[0]
        if kind == "start":
            self._spawn(cmd[1])
        elif kind == "kill":
            run = self._runs.get(cmd[1])
            if run is not None:
                self._terminate(run, cmd[2] or "killed")
        elif kind == "close":
            self._stopping = True
            for run in list(self._runs.values()):
                run.kill_reason = run.kill_reason or "executor closed"
                self._signal(run, signal.SIGKILL)
                self._finish(run)

    def _spawn(self, run: _Run) -> None:
        run.started_at = time.time()
        try:
            self._launch(run)
        except Exception as exc:  # noqa: BLE001 - one bad step must never stop the supervisor
            self._abandon(run)
            if run.stage == "main" and isinstance(exc, (FileNotFoundError, PermissionError)):
                phase, msg = FAILED, _start_failure(run.argv[0], exc.strerror or str(exc))
            else:
                phase, msg = ERROR, f"{run.stage} failed to start: {exc}"
            self._results.put(error_result(run.job, phase, msg, run.started_at))

    def _launch(self, run: _Run) -> None:
        for sc in run.sidecars:
            run.stage = f"sidecar {sc.name}"
            with open(sc.log_path, "wb") as sc_log:
                sc.proc = subprocess.Popen(sc.argv, stdin=self._devnull, stdout=sc_log, stderr=sc_log,
                                           env=sc.env, cwd=sc.cwd, start_new_session=True)
        run.stage = "main"
        r_out, w_out = os.pipe()
        run.fds[r_out] = True
        try:
            r_err, w_err = os.pipe()
            run.fds[r_err] = False
            try:
                run.proc = subprocess.Popen(run.argv, stdin=self._devnull, stdout=w_out, stderr=w_err,
                                            env=run.env, cwd=run.view.cwd, start_new_session=True)
            finally:
                os.close(w_err)
        finally:
            os.close(w_out)  # only the child keeps the write ends, so EOF means it is gone
        run.stage = "step setup"
        record_process_groups(run.job.scratch_dir, [run.proc.pid, *(sc.proc.pid for sc in run.sidecars if sc.proc)])
        run.pidfd = os.pidfd_open(run.proc.pid)
        run.log_fd = os.open(run.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        for fd in run.fds:
            os.set_blocking(fd, False)
            self._sel.register(fd, selectors.EVENT_READ, (run, False))
        self._sel.register(run.pidfd, selectors.EVENT_READ, (run, True))
        self._runs[run.job.key] = run
        if run.job.timeout is not None:
            self._timer(run.job.timeout, "deadline", run)

    def _abandon(self, run: _Run) -> None:
        """Undo a partial launch: no process, fd or selector entry may outlive it."""
        for fd in [*run.fds, run.pidfd]:
            if fd >= 0:
                try:
                    self._sel.unregister(fd)
                except (KeyError, ValueError):
                    pass
                os.close(fd)
        run.fds.clear()
        run.pidfd = -1
        if run.log_fd >= 0:
            os.close(run.log_fd)
            run.log_fd = -1
        if run.proc is not None and run.proc.returncode is None:  # once reaped, its pgid may be reused
            _killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        self._kill_sidecars(run)
        self._runs.pop(run.job.key, None)
        run.done = True

    def _timer(self, delay: float, kind: str, run: _Run) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), kind, run))

    def _read(self, run: _Run, fd: int) -> bool:
        """Move one chunk from a pipe to the log; False at EOF or when nothing is waiting."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            self._sel.unregister(fd)
            os.close(fd)
            del run.fds[fd]
            return False
        self._log(run, data)
        if run.fds[fd]:
            run.out_total += len(data)
            run.out += data
            keep = self._limits.result_bytes + 1  # + the final newline Argo trims
            if len(run.out) > keep:
                del run.out[:len(run.out) - keep]
        elif len(run.err_head) < _ERR_HEAD:
            run.err_head += data[: _ERR_HEAD - len(run.err_head)]
        return True

    def _log(self, run: _Run, data: bytes) -> None:
        """Append to the step's log up to the log cap; past it, one truncation line and nothing more."""
        if run.log_truncated:
            return
        room = self._limits.log_bytes - run.log_written
        if len(data) > room:
            run.log_truncated = True
            data = data[:room] + (f"\n[reconciler] log truncated: over the {human(self._limits.log_bytes)} limit "
                                  "(limits.logBytes); further output of this step is dropped\n").encode()
        try:
            os.write(run.log_fd, data)
            run.log_written += len(data)
        except OSError as exc:  # e.g. disk full: keep the step running and stdout complete
            log.warning("cannot write log of %s: %s", run.job.node_id, exc)

    def _signal(self, run: _Run, sig: int) -> None:
        for proc in [run.proc, *(sc.proc for sc in run.sidecars)]:
            if proc is not None and proc.returncode is None:
                _killpg(proc.pid, sig)

    def _terminate(self, run: _Run, reason: str) -> None:
        if run.kill_reason is not None:
            return
        run.kill_reason = reason
        self._signal(run, signal.SIGTERM)
        self._timer(self.kill_grace, "sigkill", run)

    def _kill_sidecars(self, run: _Run) -> None:
        for sc in run.sidecars:
            if sc.proc is not None and sc.proc.returncode is None:
                _killpg(sc.proc.pid, signal.SIGKILL)
                sc.proc.wait()

    def _finish(self, run: _Run) -> None:
        assert run.proc is not None
        run.finished_at = time.time()
        try:
            # The leader is a zombie until waited for, so its pgid cannot have been reused yet.
            _killpg(run.proc.pid, signal.SIGKILL)
            for fd in list(run.fds):
                while fd in run.fds and self._read(run, fd):
                    pass
            rc = run.proc.wait()
            run.exit_code = 128 - rc if rc < 0 else rc  # killed by signal N -> 128+N, as containers report
            if self._result_cut(run) and not run.log_truncated:
                self._log(run, f"[reconciler] stdout is {human(run.out_total)}, more than outputs.result keeps "
                               f"({human(self._limits.result_bytes)}, limits.resultBytes): only its end was kept, "
                               "as Argo does\n".encode())
        finally:
            # Whatever happened, release everything and deliver a result so the engine never waits forever.
            # A pipe still open here is held by an escaped grandchild: stop listening to it.
            self._abandon(run)
            self._results.put(run)

    # ---- results (poll's thread) ------------------------------------------------------------

    def _collect(self, run: _Run) -> PodResult:
        job, code = run.job, run.exit_code
        phase, message = (SUCCEEDED, "") if code == 0 else (FAILED, exit_message(code or 0))
        if run.kill_reason is not None:
            phase, message = FAILED, run.kill_reason
        elif code is None:
            phase, message = ERROR, "the executor lost track of the process (see the daemon log)"
        elif code == 1 and self._bwrap and run.err_head.startswith(b"bwrap: ") and not run.out:
            m = _BWRAP_EXEC.search(run.err_head)
            if m:  # bwrap could not exec the step's command: the container never started
                phase = FAILED
                message = _start_failure(m.group(1).decode(errors="replace"), m.group(2).decode(errors="replace"))
                code = None
            else:
                phase, message = ERROR, run.err_head.decode(errors="replace").splitlines()[0]
        params: dict[str, str | None] = {}
        arts: dict[str, Path | None] = {}
        try:
            for name, path in job.output_parameter_paths.items():
                try:
                    params[name] = run.view.read_param(path)
                except TooLarge as exc:
                    raise TooLarge(f"outputs.parameters.{name}: {path}: {exc}") from None
            out_dir = job.scratch_dir / "outputs"
            for i, spec in enumerate(job.output_artifacts):
                safe = spec.name if _SAFE_NAME.fullmatch(spec.name) and spec.name not in (".", "..") else str(i)
                out_dir.mkdir(exist_ok=True)
                dest = paths.under(out_dir, safe)
                arts[spec.name] = dest if run.view.copy_out(spec.path, dest) else None
        except (OSError, TooLarge) as exc:
            phase, message = ERROR, str(exc) if isinstance(exc, TooLarge) else f"collecting outputs failed: {exc}"
            params = {**dict.fromkeys(job.output_parameter_paths), **params}
            arts = {**{a.name: None for a in job.output_artifacts}, **arts}
        run.view.finish()
        return PodResult(job.node_id, phase, code, message, self._result_text(run), run.log_path, params, arts,
                         run.started_at, run.finished_at, namespace=job.namespace)

    def _result_cut(self, run: _Run) -> bool:
        return run.out_total - run.out.endswith(b"\n") > self._limits.result_bytes

    def _result_text(self, run: _Run) -> str:
        """Stdout for outputs.result: Argo's last `result_bytes` after the one trimmed final newline."""
        out, cap = bytes(run.out), self._limits.result_bytes
        newline = out.endswith(b"\n")
        body = out[:-1] if newline else out
        if self._result_cut(run):
            body = body[-cap:]
            for _ in range(3):  # do not start with half a UTF-8 character
                if body and body[0] & 0xC0 == 0x80:
                    body = body[1:]
        return (body + b"\n" * newline).decode("utf-8", errors="replace")

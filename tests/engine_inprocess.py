"""Engine tests without processes: a tiny shell for the in-process executor.

`shell(job)` runs a step's command inside the test process, for the few commands engine tests
use: `echo`, `test`/`[` with `=` and `!=`, `true`, `false`, `exit N`, `cat` of an input file, and
`> FILE` redirection (how a step writes an output parameter's file), joined by `;`, `&&`, `||`,
given directly or as `sh -c SCRIPT` / a script template's source. Anything else is a step
error naming what is not understood, never a silent success. With it, a table of workflows runs
unchanged on the in-process executor (fast, no sandbox) and on the real local executor.
"""

from __future__ import annotations

import shlex
import time

from reconciler.executors.base import ERROR, FAILED, SUCCEEDED, PodJob, PodResult
from reconciler.executors.inprocess import _DEVNULL, InProcessExecutor

MAX_SCRIPT = 64 * 1024


class Unsupported(Exception):
    pass


def _script_of(job: PodJob) -> str:
    argv = list(job.command) + list(job.args)
    if job.script_source is not None:
        return job.script_source
    if len(argv) >= 3 and argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and argv[1] == "-c":
        return argv[2]
    return shlex.join(argv)


def _split(script: str) -> list[tuple[str, list[str]]]:
    """(joiner, words) per simple command; the joiner says how it follows the previous one."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|>\n")
    lexer.whitespace_split = True
    commands: list[tuple[str, list[str]]] = []
    joiner, words = ";", []
    for token in lexer:
        if token in (";", "\n", "&&", "||"):
            if words:
                commands.append((joiner, words))
            joiner, words = (";" if token == "\n" else token), []
        elif set(token) <= set(";&|"):
            raise Unsupported(f"operator {token!r}")
        else:
            words.append(token)
    if words:
        commands.append((joiner, words))
    return commands


class _Run:
    def __init__(self, job: PodJob) -> None:
        self.job = job
        self.out: list[str] = []
        self.files: dict[str, str] = {}
        self.inputs = {f.path: f.source for f in job.input_files}

    def command(self, words: list[str]) -> int:
        target = None
        if ">" in words:
            at = words.index(">")
            if at != len(words) - 2:
                raise Unsupported("redirection other than '> FILE' at the end")
            words, target = words[:at], words[at + 1]
        name, args = words[0], words[1:]
        text = ""
        if name == "echo":
            newline = "\n"
            if args[:1] == ["-n"]:
                args, newline = args[1:], ""
            text = " ".join(args) + newline
            code = 0
        elif name in ("test", "["):
            if name == "[":
                if args[-1:] != ["]"]:
                    raise Unsupported("'[' without ']'")
                args = args[:-1]
            if len(args) != 3 or args[1] not in ("=", "!="):
                raise Unsupported(f"test {' '.join(args)}")
            equal = args[0] == args[2]
            code = 0 if equal == (args[1] == "=") else 1
            if code:
                self.out.append(f"test failed: {args[0]!r} {args[1]} {args[2]!r}\n")
        elif name in ("true", "false"):
            code = 0 if name == "true" else 1
        elif name == "exit":
            raise SystemExit(int(args[0]) if args else 0)
        elif name == "cat" and len(args) == 1:
            source = self.inputs.get(args[0])
            if source is None and args[0] not in self.files:
                raise Unsupported(f"cat of {args[0]}, which is no input file")
            text = self.files[args[0]] if source is None else source.read_text()
            code = 0
        else:
            raise Unsupported(f"command {name!r}")
        if target is not None:
            self.files[target] = text
        else:
            self.out.append(text)
        return code

    def script(self, script: str) -> int:
        code = 0
        for joiner, words in _split(script):
            if (joiner == "&&" and code != 0) or (joiner == "||" and code == 0):
                continue
            code = self.command(words)
        return code


def shell(job: PodJob) -> PodResult:
    """Run ``job`` in this process with the tiny shell; the result a real executor would give."""
    start = time.time()
    script = _script_of(job)
    run = _Run(job)
    message = ""
    try:
        if len(script) > MAX_SCRIPT:
            raise Unsupported("a script over 64 KiB")
        code = run.script(script)
    except SystemExit as exc:
        code = int(exc.code or 0)
    except (Unsupported, ValueError, IndexError) as exc:
        return PodResult(job.node_id, ERROR, None, f"in-process shell: not supported: {exc}", "", _DEVNULL,
                         dict.fromkeys(job.output_parameter_paths), {a.name: None for a in job.output_artifacts},
                         start, time.time(), namespace=job.namespace)
    if code:
        message = f"Error (exit code {code})"
    params = {name: run.files.get(path) for name, path in job.output_parameter_paths.items()}
    return PodResult(job.node_id, SUCCEEDED if code == 0 else FAILED, code, message, "".join(run.out), _DEVNULL,
                     params, {a.name: None for a in job.output_artifacts}, start, time.time(), namespace=job.namespace)


def shell_executor() -> InProcessExecutor:
    return InProcessExecutor(shell)

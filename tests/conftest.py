from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Vendored from upstream (licence and source commit beside them), so a clone's tests need nothing outside it.
CORPUS = REPO / "tests" / "corpus" / "argo-examples"
ARGO_CRDS = REPO / "tests" / "corpus" / "argo-crds"


def corpus_files() -> list[str]:
    """The corpus examples that must run (public.txt) and the fixtures they refer to (fixtures.txt)."""
    names = []
    for listing in ("public.txt", "fixtures.txt"):
        names += [line.strip() for line in (CORPUS / listing).read_text().splitlines() if line.strip()]
    return names


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_cli(home: Path, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    """The real `reconciler` command, as a subprocess, on its own data directory."""
    env = dict(os.environ, RECONCILER_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", *args], capture_output=True, text=True, check=False,
                          env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"reconciler {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, step: float = 0.1) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; says which, never asserts on time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False

"""What the step sandbox costs per step, on this machine: today's container-like sandbox beside the
pre-issue-10 one (an overlay view of / only) and no sandbox (tmpdir).

    python benchmarks/sandbox.py            # 300 steps per mode
    python benchmarks/sandbox.py -n 50      # fewer

Each mode runs N `sh -c true` steps straight on the local executor (no engine, no store):
  serial     one step at a time: median start-to-result latency per step
  batch      all N started at once: wall time / N (the supervisor and bwrap spawns in parallel)
Scratch directories are removed after each step in every mode, as the runner does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from reconciler.executors import LocalProcessExecutor, PodJob, probe_bwrap
from reconciler.executors.settings import StepSettings

MODES = {
    "bwrap": StepSettings(),
    "legacy": StepSettings(legacy=True),
    "tmpdir": StepSettings(isolation="tmpdir"),
}


def job(root: Path, i: int) -> PodJob:
    return PodJob(f"n{i}", f"p{i}", "bench", "default", "busybox", ["sh", "-c", "true"], [],
                  scratch_dir=root / f"n{i}")


def serial(ex: LocalProcessExecutor, root: Path, n: int) -> float:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        ex.start(job(root, i))
        results = []
        while not results:
            results = ex.poll(10)
        assert results[0].phase == "Succeeded", results[0].message
        samples.append(time.perf_counter() - start)
        shutil.rmtree(root / f"n{i}")
    return statistics.median(samples) * 1000


def batch(ex: LocalProcessExecutor, root: Path, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        ex.start(job(root, n + i))
    done = 0
    while done < n:
        for r in ex.poll(10):
            assert r.phase == "Succeeded", r.message
            done += 1
    elapsed = time.perf_counter() - start
    for i in range(n):
        shutil.rmtree(root / f"n{n + i}")
    return elapsed * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    modes = MODES if probe_bwrap()[0] else {"tmpdir": MODES["tmpdir"]}
    print(f"{'mode':<8} {'serial ms/step':>15} {'batch ms/step':>14}   ({args.n} steps of `sh -c true` each)")
    for name, settings in modes.items():
        ex = LocalProcessExecutor(settings=settings)
        with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
            try:
                s = serial(ex, Path(tmp), args.n)
                b = batch(ex, Path(tmp), args.n)
            finally:
                ex.close()
        print(f"{name:<8} {s:>15.2f} {b:>14.2f}")


if __name__ == "__main__":
    main()

"""Build step: ship the top-level sample-repo/ folder inside the package.

sample-repo/ stays where a reader of the repository expects it, and is the only copy in git; a
wheel (`pip install .`, the Docker image) gets it as reconciler/sync/sample-repo/, so
`reconciler sample-repo DEST` works from any installed copy. An editable install reads the
checkout's folder instead (see reconciler/sync/sample.py). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "sample-repo"
PACKAGED = Path("reconciler") / "sync" / "sample-repo"


class BuildWithSample(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the checkout's sample-repo/ is found directly
        if not (SOURCE / "reconciler.yaml").is_file():
            # A wheel without it would fail only when a user runs `reconciler sample-repo`.
            raise SystemExit(f"{SOURCE} is missing: build from a full checkout (or sdist)")
        target = Path(self.build_lib) / PACKAGED
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithSample})

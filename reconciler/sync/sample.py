"""Turn the project's sample-repo/ folder into a standalone git repository with dev, qa and main.

    python -m reconciler.sync.sample DEST      (or: reconciler sample-repo DEST)

The result is an ordinary repository whose checked-out branch accepts pushes
(receive.denyCurrentBranch=updateInstead), so `reconciler promote dev qa --repo DEST` works on it.
The folder is the checkout's top-level sample-repo/; setup.py copies it into a built package as
reconciler/sync/sample-repo/, so an installed copy needs no checkout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import git

BRANCHES = ("main", "qa", "dev")
AUTHOR = git.Actor("reconciler sample", "sample@reconciler.invalid")


def find_sample_source() -> Path | None:
    """The copy shipped in the package (a wheel install), else the checkout's sample-repo/ (an
    editable install, or running from the source tree)."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "sample-repo", here.parents[2] / "sample-repo"):
        if (candidate / "reconciler.yaml").is_file():
            return candidate
    return None


def make_sample_repo(dest: Path, source: Path | None = None, *, bare: bool = False) -> Path:
    """Create the repository at `dest` (which must not exist or be empty); returns its path."""
    if source is None:
        source = find_sample_source()
        if source is None:
            raise FileNotFoundError("the sample repository is not in this installation (a package built without "
                                    "setup.py's build step?): pass the folder with --source")
    elif not (source / "reconciler.yaml").is_file():
        raise FileNotFoundError(f"{source} has no reconciler.yaml: not a sample repository folder")
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty")
    work = dest if not bare else dest.with_name(dest.name + ".work")
    shutil.copytree(source, work, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"))
    repo = git.Repo.init(work, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("receive", "denyCurrentBranch", "updateInstead")
    repo.git.add(A=True)
    repo.index.commit("Sample workflow repository: ETL, nightly schedule, ML training",
                      author=AUTHOR, committer=AUTHOR)
    for branch in BRANCHES[1:]:
        repo.create_head(branch)
    if bare:
        git.Repo.clone_from(str(work), str(dest), bare=True, multi_options=["--no-local"])
        shutil.rmtree(work)
    repo.close()
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--source", type=Path, default=None,
                        help="the sample-repo folder (default: the one shipped with reconciler)")
    parser.add_argument("--bare", action="store_true", help="create a bare repository (a 'remote')")
    args = parser.parse_args(argv)
    try:
        path = make_sample_repo(args.dest, args.source, bare=args.bare)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {path} with branches {', '.join(BRANCHES)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

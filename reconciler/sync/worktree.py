"""The working tree's environments, for `reconciler lint` inside a workflow repository.

`lint FILES` checks files on their own; inside a repository with a reconciler.yaml the same files
are also built into each environment the way the sync builds a commit (overrides, limits, the
environment's policies and namespace), so a policy denial shows on the author's machine instead
of after the push. A problem found in several environments is reported once, naming them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from reconciler.source.folder import WORKTREE, FolderSource
from reconciler.spec import Problem, SpecError
from reconciler.spec.repo_config import CONFIG_FILES, parse_config

from .build import Builder, under_folder


def repository_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds a reconciler.yaml, stopping at a git
    repository's top (a reconciler.yaml above it belongs to something else)."""
    here = Path(start).resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in CONFIG_FILES):
            return folder
        if (folder / ".git").exists():
            return None
    return None


def _covered(path: Path, targets: list[Path]) -> bool:
    return any(path == t or t in path.parents for t in targets)


def environment_problems(root: Path, paths: Iterable[str], *, template_lookup: Callable | None = None,
                         environment: str | None = None) -> list[Problem]:
    """Problems of building each environment (or only `environment`) from the files under `root`,
    kept to the files under `paths`; file names are absolute. A broken reconciler.yaml is itself
    the problem. KeyError when `environment` is not defined."""
    source = FolderSource(root)
    config_name = next((name for name in CONFIG_FILES if source.read(WORKTREE, name) is not None), None)
    if config_name is None:
        return []
    config_file = str(source.root / config_name)
    try:
        config = parse_config((source.read(WORKTREE, config_name) or b"").decode("utf-8-sig"), config_file)
    except SpecError as exc:
        return exc.problems
    except UnicodeDecodeError:
        return [Problem(config_file, 1, "(file)", "not UTF-8 text")]
    envs = config.select(environment)
    targets = [Path(p).resolve() for p in paths]
    builder = Builder(source, template_lookup)
    found: dict[Problem, list[str]] = {}
    for env in envs:
        build = builder.build(env, WORKTREE)
        elsewhere = []
        for p in build.problems + build.warnings:
            absolute = source.root / p.filename
            # reconciler.yaml and policy files decide every build: their problems always count.
            decides_all = p.filename in CONFIG_FILES or under_folder(p.filename, env.policies.files)
            if decides_all or _covered(absolute, targets):
                found.setdefault(Problem(str(absolute), p.line, p.field, p.message, p.severity), []).append(env.name)
            elif p.is_error:
                elsewhere.append(p)
        if elsewhere:
            # The build stops at the first failing stage, so the linted files were not checked in full.
            found.setdefault(Problem(config_file, env.line, f"environments.{env.name}", (
                f"not fully checked: {len(elsewhere)} error(s) in files not linted here, first "
                f"{elsewhere[0]}"), "warning"), []).append(env.name)
    return [Problem(p.filename, p.line, p.field, f"{p.message} (environment{'s' if len(names) > 1 else ''} "
                    f"{', '.join(names)})", p.severity) for p, names in found.items()]


def repository_problems(paths: Iterable[str], known: Iterable[Problem], *, template_lookup: Callable | None = None,
                        environment: str | None = None) -> list[Problem]:
    """environment_problems for every repository the paths are in, minus what `known` (lint's own
    problems, of the same files) already says; file names relative to the current folder where
    they are under it. KeyError for an unknown `environment`, LookupError when no path is in a
    repository with a reconciler.yaml and `environment` was asked for."""
    by_root: dict[Path, list[str]] = {}
    for path in paths:
        root = repository_root(Path(path))
        if root is not None:
            by_root.setdefault(root, []).append(path)
    if environment is not None and not by_root:
        raise LookupError(f"--env {environment}: no reconciler.yaml found at or above the linted paths")
    seen = {(str(Path(p.filename).resolve()), p.line, p.field, p.message) for p in known}
    out = []
    for root, inside in by_root.items():
        for p in environment_problems(root, inside, template_lookup=template_lookup, environment=environment):
            plain = p.message.rsplit(" (environment", 1)[0]
            if (p.filename, p.line, p.field, plain) in seen:
                continue
            shown = os.path.relpath(p.filename)
            out.append(Problem(p.filename if shown.startswith("..") else shown, p.line, p.field, p.message,
                               p.severity))
    return out

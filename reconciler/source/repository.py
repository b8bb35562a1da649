"""A local bare copy of the workflow repository: clone, fetch, read files of a commit, promote.

The copy lives under the data directory (sources/<name>-<hash>.git) and is only ever fetched into;
its git config holds the URL without credentials, which reach git only through credentials.py;
files are read from git blobs of a commit's tree, so no working tree is checked out per branch.
Branches land in refs/remotes/origin/* with a non-forced refspec: a force-pushed branch is
rejected by git, and we keep the last good state rather than follow rewritten history silently.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import git
from git.exc import BadName, GitCommandError

from reconciler import paths
from reconciler.limits import current as current_limits
from reconciler.limits import too_large

from .credentials import Credentials, CredentialsError, from_environment, git_environment, split_url

log = logging.getLogger("reconciler.source")

FETCH_TIMEOUT = 120.0  # seconds; an unreachable remote must not stall the sync loop forever
_REJECTED = re.compile(r"!\s+\[rejected\]\s+(\S+)\s+->\s+origin/(\S+)\s+\((.*)\)")


class SourceError(Exception):
    """The repository could not be cloned, fetched or read; the message is meant for a person."""


@dataclass
class FetchResult:
    ok: bool
    seconds: float
    error: str = ""
    rewritten: dict[str, str] = field(default_factory=dict)  # branch -> git's reason ("non-fast-forward")


def redact(url: str) -> str:
    """The URL without credentials, fit for logs and status."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", url)


def _is_local(url: str) -> bool:
    return "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)


def normalize_url(url: str) -> str:
    """Local paths become absolute, so the same repository always maps to the same copy."""
    if _is_local(url):
        return str(Path(url).expanduser().resolve())
    return url


def cache_dir(home: Path, url: str) -> Path:
    """sources/<name>-<hash>.git, named after the URL without credentials: the same for any password."""
    url = split_url(normalize_url(url))[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", redact(url).rstrip("/").rsplit("/", 1)[-1]).strip("-") or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return paths.under(home, "sources", f"{stem.removesuffix('.git')}-{digest}.git")


def _legacy_cache_dir(home: Path, url: str) -> Path:
    """Where older versions kept the copy: named by a hash of the URL with its credentials."""
    path = cache_dir(home, url)
    digest = hashlib.sha256(normalize_url(url).encode()).hexdigest()[:10]
    return path.with_name(f"{path.name.rsplit('-', 1)[0]}-{digest}.git")


class GitSource:
    """One remote repository and its local bare copy. Thread-safe for one fetcher and many readers."""

    def __init__(self, url: str, home: Path, credentials: Credentials | None = None) -> None:
        """Credentials in an http(s) URL win over `credentials`, which win over RECONCILER_GIT_USERNAME/
        RECONCILER_GIT_PASSWORD; none of them is written anywhere (credentials.py)."""
        given = normalize_url(url)
        self.url, in_url = split_url(given)
        self.credentials_error = ""
        try:
            self.credentials = in_url or credentials or from_environment()
        except CredentialsError as exc:  # said by every fetch, as a failed fetch is
            self.credentials, self.credentials_error = None, str(exc)
        self.display_url = redact(given)
        self.path = cache_dir(home, self.url)
        self._legacy_path = _legacy_cache_dir(home, given)
        self._lock = threading.RLock()
        self._repo: git.Repo | None = None
        self.last_fetch: FetchResult | None = None

    # ---- the local copy --------------------------------------------------------------------------
    @property
    def repo(self) -> git.Repo:
        with self._lock:
            if self._repo is None:
                self._repo = self._open_or_init()
            return self._repo

    def _open_or_init(self) -> git.Repo:
        if self._legacy_path != self.path and (self._legacy_path / "HEAD").exists() and not self.path.exists():
            # Named by a hash of the URL with its password by older versions: keep the copy, drop the name.
            self._legacy_path.rename(self.path)
        if (self.path / "HEAD").exists():
            repo = git.Repo(self.path)
            self._scrub_remote(repo)
            return repo
        if _is_local(self.url) and not Path(self.url).exists():
            raise SourceError(f"repository {self.display_url} does not exist")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        repo = git.Repo.init(self.path, bare=True)
        repo.create_remote("origin", self.url)
        return repo

    def _scrub_remote(self, repo: git.Repo) -> None:
        """Older versions wrote the URL with its credentials into the copy's config: rewrite it."""
        with repo.config_reader() as config:
            current = config.get_value('remote "origin"', "url", default="")
        if current != self.url:
            with repo.config_writer() as config:
                config.set_value('remote "origin"', "url", self.url)
            if split_url(current)[1] is not None:
                log.warning("removed the credentials an older version wrote into %s/config", self.path)

    def _git_env(self) -> dict[str, str]:
        return {**git_environment(self.credentials, self.path.parent),
                "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}

    def fetch(self, *, accept_rewrites: bool = False) -> FetchResult:
        """Fetch every branch. Never raises: a failure is returned and the previous refs stay.

        With accept_rewrites, force-pushed branches are taken as they now are on the remote.
        """
        started = time.monotonic()
        refspec = ("+" if accept_rewrites else "") + "refs/heads/*:refs/remotes/origin/*"
        try:
            if self.credentials_error:
                raise SourceError(f"fetch {self.display_url} failed: {self.credentials_error}")
            with self._lock:
                self.repo.git.fetch("origin", "--prune", "--no-tags", refspec, env=self._git_env(),
                                    kill_after_timeout=FETCH_TIMEOUT)
            result = FetchResult(ok=True, seconds=time.monotonic() - started)
        except SourceError as exc:
            result = FetchResult(ok=False, seconds=time.monotonic() - started, error=str(exc))
        except GitCommandError as exc:
            stderr = str(exc.stderr or "")
            rewritten = {m.group(2): m.group(3) for m in _REJECTED.finditer(stderr)}
            if rewritten:
                names = ", ".join(sorted(rewritten))
                error = (f"history of branch {names} was rewritten (force-push); keeping the last good "
                         "state; run `reconciler sync --accept-force-push` to follow the new history")
            else:
                error = _first_error_line(stderr) or str(exc)
            result = FetchResult(ok=False, seconds=time.monotonic() - started,
                                 error=f"fetch {self.display_url} failed: {error}", rewritten=rewritten)
        if result.ok:
            log.debug("fetched %s in %.2fs", self.display_url, result.seconds)
        else:
            log.warning("%s", result.error)
        self.last_fetch = result
        return result

    # ---- reading ---------------------------------------------------------------------------------
    def branches(self) -> dict[str, str]:
        """branch name -> head commit sha, as last fetched."""
        with self._lock:
            try:
                refs = self.repo.remotes.origin.refs
            except (AssertionError, IndexError, ValueError, SourceError):
                return {}
            return {ref.remote_head: ref.commit.hexsha for ref in refs if ref.remote_head != "HEAD"}

    def head(self, branch: str) -> str | None:
        with self._lock:
            try:
                return self.repo.commit(f"refs/remotes/origin/{branch}").hexsha
            except (BadName, ValueError, GitCommandError, SourceError):
                return None

    def has_commit(self, sha: str) -> bool:
        with self._lock:
            try:
                self.repo.commit(sha)
                return True
            except (BadName, ValueError, GitCommandError):
                return False

    def commit_info(self, sha: str) -> dict[str, str]:
        with self._lock:
            commit = self.repo.commit(sha)
            return {"sha": commit.hexsha, "message": commit.message.strip().splitlines()[0] if commit.message else "",
                    "author": str(commit.author), "date": commit.committed_datetime.isoformat()}

    def read(self, sha: str, path: str) -> bytes | None:
        """One file of a commit, or None when it is absent; TooLarge over limits.file_bytes."""
        with self._lock:
            try:
                item = self.repo.commit(sha).tree / path
            except KeyError:
                return None
            if item.type != "blob":
                return None
            _check_size(item.size)
            return item.data_stream.read()

    def blob_shas(self, sha: str, folder: str = "") -> dict[str, str]:
        """path -> blob sha, without reading contents (cheap: lets callers reuse parsed files)."""
        with self._lock:
            tree = self.repo.commit(sha).tree
            if folder:
                try:
                    tree = tree / folder
                except KeyError:
                    return {}
            return {item.path: item.hexsha for item in tree.traverse() if item.type == "blob"}

    def blob_sizes(self, sha: str, folder: str = "") -> dict[str, int]:
        """path -> size of every blob under `folder`, from one `git ls-tree -l`: nothing is loaded."""
        with self._lock:
            out = self.repo.git.ls_tree("-r", "-l", "-z", sha, *(["--", folder] if folder else []))
        sizes = {}
        for entry in out.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if len(parts) == 4 and parts[1] == "blob":
                sizes[path] = int(parts[3])
        return sizes

    def read_blob(self, blob_sha: str, size: int | None = None) -> bytes:
        """A blob's content; TooLarge over limits.file_bytes, told from its `size` (as blob_sizes gave
        it) or the object's header before anything is loaded (a 50 MB YAML file would otherwise be
        read and parsed on every pass)."""
        with self._lock:
            binsha = bytes.fromhex(blob_sha)
            _check_size(self.repo.odb.info(binsha).size if size is None else size)
            return self.repo.odb.stream(binsha).read()

    def default_branch(self) -> str | None:
        """The remote's HEAD branch, when the remote says (local and most hosted remotes do)."""
        with self._lock:
            try:
                out = self.repo.git.ls_remote("--symref", "origin", "HEAD", env=self._git_env(),
                                              kill_after_timeout=FETCH_TIMEOUT)
            except GitCommandError:
                return None
        match = re.search(r"ref:\s+refs/heads/(\S+)\s+HEAD", out)
        return match.group(1) if match else None

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` names: a fetched branch, a commit already here, or else any ref or sha the
        remote has (HEAD of a CI checkout, refs/pull/1/head, a tag), fetched for the occasion."""
        if not ref or ref.startswith("-") or ":" in ref or len(ref) > 256 or any(c.isspace() for c in ref):
            return None  # never an option to git, never a refspec of the caller's making
        found = self.head(ref)
        if found is None and re.fullmatch(r"[0-9a-fA-F]{7,64}", ref) and self.has_commit(ref):
            found = self.repo.commit(ref).hexsha
        if found is not None:
            return found
        with self._lock:
            try:
                # --update-shallow: a CI checkout is often shallow, and so is our copy of it.
                self.repo.git.fetch("origin", "--no-tags", "--update-shallow", f"+{ref}:refs/reconciler/resolved",
                                    env=self._git_env(), kill_after_timeout=FETCH_TIMEOUT)
                return self.repo.commit("refs/reconciler/resolved").hexsha
            except (GitCommandError, BadName, ValueError):
                return None

    # ---- promotion -------------------------------------------------------------------------------
    def is_ancestor(self, older: str, newer: str) -> bool:
        with self._lock:
            return self.repo.is_ancestor(older, newer)

    def push(self, sha: str, branch: str) -> None:
        """Point the remote's `branch` at `sha`; git itself refuses a non-fast-forward."""
        with self._lock:
            try:
                self.repo.git.push("origin", f"{sha}:refs/heads/{branch}", env=self._git_env(),
                                   kill_after_timeout=FETCH_TIMEOUT)
            except GitCommandError as exc:
                raise SourceError(f"push to {self.display_url} {branch} failed: "
                                  f"{_first_error_line(str(exc.stderr or '')) or exc}") from None

    def tree_of(self, sha: str) -> str:
        with self._lock:
            return self.repo.commit(sha).tree.hexsha

    def commit_tree(self, tree_of: str, parent: str, message: str) -> str:
        """A new commit whose tree is `tree_of`'s and whose only parent is `parent` (not pushed).

        The author is whoever git's configuration names; without one, "reconciler", so a machine
        with no git identity can still roll back (the message names what was done).
        """
        env = self._git_env()
        with self._lock:
            try:
                self.repo.git.var("GIT_AUTHOR_IDENT")
                self.repo.git.var("GIT_COMMITTER_IDENT")
            except GitCommandError:
                env.update({f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
                            for what, value in (("NAME", "reconciler"), ("EMAIL", "reconciler@localhost"))})
            try:
                return self.repo.git.commit_tree(f"{tree_of}^{{tree}}", "-p", parent, "-m", message, env=env).strip()
            except GitCommandError as exc:
                raise SourceError(f"cannot create the commit: {_first_error_line(str(exc.stderr or '')) or exc}") \
                    from None

    def close(self) -> None:
        with self._lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None


def _check_size(size: int) -> None:
    limit = current_limits().file_bytes
    if size > limit:
        raise too_large("the file", size, limit, "file_bytes")


def _first_error_line(stderr: str) -> str:
    lines = [line.strip().removeprefix("stderr: ").strip("'").strip() for line in stderr.splitlines()]
    for line in lines:
        if line.startswith(("fatal:", "error:", "remote:", "!")):
            return line
    return next((line for line in lines if line), "")


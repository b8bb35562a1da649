"""Git credentials that never reach a file in clear nor a process's arguments.

Where they come from: the userinfo of an http(s) repository URL (`https://bot:TOKEN@host/repo.git`,
stripped here before the URL goes anywhere near git), else RECONCILER_GIT_USERNAME and
RECONCILER_GIT_PASSWORD (or RECONCILER_GIT_PASSWORD_FILE, e.g. a mounted Kubernetes Secret).

How git gets them: each git command that talks to the remote runs with GIT_ASKPASS pointing at a
small shell script (ASKPASS below, written to the data directory; it holds no secret) and with the
username and password in that git process's environment only. git runs the script for its
"Username for ..." and "Password for ..." prompts; the script prints them with the shell's builtin
printf, so they are never an argument of any process. Credential helpers from git's config files
or the environment are switched off for these commands (one more GIT_CONFIG_COUNT entry), so ours are
the ones used and no `store` helper writes them to ~/.git-credentials after a successful fetch.
Without credentials of ours, configured helpers work as usual (the Helm chart sets one this way).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

USERNAME_ENV = "RECONCILER_GIT_USERNAME"
PASSWORD_ENV = "RECONCILER_GIT_PASSWORD"
ASKPASS_NAME = "askpass.sh"
ASKPASS = f"""#!/bin/sh
# GIT_ASKPASS of reconciler: answers git's prompts from the environment reconciler gave this git
# command. No secret is stored here; printf is a shell builtin, so none is ever a process argument.
case "$1" in
  Username*) printf '%s\\n' "${USERNAME_ENV}" ;;
  Password*) printf '%s\\n' "${PASSWORD_ENV}" ;;
  *) exit 1 ;;
esac
"""


class CredentialsError(ValueError):
    """A credentials setting that cannot be used; the message says which."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password, even in a traceback's locals
        return f"Credentials(username={self.username!r}, password='***')"


def split_url(url: str) -> tuple[str, Credentials | None]:
    """An http(s) URL without its userinfo, and the credentials that were in it (None if none).
    Other URLs are returned as they are: in ssh://git@host/... the user is not a secret."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), Credentials(unquote(username), unquote(password))


def from_environment(environ: Mapping[str, str] | None = None) -> Credentials | None:
    """RECONCILER_GIT_USERNAME and RECONCILER_GIT_PASSWORD (or _FILE); None when no password is set."""
    environ = os.environ if environ is None else environ
    password, path = environ.get(PASSWORD_ENV), environ.get(f"{PASSWORD_ENV}_FILE")
    if password and path:
        raise CredentialsError(f"set {PASSWORD_ENV} or {PASSWORD_ENV}_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                password = f.read().strip()
        except OSError as exc:
            raise CredentialsError(f"{PASSWORD_ENV}_FILE={path}: {exc.strerror or exc}") from None
        if not password:
            raise CredentialsError(f"{PASSWORD_ENV}_FILE={path} is empty")
    if not password:
        return None
    # Hosts that take a token as the password accept any username; GitHub documents this one.
    return Credentials(environ.get(USERNAME_ENV) or "x-access-token", password)


def git_environment(credentials: Credentials | None, folder: Path,
                    environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a git command that may talk to the remote (to add to `environ`).

    Without credentials, any prompt gets an empty answer at once: a daemon has no terminal, and a
    remote that wants a password must fail fast rather than hang."""
    env = {"GIT_TERMINAL_PROMPT": "0", "SSH_ASKPASS": "true"}
    if credentials is None:
        return {**env, "GIT_ASKPASS": "true"}
    environ = os.environ if environ is None else environ
    count = environ.get("GIT_CONFIG_COUNT", "0")
    n = int(count) if count.isdigit() else 0
    # An empty credential.helper, last in the list, clears every helper configured before it.
    return {**env, "GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": "credential.helper",
            f"GIT_CONFIG_VALUE_{n}": "", "GIT_ASKPASS": str(askpass_script(folder)),
            USERNAME_ENV: credentials.username, PASSWORD_ENV: credentials.password}


def askpass_script(folder: Path) -> Path:
    """The askpass script in `folder` (mode 0700), written once and rewritten if it was changed."""
    path = Path(folder) / ASKPASS_NAME
    try:
        if path.read_text() == ASKPASS and (path.stat().st_mode & 0o777) == 0o700:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ASKPASS_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w") as f:
        f.write(ASKPASS)
    os.chmod(tmp, 0o700)
    os.replace(tmp, path)
    return path

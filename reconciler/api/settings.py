"""Where the API listens and who may call it, read from flags and the environment.

Rules (docs/API.md says the same to users):
- RECONCILER_API_TOKEN, or a file named by RECONCILER_API_TOKEN_FILE: a bearer token that every
  mutating call needs, and every read too unless RECONCILER_API_OPEN_READS=true.
- No token at all: the API serves loopback addresses only, and there everyone may do everything
  (like a local Docker socket); it refuses to start on any other address.
- A tokens file (`--api-tokens FILE`, RECONCILER_API_TOKENS, config key apiTokens; see tokens.py):
  more tokens, each limited to some namespaces and verbs. With it, the API counts as having a token.
- RECONCILER_WEBHOOK_SECRET(_FILE): the push webhooks' shared secret; without it they answer 404.

No web stack here: `reconciler up` validates this before FastAPI is imported.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import tokens as token_book

DEFAULT_LISTEN = "127.0.0.1:8080"
MAX_BODY = 1 << 20  # bytes, for API calls and webhooks alike
DISABLED = ("off", "none", "no", "false", "0")


class ApiConfigError(ValueError):
    """A setting that stops the API from starting; the message says what to change."""


@dataclass
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    open_reads: bool = False
    webhook_secret: str | None = None
    max_body: int = MAX_BODY
    explicit: bool = False  # the user chose the address: failing to bind it is fatal
    scoped: list[token_book.Token] = field(default_factory=list)  # from the tokens file

    @property
    def tokens(self) -> list[token_book.Token]:
        """Every accepted token: RECONCILER_API_TOKEN (all namespaces, read and write) and the scoped ones."""
        legacy = [token_book.Token(token_book.digest(self.token), token_book.EVERYTHING)] if self.token else []
        return legacy + self.scoped

    @property
    def authenticated(self) -> bool:
        return self.token is not None or bool(self.scoped)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def check(self) -> None:
        if not self.authenticated and not self.loopback:
            raise ApiConfigError(
                f"refusing to serve the API on {self.host}:{self.port} without a token: set RECONCILER_API_TOKEN "
                "(or RECONCILER_API_TOKEN_FILE, or a tokens file with --api-tokens), or listen on a loopback "
                "address such as 127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT` or just `PORT` (on 127.0.0.1)."""
    text = text.strip()
    if text.isdigit():
        host, port = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ApiConfigError(f"--listen {text}: expected [IPV6]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ApiConfigError(f"--listen {text}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ApiConfigError(f"--listen {text}: port must be a number from 0 to 65535")
    return host, int(port)


def read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """NAME, or the content of the file NAME_FILE (surrounding whitespace dropped); None if unset."""
    value, path = environ.get(name), environ.get(f"{name}_FILE")
    if value and path:
        raise ApiConfigError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read()
        except OSError as exc:
            raise ApiConfigError(f"{name}_FILE={path}: {exc.strerror or exc}") from None
    value = (value or "").strip()
    if path and not value:
        raise ApiConfigError(f"{name}_FILE={path} is empty")
    return value or None


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def api_settings(listen: str | None, environ: Mapping[str, str] | None = None,
                 tokens_file: str | None = None) -> ApiSettings | None:
    """Settings for `reconciler up --listen` (None: the default address); None when the API is off.
    `tokens_file`: `--api-tokens`, else RECONCILER_API_TOKENS."""
    environ = os.environ if environ is None else environ
    tokens_file = tokens_file or environ.get("RECONCILER_API_TOKENS") or None
    explicit = listen is not None
    listen = DEFAULT_LISTEN if listen is None else listen
    if listen.strip().lower() in DISABLED:
        return None
    host, port = parse_listen(listen)
    settings = ApiSettings(host=host, port=port, token=read_secret(environ, "RECONCILER_API_TOKEN"),
                           open_reads=truthy(environ.get("RECONCILER_API_OPEN_READS")),
                           webhook_secret=read_secret(environ, "RECONCILER_WEBHOOK_SECRET"), explicit=explicit)
    if tokens_file:
        try:
            settings.scoped = token_book.load(tokens_file)
        except token_book.TokensFileError as exc:
            raise ApiConfigError(str(exc)) from None
    settings.check()
    return settings

"""Scoped API tokens: a file maps each token, stored as its SHA-256, to the namespaces and verbs it may use.

    tokens:
    - name: dev-team                  # shown in logs and 403 messages, never the token
      sha256: 5e88489...              # printf %s "$TOKEN" | sha256sum
      namespaces: [team-dev]          # or "*" for every namespace
      verbs: [read, write]            # read: GET; write: everything else

YAML or JSON (`--api-tokens FILE`, RECONCILER_API_TOKENS, config key apiTokens). Only digests are kept,
so the file reveals no token. The single RECONCILER_API_TOKEN stays an all-namespaces read-write token.
A presented token is hashed once and compared with every entry in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

VERBS = ("read", "write")
_HEX = re.compile(r"[0-9a-f]{64}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MAX_TOKENS = 1000


class TokensFileError(ValueError):
    """The tokens file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Grant:
    """What one token may do: `namespaces` None means every namespace (and cluster-scoped objects)."""

    name: str
    namespaces: frozenset[str] | None
    verbs: frozenset[str]

    @property
    def everywhere(self) -> bool:
        return self.namespaces is None

    def sees(self, namespace: str | None) -> bool:
        """May act in `namespace` (None or "": cluster-scoped or all namespaces, only for '*' grants)."""
        return self.namespaces is None or (bool(namespace) and namespace in self.namespaces)

    def may(self, verb: str) -> bool:
        return verb in self.verbs


EVERYTHING = Grant("full access", None, frozenset(VERBS))


@dataclass(frozen=True)
class Token:
    digest: bytes  # SHA-256 of the token
    grant: Grant


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def find(tokens: Iterable[Token], presented: str) -> Grant | None:
    """The grant of the presented token, or None. Every entry is compared, in constant time each."""
    wanted = digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(token.digest, wanted) and found is None:
            found = token.grant
    return found


def load(path: str) -> list[Token]:
    import yaml  # the tokens file is YAML (or JSON, which YAML reads)

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise TokensFileError(f"{path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise TokensFileError(f"{path}: not valid YAML or JSON: {exc}") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TokensFileError(f"{path}: expected `tokens:`, a non-empty list of entries "
                              "{name, sha256, namespaces, verbs}")
    if len(entries) > MAX_TOKENS:
        raise TokensFileError(f"{path}: {len(entries)} tokens; at most {MAX_TOKENS}")
    tokens, names = [], set()
    for i, entry in enumerate(entries):
        token = _entry(path, i, entry)
        if token.grant.name in names:
            raise TokensFileError(f"{path}: tokens[{i}].name: {token.grant.name!r} is used twice")
        if any(t.digest == token.digest for t in tokens):
            raise TokensFileError(f"{path}: tokens[{i}].sha256: the same token is listed twice")
        names.add(token.grant.name)
        tokens.append(token)
    return tokens


def _entry(path: str, i: int, entry: object) -> Token:
    where = f"{path}: tokens[{i}]"
    if not isinstance(entry, dict):
        raise TokensFileError(f"{where}: expected a mapping with name, sha256, namespaces and verbs")
    unknown = sorted(set(entry) - {"name", "sha256", "namespaces", "verbs"})
    if unknown:
        raise TokensFileError(f"{where}: unknown field {unknown[0]!r} (a token is stored as its sha256, "
                              "never in clear)" if unknown[0] == "token" else f"{where}: unknown field {unknown[0]!r}")
    name, sha = entry.get("name"), entry.get("sha256")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise TokensFileError(f"{where}.name: a non-empty string of at most 100 characters is required")
    if not isinstance(sha, str) or not _HEX.fullmatch(sha.strip().lower()):
        raise TokensFileError(f"{where}.sha256: the token's SHA-256 as 64 hex characters is required "
                              "(printf %s \"$TOKEN\" | sha256sum)")
    namespaces = entry.get("namespaces")
    if namespaces == "*" or namespaces == ["*"]:
        allowed = None
    elif isinstance(namespaces, list) and namespaces and all(isinstance(n, str) for n in namespaces):
        bad = [n for n in namespaces if not _NAMESPACE.fullmatch(n)]
        if bad:
            raise TokensFileError(f"{where}.namespaces: {bad[0]!r} is not a namespace (a DNS-1123 label)")
        allowed = frozenset(namespaces)
    else:
        raise TokensFileError(f"{where}.namespaces: a non-empty list of namespaces, or \"*\", is required")
    verbs = entry.get("verbs")
    if not isinstance(verbs, list) or not verbs or any(v not in VERBS for v in verbs):
        raise TokensFileError(f"{where}.verbs: a non-empty list of {' and '.join(VERBS)} is required")
    return Token(bytes.fromhex(sha.strip().lower()), Grant(name.strip(), allowed, frozenset(verbs)))

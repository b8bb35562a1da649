"""The daemon's logs: JSON lines (one object per record, what Datadog and Loki parse) or plain
text for a terminal; secrets masked in both."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

# Fields a record may carry (logging's `extra=`) that become top-level keys of the JSON line.
CONTEXT_FIELDS = ("environment", "namespace", "workflow", "node", "commit", "cron", "branch")
SECRET_ENV = ("RECONCILER_API_TOKEN", "RECONCILER_WEBHOOK_SECRET", "RECONCILER_GIT_PASSWORD", "GIT_PASSWORD",
              "GIT_TOKEN")
_PATTERNS = [
    (re.compile(r"(://)[^/@\s:]+:[^/@\s]+@"), r"\1***:***@"),                 # credentials in URLs
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)[^\s,;\"']+"), r"\1***"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20,})\b"), "***"),
]


def mask(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secret_values():
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _secret_values() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_ENV]
    for name in SECRET_ENV:
        path = os.environ.get(name + "_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    values.append(f.read().strip())
            except OSError:
                pass
    return [v for v in values if v]


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets = _secret_values()

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage(), self.secrets),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = mask(str(value), self.secrets)
        if record.exc_info:
            entry["error"] = mask(self.formatException(record.exc_info), self.secrets)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = _secret_values()

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{f}={getattr(record, f)}" for f in CONTEXT_FIELDS if getattr(record, f, None))
        text = super().format(record) + (f" [{context}]" if context else "")
        return mask(text, self.secrets)


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """`auto`: text on a terminal, JSON lines otherwise (a container, a file, a log shipper)."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler says "Running job ..." at INFO for every housekeeping round: our own fire lines
    # already say what happened.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))

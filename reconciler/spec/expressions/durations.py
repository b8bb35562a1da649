"""Argo duration strings (suspend.duration, retryStrategy.backoff, timeout) as seconds.

Argo's ParseStringToDuration: a plain integer string means seconds, anything else must be a Go
time.ParseDuration string ("1h30m", "500ms", "1.5h").
"""

from __future__ import annotations

import math
import re

from .errors import ExpressionError, one_line

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_INT = re.compile(r"[+-]?[0-9]+")
_COMPONENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_duration(value: str | float) -> float:
    """Return the duration in seconds; ExpressionError when Argo would reject it."""
    if isinstance(value, bool):
        raise ExpressionError(f"invalid duration {value!r}: not a number or duration string")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExpressionError(f"invalid duration {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ExpressionError(f"invalid duration {value!r}: not a number or duration string")
    if _GO_INT.fullmatch(value):
        return float(int(value))
    return _parse_go_duration(value)


def _parse_go_duration(text: str) -> float:
    def bad(why: str) -> ExpressionError:
        return ExpressionError(f'invalid duration "{one_line(text)}": {why}', text=text)

    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise bad("empty")
    total = 0.0
    while rest:
        m = _COMPONENT.match(rest)
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise bad("expected a number")
        if not unit:
            raise bad("missing unit (use ns, us, ms, s, m or h)")
        if unit not in _UNITS:
            # the unit run may swallow the next component's leading characters, e.g. "1sx"
            raise bad(f'unknown unit "{unit}"')
        number = float(f"{whole or '0'}.{frac or '0'}")
        total += number * _UNITS[unit]
        rest = rest[m.end():]
    return sign * total

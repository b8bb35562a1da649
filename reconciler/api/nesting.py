"""JSON bodies parsed without recursion trouble: the nesting depth is measured by a flat scan of the
raw bytes before json.loads (whose decoder recurses once per level and raises RecursionError, a 500,
on a body such as 100,000 '[') ever sees them.

The scan drops string literals (brackets inside them do not count), keeps only the bracket bytes and
follows the running sum of +1/-1 steps until it passes the limit; it runs in C-implemented builtins
only, a body with fewer brackets than the limit is not scanned at all, and no input makes it
quadratic: an unterminated string simply runs to the end. Worst case about 0.1 s per MiB.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64  # arrays and objects inside each other; a Workflow needs about 12

# A string literal, or an unterminated one up to the end: `*+` never backtracks and the closing quote
# is optional, so the scan from each opening quote is tried once.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class TooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


def exceeds(raw: bytes, max_depth: int) -> bool:
    """Whether a JSON text nests arrays and objects more than `max_depth` deep."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # the usual body: too few brackets to nest that deep, whatever they are
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    # The first running depth over the limit, found by C builtins only; stops there.
    return next(filter(max_depth.__lt__, accumulate(map(_STEP.__getitem__, brackets))), None) is not None


def loads(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads after the depth check: TooDeep (a ValueError) instead of a RecursionError."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if exceeds(data, max_depth):
        raise TooDeep(f"JSON nested more than {max_depth} levels deep (arrays and objects); not accepted")
    return json.loads(data)

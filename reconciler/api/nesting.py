"""JSON bodies parsed without recursion trouble: the nesting depth is measured by a flat scan of the
raw bytes before json.loads (whose decoder recurses once per level and raises RecursionError, a 500,
on a body such as 100,000 '[') ever sees them.

The scan drops string literals (brackets inside them do not count), keeps only the bracket bytes and
takes the running maximum of +1/-1 steps; everything runs in C-implemented builtins, so a 1 MiB body
costs a few milliseconds and no input makes it quadratic: an unterminated string simply runs to the end.
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


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads after the depth check: TooDeep (a ValueError) instead of a RecursionError."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    found = depth(data)
    if found > max_depth:
        raise TooDeep(f"JSON nested {found} levels deep; at most {max_depth} are accepted")
    return json.loads(data)

"""JSON merge patch (RFC 7386), the only patch flavour the store speaks.

Kept free of store details so sync/ can also use it to compute the patch between desired and live
objects.
"""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any, *, share_patch: bool = False) -> Any:
    """Return `target` with `patch` applied; neither argument is modified.

    The result may share subtrees that the patch does not touch with `target` (copying them would make
    a small patch cost as much as the whole document). A None value deletes the key; a non-object
    patch value (list, scalar) replaces the target value wholesale, as RFC 7386 says. A caller that
    owns `patch` (a fresh copy) may pass share_patch=True to let the result share its values too.
    """
    if not isinstance(patch, dict):
        return patch if share_patch else copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, share_patch=share_patch)
    return result


def make_merge_patch(old: Any, new: Any) -> Any:
    """Return the smallest merge patch that turns `old` into `new` (so merge_patch(old, p) == new).

    RFC 7386 cannot express a None value inside an object (None means delete), so `new` must not
    contain any; ValueError otherwise rather than producing a patch that silently drops keys.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        _reject_nulls(new)
        return copy.deepcopy(new)
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            _reject_nulls(value)
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            if isinstance(value, dict) and isinstance(old[key], dict):
                patch[key] = make_merge_patch(old[key], value)
            else:
                _reject_nulls(value)
                patch[key] = copy.deepcopy(value)
    return patch


def _reject_nulls(value: Any) -> None:
    if value is None:
        raise ValueError("a JSON merge patch cannot set a value to null")
    if isinstance(value, dict):
        for item in value.values():
            _reject_nulls(item)

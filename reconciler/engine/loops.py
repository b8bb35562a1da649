"""withItems / withParam / withSequence: one call becomes one child per item."""

from __future__ import annotations

import json
from typing import Any

from reconciler.limits import current as current_limits
from reconciler.limits import setting
from reconciler.spec.expressions.templating import substitute


class LoopError(Exception):
    pass


def has_loop(call: dict) -> bool:
    return "withItems" in call or "withParam" in call or "withSequence" in call


def _check_count(what: str, count: int) -> None:
    limit = current_limits().loop_items
    if count > limit:
        raise LoopError(f"{what} makes {count} items, over the limit of {limit} ({setting('loop_items')})")


def expand_items(call: dict, scope: dict, nodes: int = 0) -> list[Any]:
    """The loop's items; LoopError when there are too many, or when they would bring the workflow
    (which has `nodes` nodes so far) over limits.workflow_nodes."""
    items = _items(call, scope)
    limit = current_limits().workflow_nodes
    if nodes + len(items) > limit:
        raise LoopError(f"{len(items)} more items would give the workflow {nodes + len(items)} nodes, over the "
                        f"limit of {limit} ({setting('workflow_nodes')})")
    return items


def _items(call: dict, scope: dict) -> list[Any]:
    if "withItems" in call:
        _check_count("withItems", len(call["withItems"]))
        return [_substitute_item(item, scope) for item in call["withItems"]]
    if "withParam" in call:
        raw = substitute(str(call["withParam"]), scope)
        try:
            items = json.loads(raw)
        except ValueError as exc:
            raise LoopError(f"withParam value could not be parsed as a JSON list: {raw[:200]}") from exc
        if not isinstance(items, list):
            raise LoopError(f"withParam value is not a JSON list: {raw[:200]}")
        _check_count("withParam", len(items))
        return items
    seq = call["withSequence"]
    return _sequence(seq, scope)


def _substitute_item(item: Any, scope: dict) -> Any:
    if isinstance(item, str):
        return substitute(item, scope)
    if isinstance(item, dict):
        return {k: _substitute_item(v, scope) for k, v in item.items()}
    return item


def _sequence(seq: dict, scope: dict) -> list[str]:
    def number(key: str) -> int | None:
        if key not in seq:
            return None
        text = substitute(str(seq[key]), scope)
        try:
            return int(text)
        except ValueError as exc:
            raise LoopError(f"withSequence.{key} is not an integer: {text!r}") from exc

    count, start, end = number("count"), number("start"), number("end")
    if count is not None and end is not None:
        raise LoopError("withSequence: only one of count or end can be defined")
    start = start or 0
    if count is not None:
        values = range(start, start + count)
    elif end is not None:
        values = range(start, end + 1) if end >= start else range(start, end - 1, -1)
    else:
        raise LoopError("withSequence: either count or end must be defined")
    _check_count("withSequence", len(values))  # before any list of them is made
    fmt = seq.get("format")
    if fmt:
        try:
            return [fmt % v for v in values]
        except (TypeError, ValueError) as exc:
            raise LoopError(f"withSequence.format {fmt!r}: {exc}") from exc
    return [str(v) for v in values]


def item_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    if isinstance(item, (dict, list)):
        return json.dumps(item, separators=(",", ":"), sort_keys=isinstance(item, dict))
    return str(item)


def item_label(item: Any) -> str:
    """How Argo names an iteration: `step(0:foo)`, maps as `k:v,k:v`."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{item_text(v)}" for k, v in sorted(item.items()))
    return item_text(item)


def item_scope(item: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {"item": item_text(item)}
    if isinstance(item, dict):
        for key, value in item.items():
            scope[f"item.{key}"] = item_text(value)
    return scope

"""The patch flavours the double's API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
strategic merge patch (built-in kinds only; here without list merge keys), and server-side apply with
field ownership in `metadata.managedFields` (FieldsV1: dicts by "f:<key>", lists atomic)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timezone

from reconciler.store.merging import merge_patch

from .errors import bad_request, unsupported

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
_UNOWNED = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"),
            ("metadata", "resourceVersion"), ("metadata", "managedFields")}


def patch(old: dict, content_type: str, body, builtin: bool, invalid: Callable[[str], Exception]) -> dict:
    if content_type == MERGE or (content_type == STRATEGIC and builtin):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        return merge_patch(old, body)
    if content_type == STRATEGIC:
        raise unsupported(f"the body of the request was in an unknown format - accepted media types include: "
                          f"{JSON_PATCH}, {MERGE}, {APPLY}")
    if content_type == JSON_PATCH:
        return json_patch(old, body, invalid)
    raise unsupported(f"the media type {content_type!r} is not one the server accepts for PATCH")


def json_patch(doc: dict, ops, invalid: Callable[[str], Exception]) -> dict:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {op!r}")
        kind, path = op["op"], _pointer(op["path"])
        if kind == "test":
            if _get(doc, path, invalid) != op.get("value"):
                raise invalid(f"testing value {op['path']} failed")
        elif kind == "remove":
            _remove(doc, path, invalid)
        elif kind in ("add", "replace"):
            if kind == "replace":
                _get(doc, path, invalid)
            doc = _add(doc, path, copy.deepcopy(op.get("value")), invalid, replace=kind == "replace")
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_get(doc, source, invalid))
            if kind == "move":
                _remove(doc, source, invalid)
            doc = _add(doc, path, value, invalid, replace=False)
        else:
            raise bad_request(f"unexpected kind of operation {kind!r}")
    return doc


def apply(old: dict, config, manager: str | None, force: bool, conflict: Callable[[str], Exception]) -> dict:
    """Server-side apply of `config` by `manager` onto `old`: merged, fields this manager applied before
    and no longer sends removed (unless another manager owns them), other managers' differing values a
    conflict unless `force`."""
    _check_apply(config, manager)
    sent = _leaves(config)
    owners = _owners(old)
    clashes = sorted(".".join(p) for p in sent if owners.get(p, manager) != manager
                     and _value(old, p) != _value(config, p))
    if clashes and not force:
        raise conflict(f"Apply failed with {len(clashes)} conflict(s): " + "; ".join(
            f'conflict with "{owners[tuple(c.split("."))]}": .{c}' for c in clashes))
    result = _merge_apply(old, config)
    before = {p for p, m in owners.items() if m == manager}
    for path in sorted(before - set(sent), key=len, reverse=True):
        if path not in owners or owners[path] == manager:
            _drop(result, path)
    for path in sent:
        owners[path] = manager
    for path in before - set(sent):
        owners.pop(path, None)
    result.setdefault("metadata", {})["managedFields"] = _managed_fields(owners, old, manager)
    return result


def record_update(old: dict, new: dict, manager: str) -> None:
    """Give `manager` the fields an ordinary write changed (what the real server does for Update)."""
    owners = _owners(old)
    old_leaves, new_leaves = _leaves(old), _leaves(new)
    for path in set(old_leaves) | set(new_leaves):
        if old_leaves.get(path) != new_leaves.get(path):
            if path in new_leaves:
                owners[path] = manager
            else:
                owners.pop(path, None)
    new.setdefault("metadata", {})["managedFields"] = _managed_fields(owners, old, None, update=manager)


# -- field sets ------------------------------------------------------------------------------------


def _leaves(obj, prefix: tuple = ()) -> dict[tuple, object]:
    out: dict[tuple, object] = {}
    if isinstance(obj, dict) and (obj or not prefix):
        for key, value in obj.items():
            path = prefix + (key,)
            if path in _UNOWNED or (len(path) == 1 and path[0] == "status"):
                continue
            out.update(_leaves(value, path))
    elif prefix:
        out[prefix] = obj
    return out


def _owners(obj: dict) -> dict[tuple, str]:
    owners: dict[tuple, str] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        for path in _paths_of(entry.get("fieldsV1") or {}):
            owners[path] = entry.get("manager", "")
    return owners


def _paths_of(fields: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, sub in fields.items():
        if not key.startswith("f:"):
            continue
        path = prefix + (key[2:],)
        out.extend(_paths_of(sub, path) if sub else [path])
    return out


def _managed_fields(owners: dict[tuple, str], old: dict, applier: str | None, update: str | None = None) -> list:
    by_manager: dict[tuple[str, str], dict] = {}
    operations = {e.get("manager"): e.get("operation", "Update")
                  for e in (old.get("metadata") or {}).get("managedFields") or []}
    if applier:
        operations[applier] = "Apply"
    if update:
        operations.setdefault(update, "Update")
    for path, manager in owners.items():
        node = by_manager.setdefault((manager, operations.get(manager, "Update")), {})
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = old.get("apiVersion", "")
    return [{"manager": m, "operation": op, "apiVersion": api, "time": now, "fieldsType": "FieldsV1",
             "fieldsV1": fields} for (m, op), fields in sorted(by_manager.items())]


def _merge_apply(old, config):
    if isinstance(old, dict) and isinstance(config, dict):
        out = dict(old)
        for key, value in config.items():
            out[key] = _merge_apply(old.get(key), value)
        return out
    return copy.deepcopy(config)


def _value(obj, path: tuple):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _drop(obj: dict, path: tuple) -> None:
    for key in path[:-1]:
        obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return
    if isinstance(obj, dict):
        obj.pop(path[-1], None)


def _check_apply(config, manager: str | None) -> None:
    if not manager:
        raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required "
                          "for apply patch")
    if not isinstance(config, dict) or not config.get("apiVersion") or not config.get("kind"):
        raise bad_request("invalid object type: apply patches need apiVersion and kind")


# -- JSON pointers ---------------------------------------------------------------------------------


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise bad_request(f"JSON pointer {text!r} does not start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]


def _parent(doc, path: list[str], invalid):
    node = doc
    for key in path[:-1]:
        node = _step(node, key, invalid)
    return node


def _step(node, key: str, invalid):
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    raise invalid(f"doc is missing path: /{key}")


def _get(doc, path: list[str], invalid):
    node = doc
    for key in path:
        node = _step(node, key, invalid)
    return node


def _remove(doc, path: list[str], invalid) -> None:
    if not path:
        raise invalid("cannot remove the whole document")
    parent = _parent(doc, path, invalid)
    _step(parent, path[-1], invalid)
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        del parent[int(path[-1])]


def _add(doc, path: list[str], value, invalid, *, replace: bool):
    if not path:
        return value
    parent = _parent(doc, path, invalid)
    key = path[-1]
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            if replace:
                parent[int(key)] = value
            else:
                parent.insert(int(key), value)
        else:
            raise invalid(f"add operation does not apply: index {key} out of range")
    else:
        raise invalid(f"doc is missing path: {'/'.join(path)}")
    return doc

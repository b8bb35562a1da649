"""Large workflows on Kubernetes: node status compressed into `status.compressedNodes`, as Argo does.

etcd refuses objects over about 1.5 MiB, and a workflow's `status.nodes` grows with its steps. Argo's
controller answers the same way: when the object would be too large it writes the nodes gzipped and
base64-encoded into `status.compressedNodes` and drops `status.nodes`; readers decompress on read. So
an object written here reads back in Argo's own tools, and Argo's compressed objects read back here.
Only writes of more than `threshold` bytes of nodes are compressed; small workflows stay readable by
kubectl.
"""

from __future__ import annotations

import base64
import gzip
import io
import json

from .errors import StoreError

FIELD = "compressedNodes"
DEFAULT_THRESHOLD = 1024 * 1024  # bytes of JSON in status.nodes before they are compressed
MAX_INFLATED = 256 * 1024 * 1024  # a compressed field may not inflate past this (a gzip bomb)


def compress_nodes(obj: dict, threshold: int) -> dict:
    """`obj` (not modified) with its nodes compressed if their JSON exceeds `threshold` bytes."""
    status = obj.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("nodes"), dict):
        return obj
    raw = json.dumps(status["nodes"], separators=(",", ":")).encode()
    if len(raw) <= threshold:
        return obj
    packed = base64.b64encode(gzip.compress(raw, compresslevel=6)).decode("ascii")
    new_status = {k: v for k, v in status.items() if k != "nodes"}
    new_status[FIELD] = packed
    return {**obj, "status": new_status}


def inflate_nodes(obj: dict) -> dict:
    """`obj` with `status.compressedNodes` turned back into `status.nodes` (modified in place)."""
    status = obj.get("status")
    if not isinstance(status, dict) or FIELD not in status:
        return obj
    packed = status.pop(FIELD)
    name = (obj.get("metadata") or {}).get("name")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(base64.b64decode(packed, validate=True))) as f:
            raw = f.read(MAX_INFLATED + 1)
        if len(raw) > MAX_INFLATED:
            raise StoreError(f"workflow {name}: status.{FIELD} inflates past {MAX_INFLATED} bytes")
        nodes = json.loads(raw)
    except (ValueError, OSError, EOFError) as exc:
        raise StoreError(f"workflow {name}: status.{FIELD} is not gzipped JSON in base64: {exc}") from None
    if not isinstance(nodes, dict):
        raise StoreError(f"workflow {name}: status.{FIELD} does not hold a map of nodes")
    status["nodes"] = nodes
    return obj


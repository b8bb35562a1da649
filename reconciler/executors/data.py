"""`data` templates (Argo's workflow/data/data.go): list the files of an artifact location, then
run each transformation expression over `data`; the JSON of the result is `outputs.result`.

Locally the only source is a key-only artifact (`s3`/`gcs`/`oss` with just `key`), read from the
local repository within the workflow's namespace, as key-only input artifacts are (engine/scope.py).
Keys are returned relative to the namespace, so `{{item}}` can be passed back as such a key.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.artifacts.base import ArtifactRepository, key_only
from reconciler.spec.expressions.expr import evaluate

MAX_PATHS = 10_000


class DataError(Exception):
    pass


def process(spec: dict, namespace: str, artifacts: ArtifactRepository) -> str:
    source = (spec.get("source") or {}).get("artifactPaths")
    if not isinstance(source, dict):
        raise DataError("no valid source is used for data template")
    key = key_only(source)
    if key is None:
        raise DataError("data source artifactPaths: the local executor lists only key-only artifacts "
                        "(s3, gcs or oss with just `key`), in its own repository")
    prefix = f"{namespace}/{key.strip('/')}" if key.strip("/") else namespace
    try:
        keys = artifacts.list_keys(prefix, MAX_PATHS)
    except (ValueError, NotImplementedError) as exc:
        raise DataError(f"unable to source artifact paths: {exc}") from None
    data: Any = [k[len(namespace) + 1:] for k in keys]
    for i, step in enumerate(spec.get("transformation") or []):
        expression = (step or {}).get("expression")
        if expression:
            try:
                data = evaluate(str(expression), {"data": data})
            except Exception as exc:  # noqa: BLE001 - any evaluation failure is the step's error
                raise DataError(f"error processing data step {i}: {exc}") from None
    return json.dumps(data, separators=(",", ":"))

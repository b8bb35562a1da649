"""The web UI (static files built from reconciler/api/ui_src, shipped as package data under ui/) at
/ui/, `/` sending there, and artifact downloads at Argo's path, which the UI links to.

The UI's files hold no data: every call it makes goes to the API with the token the person typed into
its login page (kept in the browser's sessionStorage, sent as a bearer header, never in a URL).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from reconciler import operations
from reconciler.artifacts import LocalArtifactRepository
from reconciler.config import artifacts_path

from .auth import require_read
from .common import ApiError, check_name, check_namespace, state_of

UI_DIR = Path(__file__).with_name("ui")
# The UI's own scripts and styles only: no inline script, no other origin, no framing by other sites.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_NODE_ID = 300

router = APIRouter(tags=["artifacts"])


class _UiFiles(StaticFiles):
    async def get_response(self, path: str, scope: dict) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(UI_HEADERS)
        if path in ("", ".", "index.html"):
            response.headers["Cache-Control"] = "no-cache"  # assets are content-hashed; the page is not
        return response


def mount_ui(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    def ui_no_slash() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    if (UI_DIR / "index.html").is_file():
        app.mount("/ui", _UiFiles(directory=UI_DIR, html=True), name="ui")


@router.get("/artifact-files/{namespace}/workflows/{name}/{node_id}/outputs/{artifact}",
            dependencies=[Depends(require_read)], summary="Download a node's output artifact (Argo's path)")
def download_artifact(request: Request, namespace: str, name: str, node_id: str, artifact: str) -> Response:
    check_namespace(namespace)
    check_name(name)
    if len(node_id) > MAX_NODE_ID or len(artifact) > MAX_NODE_ID:
        raise ApiError(400, "node id or artifact name too long")
    state = state_of(request)
    wf = operations.get_workflow(state.store, namespace, name)
    node = ((wf.get("status") or {}).get("nodes") or {}).get(node_id)
    if node is None:
        raise ApiError(404, f"workflow {name} has no node {node_id!r}")
    found = [a for a in (node.get("outputs") or {}).get("artifacts") or [] if a.get("name") == artifact]
    if not found or not isinstance(found[0].get("key"), str):
        raise ApiError(404, f"node {node_id} has no saved output artifact {artifact!r}")
    key = found[0]["key"]
    if not key.startswith(f"{namespace}/{name}/"):  # a status that names another workflow's files
        raise ApiError(404, f"artifact {artifact!r} is not stored under this workflow")
    try:
        path = LocalArtifactRepository(artifacts_path(state.home)).path(key)
    except ValueError as exc:
        raise ApiError(404, str(exc)) from None
    if os.path.islink(path) or not path.is_file():
        raise ApiError(404, f"artifact {artifact!r} is not a stored file (a directory saved without an archive "
                            "cannot be downloaded)")
    filename = artifact + (".tgz" if found[0].get("archive", "tar") == "tar" else "")
    return FileResponse(path, media_type="application/octet-stream", filename=filename,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

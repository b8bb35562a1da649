"""The double's HTTP side: discovery, CRUD, patch, delete, list with label selectors and paging, and
watch (resume from a resourceVersion, bookmarks, 410 when history is gone), on a real socket, with the
response shapes the official client expects. Faults (429, 500, dropped connections) can be queued."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from .errors import ApiError, bad_request
from .state import ClusterState, ResourceType

_SELECTOR = re.compile(r"^\s*(!?)([A-Za-z0-9._/-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")
MAX_BODY = 3 * 1024 * 1024  # the real server's request limit is 3 MiB; etcd's object limit is ~1.5 MiB
MAX_OBJECT = 1536 * 1024


class ApiServerDouble:
    """A Kubernetes API server on 127.0.0.1 for tests: `url`, `kubeconfig(path)`, `api_client()`."""

    def __init__(self, *, history: int = 1000, bookmark_interval: float = 1.0, token: str = "double-token") -> None:
        self.state = ClusterState(history)
        self.bookmark_interval = bookmark_interval
        self.token = token
        self.faults: list[tuple[str | None, int | str]] = []
        self.requests: list[tuple[str, str, str]] = []   # (method, path with query, content type)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="kube-double")
        self._thread.start()
        self.stopping = threading.Event()
        self.watch_generation = 0  # end_watches() bumps it: every open watch ends, as on an API server restart

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, times: int, status: int | str, method: str | None = None) -> None:
        """Answer the next `times` requests (of `method`) with HTTP `status`, or "drop" the connection."""
        with self._lock:
            self.faults.extend([(method, status)] * times)

    def take_fault(self, method: str) -> int | str | None:
        with self._lock:
            for i, (wanted, status) in enumerate(self.faults):
                if wanted in (None, method):
                    del self.faults[i]
                    return status
        return None

    def end_watches(self) -> None:
        """End every open watch stream cleanly (clients resume from their last resourceVersion)."""
        with self.state.changed:
            self.watch_generation += 1
            self.state.changed.notify_all()

    def kubeconfig(self, path: Path, context: str = "double") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "double", "user": "tester"}}],
        }))
        return path

    def api_client(self):
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": self.token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    def close(self) -> None:
        self.stopping.set()
        with self.state.changed:
            self.state.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(double: ApiServerDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.double = double
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    double: ApiServerDouble

    def log_message(self, *args) -> None:  # the test output has no use for access logs
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this the second waits for a delayed ACK (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- dispatch --------------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self.double.requests.append((method, self.path, content_type))
        try:
            body = self._body(method, content_type)
            fault = self.double.take_fault(method)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault is not None:
                raise ApiError(int(fault), "TooManyRequests" if fault == 429 else "InternalError",
                               "injected fault")
            if self.headers.get("Authorization") != f"Bearer {self.double.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            status, answer = self._route(method, url.path, query, body, content_type)
        except ApiError as exc:
            status, answer = exc.code, exc.body
        if answer is not None:
            self._send_json(status, answer)

    def _body(self, method: str, content_type: str):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        raw = self.rfile.read(length) if length else b""
        if not raw or method in ("GET",):
            return None
        try:
            return yaml.safe_load(raw) if content_type == "application/apply-patch+yaml" else json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from None

    def _route(self, method: str, path: str, query: dict, body, content_type: str):
        parts = [p for p in path.split("/") if p]
        state = self.double.state
        if path == "/version":
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-double", "platform": "linux/amd64"}
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if parts == ["apis"]:
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                       "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                      for g, vs in sorted(state.groups().items()) if g]
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return 200, self._discovery(group, version)
        rt, ns, name, sub = self._resolve(group, version, rest)
        return self._verb(method, rt, ns, name, sub, query, body, content_type)

    def _discovery(self, group: str, version: str) -> dict:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        resources = []
        for (g, v, _), rt in sorted(self.double.state.types.items()):
            if (g, v) != (group, version):
                continue
            resources.append({"name": rt.plural, "singularName": rt.kind.lower(), "namespaced": rt.namespaced,
                              "kind": rt.kind, "verbs": verbs, "shortNames": rt.short_names,
                              "storageVersionHash": ""})
            if rt.status_subresource:
                resources.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": rt.kind, "verbs": ["get", "patch", "update"]})
        if not resources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group
                else version, "resources": resources}

    def _resolve(self, group: str, version: str, rest: list[str]):
        state = self.double.state
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and state.type_of(group, version, rest[2]):
            ns, rest = rest[1], rest[2:]
        rt = state.type_of(group, version, rest[0])
        if rt is None or len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and ns is None and len(rest) > 1:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and not rt.status_subresource:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt, ns, name, sub

    def _verb(self, method: str, rt: ResourceType, ns, name, sub, query: dict, body, content_type: str):
        state = self.double.state
        manager = query.get("fieldManager")
        if body is not None and len(json.dumps(body)) > MAX_OBJECT and method in ("POST", "PUT", "PATCH"):
            raise ApiError(413, "RequestEntityTooLarge", "etcdserver: request is too large")
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                self._watch(rt, ns, query)
                return 200, None
            if method == "GET":
                return 200, self._list(rt, ns, query)
            if method == "POST":
                return 201, state.create(rt, ns, body, manager or "unknown")
        elif method == "GET":
            return 200, state.get(rt, ns, name)
        elif method == "PUT":
            return 200, state.replace(rt, ns, name, body, sub, manager)
        elif method == "PATCH":
            obj, created = state.patch(rt, ns, name, content_type, body, sub, manager, query.get("force") == "true")
            return (201 if created else 200), obj
        elif method == "DELETE":
            return 200, state.delete(rt, ns, name, body or {})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- list and watch --------------------------------------------------------------------------

    def _list(self, rt: ResourceType, ns, query: dict) -> dict:
        state = self.double.state
        with state.lock:
            items = [o for o in state.list(rt, ns) if _selected(o, query)]
            version = str(state.rv)
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"]).decode())
            except ValueError:
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
        limit = int(query.get("limit") or 0)
        meta: dict = {"resourceVersion": version}
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        page = items[start:start + limit] if limit else items[start:]
        if rt.builtin:  # typed lists omit each item's apiVersion and kind
            for item in page:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return {"apiVersion": rt.api_version, "kind": f"{rt.kind}List", "metadata": meta, "items": page}

    def _watch(self, rt: ResourceType, ns, query: dict) -> None:
        state = self.double.state
        since_text = query.get("resourceVersion") or ""
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with state.lock:
            if since_text in ("", "0"):
                backlog = [{"type": "ADDED", "object": o} for o in state.list(rt, ns) if _selected(o, query)]
                since = state.rv
            else:
                since = int(since_text)
                if since < state.oldest:
                    backlog = [{"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": f"too old resource version: {since} ({state.oldest + 1})", "reason": "Expired",
                        "code": 410}}]
                    self._chunks(backlog)
                    self._end_chunks()
                    return
                backlog = []
        try:
            self._chunks(backlog)
            last_bookmark = time.monotonic()
            generation = self.double.watch_generation
            while time.monotonic() < deadline and not self.double.stopping.is_set() \
                    and generation == self.double.watch_generation:
                with state.changed:
                    fresh = [e for e in state.events if e[0] > since and e[1] is rt and (ns is None or e[2] == ns)]
                    if not fresh and state.rv == since:
                        state.changed.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                        fresh = [e for e in state.events if e[0] > since and e[1] is rt and (ns is None or e[2] == ns)]
                    current = state.rv
                out = [{"type": kind, "object": obj} for _, _, _, kind, obj in fresh if _selected(obj, query)]
                since = max([since] + [e[0] for e in fresh])
                if bookmarks and time.monotonic() - last_bookmark >= self.double.bookmark_interval:
                    out.append({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                                               "metadata": {"resourceVersion": str(current)}}})
                    last_bookmark = time.monotonic()
                    since = max(since, current)
                self._chunks(out)
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunks(self, events: list[dict]) -> None:
        for event in events:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _selected(obj: dict, query: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for clause in _split_selector(query.get("labelSelector") or ""):
        m = _SELECTOR.match(clause)
        if not m:
            raise bad_request(f"unable to parse requirement: {clause!r}")
        negate, key, op, value, set_op, values = m.groups()
        if set_op:
            options = {v.strip() for v in values.split(",")}
            ok = (labels.get(key) in options) if set_op == "in" else (labels.get(key) not in options)
        elif op:
            ok = (labels.get(key) == value) if op in ("=", "==") else (labels.get(key) != value)
        else:
            ok = (key in labels) != bool(negate)
        if not ok:
            return False
    for clause in filter(None, (query.get("fieldSelector") or "").split(",")):
        key, _, value = clause.partition("=")
        field = {"metadata.name": obj["metadata"].get("name"),
                 "metadata.namespace": obj["metadata"].get("namespace", "")}.get(key.rstrip("="))
        if field is None:
            raise bad_request(f'field label not supported: {key}')
        if field != value.lstrip("="):
            return False
    return True


def _split_selector(text: str) -> list[str]:
    """Split on commas outside parentheses ("a in (x,y),b" is two requirements)."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current)
    return out

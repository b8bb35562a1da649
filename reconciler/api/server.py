"""uvicorn in a background thread of the daemon: start() binds (port 0: any free port, read .port
after), stop() asks it to finish and waits; open streams get TIMEOUT_GRACEFUL seconds."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from reconciler.config import open_home_store

from .app import create_app
from .common import ApiState
from .settings import ApiSettings

log = logging.getLogger("reconciler.api")
TIMEOUT_GRACEFUL = 2


class ApiServer:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, on_stop: Any = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._on_stop = on_stop
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind now (an OSError such as EADDRINUSE reaches the caller), then serve in a thread."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
        # it a response written in two parts waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host.strip("[]"), self.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off", server_header=False,
                                timeout_graceful_shutdown=TIMEOUT_GRACEFUL, proxy_headers=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="reconciler-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.01)
        log.info("API listening on %s", self.url)

    def stop(self, timeout: float = TIMEOUT_GRACEFUL + 3) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._on_stop is not None:
            self._on_stop()
            self._on_stop = None


def start_daemon_api(home: Path, settings: ApiSettings, *, sync_loop: Any = None, repo: str | None = None,
                     metrics_app: Any = None) -> ApiServer | None:
    """The daemon's API on its own store connection. If the default address is taken (another daemon
    on this machine), log it and go on without the API; an address the user chose must work."""
    store = open_home_store(home)
    state = ApiState(store=store, home=home, settings=settings, sync_loop=sync_loop, repo=repo,
                     metrics_app=metrics_app)
    app = create_app(state)

    def close() -> None:
        state.feed.close()  # its thread reads the store: stop it first
        store.close()

    server = ApiServer(app, settings.host, settings.port, on_stop=close)
    try:
        server.start()
    except OSError as exc:
        store.close()
        if settings.explicit or exc.errno != errno.EADDRINUSE:
            raise ApiStartError(f"cannot serve the API on {settings.host}:{settings.port}: "
                                f"{exc.strerror or exc}") from None
        log.error("API not started: %s:%d is in use (another daemon?); running without it. "
                  "Choose an address with --listen or RECONCILER_LISTEN", settings.host, settings.port)
        return None
    return server


class ApiStartError(RuntimeError):
    pass

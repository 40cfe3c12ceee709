"""The two ways to reach the sandbox: an in-process httpx transport, and a loopback server.

The server is waitress: pure Python, HTTP/1.1 keep-alive, a thread pool. A dropped connection is
an ``OSError`` raised by the app, which waitress answers by closing the socket without a byte
(with ``log_socket_errors`` off), exactly what fault injection needs.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
from waitress.server import create_server

from syncd.sandbox.faults import DropConnection

log = logging.getLogger(__name__)


class SandboxTransport(httpx.WSGITransport):
    """Calls the sandbox's WSGI app in-process, with a socket's failure for a dropped connection."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A streamed body has no Content-Length; a WSGI app reads such a body as empty, so give
        # the app the length a server would have read off the wire (the caller's request stays as sent).
        request.read()
        if "Content-Length" not in request.headers:
            headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "transfer-encoding"]
            request = httpx.Request(request.method, request.url, headers=headers, content=request.content)
        try:
            response = super().handle_request(request)
            response.read()
        except DropConnection as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request) from exc
        return response


class LoopbackServer:
    """The sandbox's app on a loopback port, served from a background thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            log_socket_errors=False,
            asyncore_loop_timeout=0.1,
            ident="kizen-sandbox",
        )
        self.host = host
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.effective_port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._run, name="sandbox-server", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Blocks until the server stops (Ctrl+C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Finishes the requests in flight, then closes every connection and the listener."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # waitress's own run() loops until its socket map is empty; this loop also checks for
        # stop, and closes the sockets in its own thread, never under a poll in progress.
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)
        server.task_dispatcher.shutdown()
        for channel in list(server._map.values()):
            channel.close()

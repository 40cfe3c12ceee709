"""Serving a WSGI app on a loopback port from a background thread, on waitress.

waitress is pure Python, speaks HTTP/1.1 with keep-alive (kept after a 304 too, which waitress
itself would close), and runs requests on a thread pool.
An ``OSError`` raised by the app (the sandbox's injected dropped connection) makes it close the
socket without a byte, with ``log_socket_errors`` off. A port that cannot be bound (in use, an
address not this machine's, a privileged port) is :class:`PortUnavailable`, naming it.
"""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any, cast

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import WSGITask

from syncd.errors import PortUnavailable


class _KeepAliveTask(WSGITask):
    """waitress closes the connection after every HTTP/1.1 answer without a body (1xx, 204, 304):
    it finds no Content-Length, which those answers must not carry, and takes that for a body of
    unknown length. A 304 is what a subscribed calendar polling its feed gets nearly always, so
    such an answer keeps the connection open unless something else asked to close it."""

    def build_response_header(self) -> bytes:
        bodiless = not self.has_body and self.version == "1.1"
        asked = cast(Any, self.request).headers.get("CONNECTION", "")
        closing = self.close_on_finish or asked.lower() == "close"
        header = super().build_response_header()
        if bodiless and not closing:
            self.close_on_finish = False
            header = header.replace(b"\r\nConnection: close", b"")
        return header


class _Channel(HTTPChannel):
    task_class = _KeepAliveTask


class LoopbackServer:
    """A WSGI app on a port of ``host``, served from a background thread until stopped."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 8,
        ident: str = "syncd",
        setting: str = "the port",
    ) -> None:
        """Binds the port at once, so a port in use fails here, before anything else starts.

        Raises:
            PortUnavailable: the port is in use, or ``host`` cannot be listened on; the message
                names ``setting`` (``--port``, ``[daemon] port``) as the thing to change.
        """
        try:
            self._server: Any = create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                log_socket_errors=False,
                asyncore_loop_timeout=0.1,
                ident=ident,
            )
        except OSError as exc:  # socket.gaierror too: a host name that does not resolve
            reason = exc.strerror or str(exc)
            in_use = exc.errno == errno.EADDRINUSE and not isinstance(exc, socket.gaierror)
            raise PortUnavailable(host, port, reason, in_use=in_use, setting=setting) from exc
        cast(Any, self._server).channel_class = _Channel
        self.host = host
        self.ident = ident
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.effective_port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._run, name=f"{self.ident}-server", daemon=True)
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

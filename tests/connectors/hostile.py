"""Hostile servers on loopback: one that drips a byte a second, one that serves a stacked gzip bomb,
one behind a self-signed certificate, one that redirects elsewhere."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:tls-1\r\nDTSTART:20261203T140000Z\r\n"
    "SUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class Drip:
    """Accepts every connection, reads the request, then sends one byte every ``every`` seconds,
    for ever: in the status line and headers (``where="headers"``) or in an endless body."""

    def __init__(self, where: Literal["headers", "body"] = "body", every: float = 1.0) -> None:
        self.where = where
        self.every = every
        self.stop = threading.Event()
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/feed.ics?token=t"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 100000000\r\n\r\n"
                if self.where == "body":
                    conn.sendall(head + b"BEGIN:VCALENDAR\r\n")
                    head = b"X" * 100_000_000
                for byte in head:
                    if self.stop.wait(self.every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def stacked_gzip_bomb(size: int, layers: int = 2) -> bytes:
    """``size`` bytes of zeros gzipped ``layers`` times, built in chunks (a few hundred KB for 1 GiB)."""
    data: bytes | None = None
    for layer in range(layers):
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts: list[bytes] = []
        if layer == 0:
            block = b"\0" * (1 << 20)
            for _ in range(size // len(block)):
                parts.append(packer.compress(block))
        else:
            assert data is not None
            parts.append(packer.compress(data))
        parts.append(packer.flush())
        data = b"".join(parts)
    assert data is not None
    return data


class Serving:
    """A ThreadingHTTPServer on 127.0.0.1 answering every GET and PROPFIND with ``answer``."""

    def __init__(self, answer: tuple[int, dict[str, str], bytes], tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                server.seen.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, headers, body = server.answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PROPFIND = do_REPORT = handle_one

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 made with the openssl command; its PEM and a server context."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


def served(server: Serving | Drip) -> Iterator[Serving | Drip]:
    try:
        yield server
    finally:
        server.close()

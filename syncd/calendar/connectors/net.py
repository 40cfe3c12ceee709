"""What every fetch from a configured URL obeys: a deadline, a place it may reach, a verified peer.

- A deadline for the whole exchange (connect, TLS, headers, body, every redirect): a server that
  answers one byte a second keeps each read under any read timeout, so each socket operation
  waits at most what is left of the deadline, and a reader checks it between chunks.
- The addresses a source may reach: a URL pasted into the config must not reach the machine's
  own services, the cloud's metadata endpoint (169.254.169.254) or the local network, unless the
  source opts in (``allow_private_network``). The check is made on the address actually
  connected to, at connect time, so every redirect and every DNS answer is checked.
- TLS verified against the system's CAs, or the source's own bundle (``ca_file``); a failed
  verification is told in words (:func:`tls_problem`).

The deadline and the policy travel with the request (a context variable and a request
extension), so one client and its connection pools serve every source of a process.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx

POLICY = "syncd.policy"  # the request extension that carries a source's Policy
DEFAULT_TIMEOUT = 60.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("syncd_deadline", default=None)


@dataclass(frozen=True)
class Policy:
    """What one source's requests may do: reach private addresses, trust a CA bundle."""

    allow_private_network: bool = False
    ca_file: Path | None = None


PUBLIC = Policy()  # the default: public addresses only, the system's CAs


class Refused(OSError):
    """A connection syncd would not make: the address is private and the source did not opt in."""


class DeadlineExceeded(OSError):
    """The exchange ran past the source's deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bounds every socket operation made in this block (this thread) to ``seconds`` in all."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(timeout: float | None = None) -> float | None:
    """``timeout`` cut to what is left of the deadline; raises once the deadline is past."""
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the deadline passed")
    return left if timeout is None else min(timeout, left)


def private(address: str) -> bool:
    """Whether an IP address is one a source needs ``allow_private_network`` to reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of ``host`` a connection may go to; refuses when none may.

    Every address is checked, not only the first: a name that resolves to a public and a
    private address is refused whole, so a DNS answer cannot pick the private one later.
    """
    host = host.strip("[]")
    try:
        found = [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    except socket.gaierror as exc:
        raise OSError(f"unknown host {host}") from exc
    if not allow_private:
        for address in found:
            if private(address):
                raise refused(host, address)
    return list(dict.fromkeys(found))


def check_url(url: str, allow_private: bool) -> None:
    """Refuses a URL whose host is a private address (a redirect's target, before following it)."""
    host = httpx.URL(url).host
    if host:
        resolve(host, 0, allow_private)


class _Stream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most what is left of the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cut(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cut(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _cut(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _cut(timeout: float | None) -> float | None:
    try:
        return remaining(timeout)
    except DeadlineExceeded as exc:
        raise httpcore.ReadTimeout("the source's deadline passed") from exc


class _Backend(httpcore.NetworkBackend):
    """Connects only to the addresses a source may reach, checked as resolved (DNS rebinding too)."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port, self._allow_private)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(address, port, _cut(timeout), local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _Stream(stream)
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("feeds are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class FeedTransport(httpx.BaseTransport):
    """Sends each request through the pool of its source's :class:`Policy` (one pool a policy)."""

    def __init__(self) -> None:
        self._pools: dict[Policy, httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = request.extensions.get(POLICY) or PUBLIC
        pool = self._pools.get(policy)
        if pool is None:
            verify: ssl.SSLContext | bool = ssl_context(policy.ca_file)
            pool = httpx.HTTPTransport(verify=verify)
            pool._pool._network_backend = _Backend(policy.allow_private_network)  # httpcore's own seam
            self._pools[policy] = pool
        return pool.handle_request(request)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying context: the system's CAs, or only ``ca_file``'s when given."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise httpx.ConnectError(f"cannot read the CA bundle {ca_file}: {reason}") from exc


def refusal(exc: BaseException) -> str | None:
    """The private address a failure was refused for (or the CA bundle it could not read), in
    words; None if it was neither."""
    seen: BaseException | None = exc
    while seen is not None:
        found = _REFUSAL.search(str(seen)) or _NO_BUNDLE.search(str(seen))
        if found:
            return found.group(0)
        seen = seen.__cause__ or seen.__context__
    return None


def refused(host: str, address: str) -> Refused:
    """The error for a host that is (or resolves to) a private address."""
    what = "is" if host.strip("[]") == address else f"resolves to {address},"
    return Refused(f"{host} {what} a private address (set allow_private_network to allow)")


_NO_BUNDLE = re.compile(r"cannot read the CA bundle [^:]*: .*")
_REFUSAL = re.compile(
    r"[^\s'\"(]+ (?:is|resolves to [^\s,]+,) a private address \(set allow_private_network to allow\)"
)


def tls_problem(exc: BaseException) -> str | None:
    """The certificate problem behind a failure, in OpenSSL's words; None if it is not one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {seen.verify_message}"
        text = str(seen)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            marker = "certificate verify failed:"
            tail = text.split(marker, 1)[1].split("(_ssl", 1)[0].strip(" )") if marker in text else ""
            return f"{marker} {tail}".strip() if tail else "certificate verify failed"
        seen = seen.__cause__ or seen.__context__
    return None


# -- the caldav library's HTTP stack (niquests) ------------------------------------------------


class Watchdog:
    """Bounds each request of a niquests session to ``seconds``, whatever the server sends.

    niquests has no deadline for a whole request, and closing its session does not wake a
    blocked read; so the session connects through a resolver that checks each address (at
    connect time, redirects included) and notes each connection, and a timer shuts the
    connections of a request still running at its deadline down, which wakes its read.
    """

    def __init__(self, seconds: float, allow_private: bool) -> None:
        from niquests.packages.urllib3.contrib.resolver.system import SystemResolver  # type: ignore[import-not-found]

        self.seconds = seconds
        self.expired = False
        self._connections: list[tuple[int, Any, Any]] = []  # (fd, local, peer): one TCP connection
        self._lock = threading.Lock()
        watchdog = self

        class _Resolver(SystemResolver):  # type: ignore[misc]
            def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
                records = super().getaddrinfo(host, port, *args, **kwargs)
                if not allow_private:
                    for record in records:
                        if private(str(record[4][0])):
                            raise refused(host.decode() if isinstance(host, bytes) else host, str(record[4][0]))
                return records

            def create_connection(self, *args: Any, **kwargs: Any) -> Any:
                sock = super().create_connection(*args, **kwargs)
                with watchdog._lock:
                    watchdog._connections.append((sock.fileno(), sock.getsockname(), sock.getpeername()))
                return sock

            def recycle(self) -> Any:
                return self

        self.resolver = _Resolver()

    def run(self, send: Any, *args: Any, **kwargs: Any) -> Any:
        """``send(*args, **kwargs)``, its connections shut down if it outlives the deadline."""
        self.expired = False
        timer = threading.Timer(self.seconds, self._expire)
        timer.daemon = True
        timer.start()
        try:
            return send(*args, **kwargs)
        finally:
            timer.cancel()
            self._prune()

    def _expire(self) -> None:
        self.expired = True
        with self._lock:
            for fd, local, peer in self._connections:
                _shut(fd, local, peer)

    def _prune(self) -> None:
        """Forgets connections closed since (their descriptor now names no such connection)."""
        with self._lock:
            self._connections = [c for c in self._connections if _same(*c)]


def _open(fd: int, local: Any, peer: Any) -> socket.socket | None:
    """A duplicate of descriptor ``fd`` if it is still the connection (local, peer), else None."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        if sock.getsockname() == local and sock.getpeername() == peer:
            return sock
    except OSError:
        pass
    sock.close()
    return None


def _same(fd: int, local: Any, peer: Any) -> bool:
    sock = _open(fd, local, peer)
    if sock is None:
        return False
    sock.close()
    return True


def _shut(fd: int, local: Any, peer: Any) -> None:
    sock = _open(fd, local, peer)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the read blocked on it; the owner closes it
        sock.close()

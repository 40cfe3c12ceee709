"""Xandikos on loopback: a second CalDAV server nobody here wrote, beside Radicale.

Xandikos's own multi-user WSGI application (one principal per user at ``/<user>/``, calendars
in its ``calendars/`` home, as ``xandikos multi-user`` lays them out) runs in-process behind the
same kind of counting middleware as :class:`tests.connectors.radicale.Radicale`, served by
waitress on 127.0.0.1 at a free port, so request counts are what reached the server. The
middleware also stands in for the authenticating front end Xandikos expects: it takes the user
from the Basic credentials into ``REMOTE_USER`` (any user, as Radicale's auth ``none``; only
``users`` with their passwords when given). In-process, no root check applies (the CLI has none
either); the storage (git repositories) lives in the folder the caller gives.

Where the layout differs from Radicale's, :meth:`Xandikos.home` says where a user's calendars go.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from syncd.service.serving import LoopbackServer
from tests.connectors.radicale import _REPORT, Radicale, Seen, mkcalendar, put, vcalendar


class Xandikos:
    """Xandikos's multi-user app on a loopback port, served from a background thread, counting requests."""

    kind = "xandikos"

    def __init__(
        self,
        folder: Path,
        *,
        users: Mapping[str, str] | None = None,
        threads: int = 4,
        port: int = 0,
        prefix: str = "",
    ) -> None:
        """``prefix`` (say ``/dav``) serves Xandikos under that path, the well-known URLs at the root."""
        from xandikos.multi_user import MultiUserFilesystemBackend, MultiUserXandikosApp
        from xandikos.wsgi_helpers import WellknownRedirector

        self.folder = folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        backend = MultiUserFilesystemBackend(str(self.folder), principal_path_prefix="/", principal_path_suffix="/")
        app = MultiUserXandikosApp(backend, "/%(REMOTE_USER)s/", state_dir=str(folder / "state"))
        self.prefix = prefix
        self._app = WellknownRedirector(app.handle_wsgi_request, prefix + "/")
        self._users = dict(users) if users is not None else None
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._count, port=port, threads=threads, ident="xandikos")

    @property
    def url(self) -> str:
        """The server's root, without a trailing slash."""
        return self._server.url

    def home(self, user: str) -> str:
        """The path of a user's calendar home (the principal is ``/<user>/``)."""
        return f"{self.prefix}/{user}/calendars/"

    def start(self) -> Xandikos:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Xandikos:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def mark(self) -> int:
        with self._lock:
            return len(self._seen)

    def since(self, mark: int) -> list[Seen]:
        with self._lock:
            return self._seen[mark:]

    def client(self, user: str, password: str = "unused") -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=30)

    def bulk(self, http: httpx.Client, path: str, components: Iterable[str], *, name: str) -> None:
        """Creates a collection with these objects: Xandikos takes no collection PUT, so one PUT each."""
        mkcalendar(http, path, name=name)
        for text in components:
            uid = text.split("UID:", 1)[1].split("\r\n", 1)[0]
            put(http, f"{path}{uid}.ics", vcalendar(text))

    def _user(self, environ: dict[str, Any]) -> str | None:
        """The user of the request's Basic credentials; None if there are none or they are wrong."""
        scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not name or (self._users is not None and self._users.get(name) != password):
            return None
        return name

    def _count(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = b""
        if environ.get("REQUEST_METHOD") == "REPORT":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
        match = _REPORT.search(body[:500])
        seen = Seen(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("HTTP_DEPTH"),
            match.group(1).decode() if match else None,
        )
        with self._lock:
            self._seen.append(seen)
        user = self._user(environ)
        if user is None and self._users is not None:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="xandikos"')])
            return [b"Authentication required.\n"]
        environ.pop("REMOTE_USER", None)
        if user is not None:
            environ["REMOTE_USER"] = user
        path = environ.get("PATH_INFO", "")
        if self.prefix and not path.startswith("/.well-known/"):  # mounted as a proxy would: nothing else outside
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"Not found.\n"]
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = self.prefix, path[len(self.prefix) :]
        return self._app(environ, start_response)


DavServer = Radicale | Xandikos

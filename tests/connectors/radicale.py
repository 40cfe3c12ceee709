"""Radicale on loopback for the CalDAV tests and benchmark, every request counted at the server.

Radicale's WSGI application runs in-process behind a counting middleware and is served by
waitress on 127.0.0.1 at a free port: the counts are what reached the server, whatever the client
believes it sent. Storage lives in a folder the caller gives; auth is ``none`` (any user name is
accepted, rights are owner-only), or htpasswd when ``users`` are given. A second Radicale on the
same folder and ``port`` is the first one restarted.

Seeding goes through a plain httpx client: :func:`mkcalendar`, :func:`put`, and :func:`bulk`,
which creates a whole collection in ONE PUT of a VCALENDAR to the collection's URL.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

import httpx

from syncd.service.serving import LoopbackServer

_REPORT = re.compile(rb"<(?:[\w-]+:)?(sync-collection|calendar-multiget|calendar-query)\b")

BERLIN = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//syncd tests//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
DTSTART:19810329T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
DTSTART:19961027T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
END:VTIMEZONE\r
END:VCALENDAR\r
"""


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    depth: str | None
    report: str | None  # sync-collection, calendar-multiget or calendar-query, for a REPORT


class Radicale:
    """Radicale's app on a loopback port, served from a background thread, counting requests."""

    kind = "radicale"

    def __init__(
        self, folder: Path, *, users: Mapping[str, str] | None = None, threads: int = 4, port: int = 0
    ) -> None:
        import radicale.config  # here, so a missing Radicale fails these fixtures, not the whole folder
        from radicale.app import Application

        auth: dict[str, str] = {"type": "none", "delay": "0"}
        if users is not None:
            htpasswd = folder / "users"
            htpasswd.write_text("".join(f"{name}:{password}\n" for name, password in users.items()), "utf-8")
            auth = {
                "type": "htpasswd",
                "htpasswd_filename": str(htpasswd),
                "htpasswd_encryption": "plain",
                "delay": "0",
            }
        configuration = radicale.config.load()
        configuration.update(
            {"auth": auth, "rights": {"type": "owner_only"}, "storage": {"filesystem_folder": str(folder / "data")}},
            "syncd tests",
        )
        configuration.update({"storage": {"_filesystem_fsync": "False"}}, "syncd tests", privileged=True)
        self.folder = folder / "data"
        self._app = Application(configuration)
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._count, port=port, threads=threads, ident="radicale")

    @property
    def url(self) -> str:
        """The server's root, without a trailing slash."""
        return self._server.url

    def home(self, user: str) -> str:
        """The path of a user's calendar home: the principal itself."""
        return f"/{user}/"

    def bulk(self, http: httpx.Client, path: str, components: Iterable[str], *, name: str) -> None:
        """Creates a collection with these objects in one request (see :func:`bulk`)."""
        bulk(http, path, components, name=name)

    def start(self) -> Radicale:
        """Starts serving (the port listens from construction on, so no wait is needed)."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Closes every connection and the listener."""
        self._server.stop()

    def __enter__(self) -> Radicale:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def mark(self) -> int:
        """A point in the request log, for :meth:`since`."""
        with self._lock:
            return len(self._seen)

    def since(self, mark: int) -> list[Seen]:
        """The requests the server received after ``mark``."""
        with self._lock:
            return self._seen[mark:]

    def client(self, user: str, password: str = "unused") -> httpx.Client:
        """A keep-alive httpx client for seeding, logged in as ``user``."""
        return httpx.Client(base_url=self.url, auth=(user, password), timeout=30)

    def _count(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = b""
        if environ.get("REQUEST_METHOD") == "REPORT":  # read the body to tell the REPORTs apart, then hand it on
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
        return self._app(environ, start_response)


def quiet() -> None:
    """Keeps Radicale's warnings (an invalid sync token, an insecure auth type) off the console."""
    logging.getLogger("radicale").setLevel(logging.ERROR)


def vevent(uid: str, summary: str = "Meeting", *, start: str = "20300104T090000Z", extra: str = "") -> str:
    """One VEVENT's lines (CRLF), ``extra`` lines added before its END."""
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\n"
        f"DURATION:PT30M\r\nSUMMARY:{summary}\r\n{extra}END:VEVENT\r\n"
    )


def vtodo(uid: str, summary: str = "Task", *, due: str = "20300104T090000Z") -> str:
    """One VTODO's lines (CRLF)."""
    return f"BEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDUE:{due}\r\nSUMMARY:{summary}\r\nEND:VTODO\r\n"


def vcalendar(*components: str, header: str = "") -> str:
    """A VCALENDAR around the given components."""
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd tests//EN\r\n{header}{''.join(components)}END:VCALENDAR\r\n"
    )


def mkcalendar(
    http: httpx.Client, path: str, *, name: str, components: Sequence[str] = ("VEVENT", "VTODO"), zone: str = ""
) -> None:
    """Creates a calendar collection with a display name, its components and optionally a zone."""
    comps = "".join(f'<C:comp name="{c}"/>' for c in components)
    tz = f"<C:calendar-timezone>{escape(zone)}</C:calendar-timezone>" if zone else ""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
        f"<D:displayname>{escape(name)}</D:displayname>{tz}"
        f"<C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set>"
        "</D:prop></D:set></C:mkcalendar>"
    )
    response = http.request("MKCALENDAR", path, content=body, headers={"Content-Type": "application/xml"})
    assert response.status_code == 201, (response.status_code, response.text)


def put(http: httpx.Client, path: str, ical: str, *, if_match: str | None = None) -> str:
    """Stores one object; returns its new etag."""
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    if if_match:
        headers["If-Match"] = if_match
    response = http.put(path, content=ical.encode(), headers=headers)
    assert response.status_code in (201, 204), (response.status_code, response.text)
    return response.headers["ETag"]


def delete(http: httpx.Client, path: str) -> None:
    response = http.delete(path)
    assert response.status_code in (200, 204), (response.status_code, response.text)


def bulk(http: httpx.Client, path: str, components: Iterable[str], *, name: str) -> None:
    """Creates a whole collection, every object in it, with ONE request (Radicale's collection PUT)."""
    ical = vcalendar(*components, header=f"X-WR-CALNAME:{name}\r\n")
    response = http.put(path, content=ical.encode(), headers={"Content-Type": "text/calendar; charset=utf-8"})
    assert response.status_code == 201, (response.status_code, response.text)


def expire_sync_tokens(folder: Path, collection_path: str) -> int:
    """Forgets every sync token Radicale issued for a collection, as its token expiry does."""
    tokens = folder / "collection-root" / collection_path.strip("/") / ".Radicale.cache" / "sync-token"
    gone = 0
    for token in tokens.iterdir():
        token.unlink()
        gone += 1
    return gone

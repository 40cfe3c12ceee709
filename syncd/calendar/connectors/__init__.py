"""Connectors: each reports what changed in a calendar since a cursor, and writes back if it may.

- ``ics``: a read-only ICS feed (a file or an http(s) URL).
- ``caldav``: CalDAV collections, read and written back.
- ``memory``: a calendar held in memory that behaves as a CalDAV collection (tests and demos).

Every connector has the one shape of :class:`Source`; a feed says ``read_only`` and has one
collection, its URL. :func:`connect` is the one place a connector is built from config, and it
imports each connector's module only when a source needs it: the caldav stack (caldav, niquests,
lxml) costs a second of start-up that an ICS-only config, ``syncd status`` or ``syncd check`` of
feeds never use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from syncd.config import CalDAVSourceConfig, SourceConfig
from syncd.model import Collection, CollectionChanges, Cursor, Location

if TYPE_CHECKING:
    import httpx


class Source(Protocol):
    """What syncd asks of a calendar source.

    ``read_only`` sources (ICS feeds) are never written to: the plan makes no write-back or move
    for them, and their ``update``/``create`` refuse with :class:`~syncd.errors.SourceError`.
    ``known`` maps each stored href to its etag, so a listing can skip what did not change.
    """

    name: str
    read_only: bool

    def discover(self) -> list[Collection]: ...

    def changes(self, collection_url: str, since: Cursor, known: Mapping[str, str | None]) -> CollectionChanges: ...

    def update(self, location: Location, etag: str, ical: str) -> str | None: ...

    def create(self, collection_url: str, uid: str, ical: str) -> tuple[Location, str | None]: ...

    def close(self) -> None: ...


def connect(source: SourceConfig, http: httpx.Client) -> Source:
    """The connector of one configured source; ``http`` is the process's client for feeds.

    A CalDAV connector keeps its own connection (the caldav library's session), closed by its
    ``close()``; a feed fetches with ``http``, which its owner closes.
    """
    from syncd.calendar.connectors import net

    if isinstance(source, CalDAVSourceConfig):
        from syncd.calendar.connectors.caldav import CalDAVSource

        return CalDAVSource(
            source.name,
            source.url,
            username=source.username,
            password=source.password(),
            collections=source.collections,
            timeout=source.timeout_seconds,
            policy=net.Policy(source.allow_private_network, source.ca_file),
        )
    from syncd.calendar.connectors.ics import IcsSource

    policy = net.Policy(source.allow_private_network, source.ca_file)
    return IcsSource(
        source.name, source.url, http=http, max_bytes=source.max_bytes, timeout=source.timeout_seconds, policy=policy
    )

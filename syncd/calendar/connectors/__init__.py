"""Connectors: each reports what changed in a calendar since a cursor; CalDAV also writes back.

- ``ics``: a read-only ICS feed (a file or an http(s) URL).
- ``caldav``: CalDAV collections, read and written back.
- ``memory``: a calendar held in memory that behaves as a CalDAV collection (tests and demos).

A writable connector has the shape of :class:`WritableSource`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from syncd.calendar.connectors.caldav import Collection
from syncd.model import CollectionChanges, Cursor, Location


class WritableSource(Protocol):
    """What the engine asks of a calendar it can write to (CalDAV, or the memory connector)."""

    name: str

    def discover(self) -> list[Collection]: ...

    def changes(self, collection_url: str, since: Cursor, known: Mapping[str, str | None]) -> CollectionChanges: ...

    def update(self, location: Location, etag: str, ical: str) -> str | None: ...

    def create(self, collection_url: str, uid: str, ical: str) -> tuple[Location, str | None]: ...

    def close(self) -> None: ...

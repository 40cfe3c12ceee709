"""A calendar held in memory that behaves as a CalDAV collection does: for tests and demos.

It keeps objects with etags, hands out sync tokens (each change gets the next number; a token
says "everything up to here"), answers ``changes()`` with what changed since a token (a full
listing without one), and refuses an update whose etag is stale, as a server's If-Match does.
Its ``put``/``remove`` are a person editing the calendar; the engine only uses the connector API.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import replace

from syncd.errors import PreconditionFailed
from syncd.model import Collection, CollectionChanges, Cursor, Location, Resource


class MemorySource:
    """One account's calendars, in memory."""

    read_only = False

    def __init__(self, name: str, collections: tuple[str, ...] = ("memory://calendar/",)) -> None:
        self.name = name
        self._objects: dict[str, dict[str, tuple[str, str]]] = {url: {} for url in collections}
        self._changes: dict[str, list[tuple[int, str]]] = {url: [] for url in collections}
        self._clock = 0
        self._lock = threading.Lock()
        self.requests = 0

    # --- a person at the calendar ---------------------------------------------------------------

    def put(self, collection: str, href: str, ical: str) -> str:
        """Adds or replaces an object, as a calendar app would; returns its new etag."""
        with self._lock:
            return self._store(collection, href, ical)

    def remove(self, collection: str, href: str) -> None:
        with self._lock:
            self._objects[collection].pop(href, None)
            self._tick(collection, href)

    def text(self, collection: str, href: str) -> str:
        return self._objects[collection][href][1]

    # --- the connector ----------------------------------------------------------------------------

    def discover(self) -> list[Collection]:
        return [
            Collection(url=url, name=url.rstrip("/").rsplit("/", 1)[-1], components=("VEVENT", "VTODO"))
            for url in self._objects
        ]

    def changes(self, collection_url: str, since: Cursor, known: Mapping[str, str | None]) -> CollectionChanges:
        with self._lock:
            self.requests += 1
            objects = self._objects[collection_url]
            token = f"{self._clock}"
            if since.sync_token is None:
                changed = tuple(
                    self._resource(collection_url, href)
                    for href in sorted(objects)
                    if known.get(href) != objects[href][0]
                )
                unchanged = tuple(href for href in sorted(objects) if known.get(href) == objects[href][0])
                gone = tuple(href for href in known if href not in objects)
                return CollectionChanges(
                    self.name,
                    collection_url,
                    changed,
                    gone,
                    True,
                    unchanged,
                    replace(since, sync_token=token),
                    requests=1,
                )
            after = int(since.sync_token)
            touched = sorted({href for stamp, href in self._changes[collection_url] if stamp > after})
            changed = tuple(self._resource(collection_url, href) for href in touched if href in objects)
            deleted = tuple(href for href in touched if href not in objects)
            return CollectionChanges(
                self.name, collection_url, changed, deleted, cursor=replace(since, sync_token=token), requests=1
            )

    def update(self, location: Location, etag: str, ical: str) -> str | None:
        with self._lock:
            current = self._objects[location.collection].get(location.href)
            if current is None or (etag != "*" and current[0] != etag):
                raise PreconditionFailed(location.href)
            return self._store(location.collection, location.href, ical)

    def create(self, collection_url: str, uid: str, ical: str) -> tuple[Location, str | None]:
        href = f"{hashlib.sha256(uid.encode()).hexdigest()[:16]}.ics"
        with self._lock:
            if href in self._objects[collection_url]:
                raise PreconditionFailed(href)
            return Location(self.name, collection_url, href), self._store(collection_url, href, ical)

    def close(self) -> None:
        pass

    # --- inside -----------------------------------------------------------------------------------

    def _store(self, collection: str, href: str, ical: str) -> str:
        stamp = self._tick(collection, href)
        etag = f'"{stamp}-{hashlib.sha256(ical.encode()).hexdigest()[:12]}"'
        self._objects[collection][href] = (etag, ical)
        return etag

    def _tick(self, collection: str, href: str) -> int:
        self._clock += 1
        self._changes[collection].append((self._clock, href))
        return self._clock

    def _resource(self, collection: str, href: str) -> Resource:
        etag, ical = self._objects[collection][href]
        return Resource(Location(self.name, collection, href), etag, ical)

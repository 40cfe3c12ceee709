"""The contract every writable connector keeps, run unchanged on CalDAV (Radicale, Xandikos) and memory.

The engine relies on exactly this: a first sync lists everything, an idle one nothing, a change
only what changed, a deletion as a deletion, and a write only over the version it read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import pytest
from pydantic import SecretStr

from syncd.calendar.connectors import Source
from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.calendar.connectors.memory import MemorySource
from syncd.errors import PreconditionFailed
from syncd.model import CollectionChanges, Cursor, Location
from tests.connectors.conftest import LOOPBACK, PASSWORD
from tests.connectors.radicale import delete, mkcalendar, put, vcalendar, vevent
from tests.connectors.xandikos import DavServer


@dataclass
class Calendar:
    """A connector under test, its collection, and a person's hands on the same calendar."""

    source: Source
    url: str
    put: Callable[[str, str], None]
    remove: Callable[[str], None]
    cursor: Cursor = Cursor()
    etags: dict[str, str | None] | None = None

    def sync(self) -> CollectionChanges:
        known = dict(self.etags or {})
        changes = self.source.changes(self.url, self.cursor, known)
        for href in changes.deleted:
            known.pop(href, None)
        known.update((r.location.href, r.etag) for r in changes.changed)
        self.cursor, self.etags = changes.cursor, known
        return changes


@pytest.fixture(params=["caldav on radicale", "caldav on xandikos", "memory"])
def writable(request: pytest.FixtureRequest) -> Iterator[Calendar]:
    if request.param == "memory":
        memory = MemorySource("cal")
        url = "memory://calendar/"
        yield Calendar(
            memory, url, lambda href, ical: memory.put(url, href, ical) and None, lambda href: memory.remove(url, href)
        )
        return
    server: DavServer = request.getfixturevalue(request.param.rsplit(" ", 1)[1])  # the session's server
    user = f"u{uuid4().hex[:12]}"
    path = f"{server.home(user)}desk/"
    with (
        server.client(user) as http,
        CalDAVSource(
            "cal", f"{server.url}/{user}/", username=user, password=SecretStr(PASSWORD), policy=LOOPBACK
        ) as source,
    ):
        mkcalendar(http, path, name="Work")
        yield Calendar(
            source,
            server.url + path,
            lambda href, ical: put(http, path + href, ical) and None,
            lambda href: delete(http, path + href),
        )


def seed(writable: Calendar, count: int) -> None:
    for n in range(count):
        writable.put(f"e{n}.ics", vcalendar(vevent(f"e{n}", f"Event {n}")))


def summaries(changes: CollectionChanges) -> dict[str, str]:
    """File name -> SUMMARY of each changed object (hrefs are paths on CalDAV, names in memory)."""
    found = {}
    for resource in changes.changed:
        summary = next(line for line in resource.ical.splitlines() if line.startswith("SUMMARY:"))
        found[resource.location.href.rsplit("/", 1)[-1]] = summary[8:]
    return found


def test_a_first_sync_lists_everything_with_etags(writable: Calendar) -> None:
    seed(writable, 3)
    first = writable.sync()
    assert sorted(summaries(first).values()) == ["Event 0", "Event 1", "Event 2"]
    assert all(r.etag for r in first.changed) and first.cursor.sync_token


def test_an_idle_sync_reports_nothing(writable: Calendar) -> None:
    seed(writable, 3)
    writable.sync()
    idle = writable.sync()
    assert idle.changed == () and idle.deleted == ()


def test_a_change_reports_only_what_changed(writable: Calendar) -> None:
    seed(writable, 3)
    writable.sync()
    writable.put("e1.ics", vcalendar(vevent("e1", "Event 1 moved")))
    assert summaries(writable.sync()) == {"e1.ics": "Event 1 moved"}


def test_a_deletion_is_reported_as_one(writable: Calendar) -> None:
    seed(writable, 2)
    writable.sync()
    writable.remove("e0.ics")
    changes = writable.sync()
    assert changes.changed == () and [h.rsplit("/", 1)[-1] for h in changes.deleted] == ["e0.ics"]


def test_a_write_lands_only_over_the_version_it_read(writable: Calendar) -> None:
    seed(writable, 1)
    (resource,) = writable.sync().changed
    assert resource.etag is not None
    new = writable.source.update(resource.location, resource.etag, vcalendar(vevent("e0", "Written by syncd")))
    assert new != resource.etag
    with pytest.raises(PreconditionFailed):
        writable.source.update(resource.location, resource.etag, vcalendar(vevent("e0", "A stale write")))
    assert summaries(writable.sync()) == {"e0.ics": "Written by syncd"}


def test_a_created_object_shows_up_in_the_next_sync(writable: Calendar) -> None:
    writable.sync()
    location, etag = writable.source.create(
        writable.url, "made-by-syncd", vcalendar(vevent("made-by-syncd", "From Kizen"))
    )
    assert isinstance(location, Location) and location.collection == writable.url
    changes = writable.sync()
    assert summaries(changes) == {location.href.rsplit("/", 1)[-1]: "From Kizen"}


def test_discovery_lists_the_collection(writable: Calendar) -> None:
    assert writable.url in {c.url for c in writable.source.discover()}

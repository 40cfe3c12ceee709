"""What a real run records of its read and its poll (``syncd.sync.commit``), on a real store.

Each collection's resources with their ETags, its cursor with its zone, the collections a
discovery dropped forgotten, the quarantined items by occurrence, and the skips only when they
changed: what the next cycle relies on to read only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from syncd.calendar.reading import CalendarView, Collected, Found
from syncd.model import Cursor, Location, OccurrenceId, Resource
from syncd.state import Store, open_store
from syncd.state.protocol import SKIPPED, Discovery, SyncState
from syncd.sync.commit import commit_poll, commit_read
from syncd.sync.poll import Poll
from syncd.sync.report import Outcome

OFFICE, HOME = "https://dav.example/ada/office/", "https://dav.example/ada/home/"
ICAL = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
SERIES = OccurrenceId("weekly", "20261207T090000Z")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Store]:
    store = open_store(str(tmp_path / "state.sqlite"))
    try:
        yield store
    finally:
        store.close()


def read(*collected: Collected, **fields: Any) -> CalendarView:
    return CalendarView(read={"ada"}, collected=list(collected), **fields)


def test_each_changed_resource_is_kept_with_its_etag_and_the_cursor_with_its_zone(state: Store) -> None:
    state.save_resource(Location("ada", OFFICE, "old.ics"), '"o"', ICAL)
    commit_read(
        state,
        read(
            Collected(
                "ada",
                OFFICE,
                changed=(Resource(Location("ada", OFFICE, "new.ics"), '"n1"', ICAL),),
                deleted=("old.ics",),
                cursor=Cursor(sync_token="token-2"),
                zone="Europe/Paris",
            )
        ),
    )
    assert state.resources("ada", OFFICE) == {"new.ics": ('"n1"', ICAL)}
    assert state.cursor("ada", OFFICE) == Cursor(sync_token="token-2")
    assert state.collections("ada") == {OFFICE: "Europe/Paris"}


def test_a_discovery_that_dropped_a_collection_forgets_its_cursor_and_copies(state: Store) -> None:
    for collection in (OFFICE, HOME):
        state.save_resource(Location("ada", collection, "item.ics"), '"e"', ICAL)
        state.save_cursor("ada", collection, Cursor(sync_token="t"), None)
    discovery = Discovery("{}", {OFFICE: None})
    commit_read(state, read(discoveries={"ada": Found(discovery, dropped=(HOME,))}))
    assert state.discovery("ada") == discovery
    assert state.collections("ada") == {OFFICE: None}
    assert state.resources("ada", HOME) == {} and state.resources("ada", OFFICE) != {}


def test_quarantined_items_are_kept_by_occurrence_and_those_of_a_source_read_in_full_forgotten(state: Store) -> None:
    state.record_failure("ada", OccurrenceId("fixed", ""), "quarantined", "was broken")
    state.record_failure("ada", OccurrenceId("refused", ""), "failed", "Kizen refused it")
    state.record_failure("grace", OccurrenceId("theirs", ""), "quarantined", "not read this cycle")
    state.record_failure("ada", SERIES, "quarantined", "bad RRULE")
    (since,) = [f.first_seen for f in state.failures() if f.uid == SERIES.uid]
    commit_read(state, read(quarantined=[("ada", SERIES, "bad RRULE")]))
    kept = {(f.source, f.uid, f.slot, f.kind, f.reason) for f in state.failures()}
    assert [f.first_seen for f in state.failures() if f.uid == SERIES.uid] == [since]  # still the same one
    assert kept == {
        ("ada", "weekly", "20261207T090000Z", "quarantined", "bad RRULE"),
        ("ada", "refused", "", "failed", "Kizen refused it"),  # not the read's to forget
        ("grace", "theirs", "", "quarantined", "not read this cycle"),  # grace was not read in full
    }


class Remembering:
    """The store, counting the look-ups it is asked to remember."""

    def __init__(self, state: Store) -> None:
        self.state, self.remembered = state, 0

    def remember(self, kind: str, key: str, value: str) -> None:
        self.remembered += 1
        self.state.remember(kind, key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)


def test_each_sources_skips_by_reason_are_written_only_when_they_changed(state: Store) -> None:
    counting = Remembering(state)
    skips = [("ada", OccurrenceId(f"s{n}", ""), "declined") for n in range(2)] + [
        ("ada", OccurrenceId("t", ""), "transparent")
    ]
    commit_read(cast(SyncState, counting), read(), skips)
    assert json.loads(state.lookup(SKIPPED, "ada") or "") == {"declined": 2, "transparent": 1}
    commit_read(cast(SyncState, counting), read(), list(reversed(skips)))
    assert counting.remembered == 1  # the same counts: an unchanged cycle writes nothing
    commit_read(cast(SyncState, counting), read(), skips[:1])
    assert counting.remembered == 2 and json.loads(state.lookup(SKIPPED, "ada") or "") == {"declined": 1}


def test_a_poll_records_the_team_it_looked_up_and_each_activity_it_could_not_read(state: Store) -> None:
    poll = Poll(cast(Any, None), state, cast(Any, None), failed=lambda _step, _error: None)
    poll.employees = {"ada@example.com": "e-ada", "grace@example.com": "e-grace"}
    poll.unread = [Outcome("Read", SERIES, "ada", ok=False, detail="Kizen answered 500: try again")]
    commit_poll(state, poll)
    assert state.lookup("employee", "ada@example.com") == "e-ada"
    assert state.lookup("employee", "grace@example.com") == "e-grace"
    ((source, uid, slot, kind, reason),) = {(f.source, f.uid, f.slot, f.kind, f.reason) for f in state.failures()}
    assert (source, OccurrenceId(uid, slot), kind, reason) == ("ada", SERIES, "failed", "Kizen answered 500: try again")

"""Series changes with settled slots, and meetings shared by two sources, over whole cycles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox
from tests.backends import open_state
from tests.engine.test_cycle import World, calendar, vevent

WEEKLY = ("RRULE:FREQ=WEEKLY;COUNT=8",)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


@pytest.mark.parametrize("settle", ["complete", "delete"])
def test_a_shifted_series_keeps_every_week_in_place_around_a_settled_one(world: World, settle: str) -> None:
    world.feed(calendar(vevent("weekly", "20261123T090000Z", "Review", *WEEKLY)))
    assert world.run().counts() == {"Create": 8}
    week2 = next(a for a in world.activities() if a["due_datetime"] == "2026-11-30T09:00:00Z")
    getattr(world.box.user(), settle)(week2["id"])
    assert world.run().counts() == {"Settle": 1}
    ids = {a["id"] for a in world.activities()}
    world.feed(calendar(vevent("weekly", "20261123T110000Z", "Review", *WEEKLY)))  # two hours later
    report = world.run()
    assert report.counts() == {"Reschedule": 7, "Settle": 1}, report.outcomes
    assert {a["id"] for a in world.activities()} == ids  # nothing extra, nothing re-created
    for activity in world.open_activities():  # each keeps its week: moved by two hours exactly
        assert activity["original_due_datetime"].replace("T09:", "T11:") == activity["due_datetime"], activity
    assert len(world.open_activities()) == 7
    assert world.run().actions == []
    state = open_state(world.folder)
    (settled,) = [p for p in state.pairings() if p.settled]
    state.close()
    assert settled.id.slot == "20261130T110000Z" and settled.activity_id == week2["id"]


def shared(organizer: str = "ada") -> str:
    return vevent(
        "qbr",
        "20261210T100000Z",
        "QBR",
        f"ORGANIZER:mailto:{organizer}@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:ada@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:grace@example.com",
    )


def locations(world: World) -> list[str]:
    state = open_state(world.folder)
    (pairing,) = state.pairings()
    state.close()
    assert pairing.lead is not None
    return [pairing.lead.source] + sorted(loc.source for loc in pairing.locations)


@pytest.mark.parametrize("organizer", ["ada", "grace", "nobody"])
def test_a_shared_meeting_stays_in_step_across_per_source_cycles(world: World, organizer: str) -> None:
    world.feed(calendar(shared(organizer)), "ada")
    world.feed(calendar(shared(organizer)), "grace")
    assert world.run().counts() == {"Create": 1}
    lead = "grace" if organizer == "grace" else "ada"  # the organizer's copy, else the one paired first
    assert locations(world) == [lead, "ada", "grace"]
    writes = world.writes()
    for only in ("ada", "grace", "ada", None, "grace", None):
        report = world.run(only=only)
        assert report.actions == [], (only, report.actions)
        assert locations(world) == [lead, "ada", "grace"]
    assert world.writes() == writes and len(world.activities()) == 1


def test_the_lead_moves_to_the_organizers_copy_once_and_a_deleted_copy_is_dropped_once(world: World) -> None:
    world.feed(calendar(), "ada")
    world.feed(calendar(shared("ada")), "grace")  # the attendee's copy is seen first
    assert world.run().counts() == {"Create": 1}
    assert locations(world) == ["grace", "grace"]
    world.feed(calendar(shared("ada")), "ada")
    assert world.run(only="grace").actions == []
    assert world.run().counts() == {"Settle": 1}  # the organizer's copy leads from now on
    assert locations(world) == ["ada", "ada", "grace"]
    for only in ("grace", "ada", None):
        assert world.run(only=only).actions == []
    world.feed(calendar(), "grace")  # the attendee deletes her copy
    assert world.run(only="ada").actions == []
    assert world.run().counts() == {"Settle": 1}
    assert locations(world) == ["ada", "ada"]
    assert world.run(only="grace").actions == [] and world.run().actions == []

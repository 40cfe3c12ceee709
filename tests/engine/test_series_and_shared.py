"""Series changes with settled slots, and meetings shared by two sources, over whole cycles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox
from syncd.state import StateStore
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
    state = StateStore(world.folder / "state.sqlite")
    (settled,) = [p for p in state.pairings() if p.settled]
    state.close()
    assert settled.id.slot == "20261130T110000Z" and settled.activity_id == week2["id"]

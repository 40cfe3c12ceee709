"""Pruning in whole cycles: a real run forgets the settled pairings long past the window, a dry
run forgets nothing, and a pairing retired while its calendar item stays is kept however old, so
the item is never made into an activity again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.model import OccurrenceId
from syncd.sandbox import Sandbox
from tests.backends import open_state
from tests.engine.test_cycle import NOW, World, by_note, calendar, vevent


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


def pairings(world: World) -> dict[OccurrenceId, str | None]:
    state = open_state(world.folder, read_only=True)
    try:
        return {p.id: p.settled for p in state.pairings()}
    finally:
        state.close()


def test_a_cycle_prunes_what_is_long_past_and_keeps_a_retired_item_still_in_the_calendar(world: World) -> None:
    weekly = vevent("weekly", "20261123T090000Z", "Standup", "RRULE:FREQ=WEEKLY;COUNT=4")
    world.feed(calendar(vevent("one", "20261125T140000Z", "Call"), weekly))
    assert world.run().counts() == {"Create": 5}
    world.box.user().delete(by_note(world, "Call")["id"])
    assert world.run().counts() == {"Settle": 1}
    assert pairings(world)[OccurrenceId("one")] == "deleted"

    world.now = NOW + timedelta(days=200)  # the series' slots are long overdue, "one" too
    dry = world.run(dry_run=True)
    assert len(dry.actions) == 4 and len(pairings(world)) == 5  # a dry run prunes nothing
    assert world.run().counts() == {"Settle": 4}  # overdue past the watch: left as they are in Kizen
    assert pairings(world) == {OccurrenceId("one"): "deleted"}  # settled this cycle and pruned at its end

    moved = (world.now + timedelta(days=3)).strftime("%Y%m%dT%H%M%SZ")
    world.feed(calendar(vevent("one", moved, "Call"), weekly))  # the old item moved into the window
    assert world.run().actions == []  # its retired pairing was kept: never re-created
    assert [a["note"].split("\n")[0] for a in world.open_activities()] == ["Standup"] * 4

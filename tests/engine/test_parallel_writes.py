"""A plan's writes to Kizen sent side by side: lanes by UID, one pace per business, the same result.

The sandbox answers each request after a fixed latency, and counts how many it is answering at
once: with workers, creates overlap; without, they never do; either way Kizen ends up the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import FaultPlan, Sandbox
from tests.engine.test_cycle import World, calendar, vevent
from tests.engine.test_kizen_failures import events


class InFlight:
    """The sandbox's own sleep, wrapped: how many requests it was answering at most at once."""

    def __init__(self, box: Sandbox, latency: float) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()
        self._sleep = box.app.sleep
        box.app.sleep = self.sleep
        box.faults.use(FaultPlan(latency=(latency, latency)))

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self._sleep(seconds)
        finally:
            with self._lock:
                self.now -= 1


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox() as box:
        yield World(tmp_path, box)


def outcome(world: World) -> list[tuple[str, str, str]]:
    return sorted((a["due_datetime"], a["note"], a["activity_object"]["id"]) for a in world.activities())


def test_creates_overlap_with_workers_and_end_as_they_would_in_turn(world: World, tmp_path: Path) -> None:
    world.concurrency = 4
    world.feed(events(16))
    flight = InFlight(world.box, 0.05)
    report = world.run()
    assert report.clean and report.counts() == {"Create": 16}
    assert 2 <= flight.most <= 4  # side by side, and never more than the workers
    assert [o.identity.uid for o in report.outcomes] == [a.desired.id.uid for a in report.actions]  # plan order
    with Sandbox() as box:
        alone = World(tmp_path / "alone", box, concurrency=1)
        alone.folder.mkdir()
        alone.feed(events(16))
        sequential = InFlight(box, 0.01)
        alone.run()
        assert sequential.most == 1 and outcome(alone) == outcome(world)
    assert world.run().counts() == {}  # nothing twice


def test_the_actions_of_one_series_are_applied_in_plan_order_one_at_a_time(world: World) -> None:
    world.concurrency = 8
    singles = [vevent(f"e{n}", f"202612{n + 1:02d}T090000Z", f"Event {n}") for n in range(6)]
    weekly = "RRULE:FREQ=WEEKLY;COUNT=6"
    world.feed(calendar(vevent("weekly", "20261202T100000Z", "Weekly", weekly), *singles))
    InFlight(world.box, 0.02)
    assert world.run().counts() == {"Create": 12}
    world.feed(calendar(vevent("weekly", "20261202T120000Z", "Weekly", weekly), *singles))  # the series moved
    moved = world.run()
    assert moved.clean and moved.counts()["Reschedule"] == 6, moved.counts()
    details = sorted(o.detail for o in moved.outcomes if o.kind == "Reschedule")
    assert details[0] == "re-paired from slot 20261202T100000Z: due, note", details  # only what changed is sent
    weekly_dues = sorted(a["due_datetime"] for a in world.activities() if a["note"].startswith("Weekly"))
    assert weekly_dues == [f"2026-12-{day:02d}T12:00:00Z" for day in (2, 9, 16, 23, 30)] + ["2027-01-06T12:00:00Z"]
    assert world.run().counts() == {}


@pytest.mark.parametrize("workers", [1, 8])
def test_two_actions_on_one_pairing_in_one_cycle_both_hold(world: World, workers: int) -> None:
    """Edited in the calendar and reassigned in Kizen at once: the update and the note that the
    assignee is Kizen's are both kept (each action adds to what the state holds), so the next
    cycle has nothing to send."""
    world.concurrency = workers
    world.feed(calendar(vevent("call", "20261203T100000Z", "Call")))
    world.run()
    (activity,) = world.activities()
    InFlight(world.box, 0.02)
    world.box.user().reassign(activity["id"], "grace@example.com")
    world.feed(calendar(vevent("call", "20261203T100000Z", "Call", "DESCRIPTION:Bring the contract")))
    both = world.run()
    assert both.clean and {"Update", "Settle"} <= set(both.counts()), both.counts()
    after = world.run()
    assert after.counts() == {} and world.box.service.get_scheduled(activity["id"])["employee"]["email"] == (
        "grace@example.com"
    )

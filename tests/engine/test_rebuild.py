"""Rebuilding after a lost state store, interrupted at any point, and safety rails that hold.

ICS feeds written by the tests, the sandbox (in-process, or its data file shared with a real
``syncd run --once`` process), a real state file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.kizen import ActivitiesClient
from syncd.sandbox import Fault
from tests import backends
from tests.backends import open_state
from tests.engine.test_cycle import NOW, World, calendar, vevent, vtodo, world  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """Stands for the process being killed: nothing in syncd catches it."""


def events(count: int, start: datetime = NOW) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return calendar(
        *(vevent(f"e{n}", (start + timedelta(hours=2 + n)).strftime(stamp), f"Event {n}") for n in range(count))
    )


def lose_state(world: World) -> None:
    backends.lose_state(world.folder)


def duplicates(world: World) -> int:
    notes = Counter(a["note"].splitlines()[0] for a in world.activities())
    return sum(n - 1 for n in notes.values())


def paired(world: World) -> int:
    state = open_state(world.folder)
    try:
        return len(state.pairings())
    finally:
        state.close()


def test_a_rebuild_killed_after_some_adoptions_is_finished_by_the_next_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.feed(events(150))
    assert world.run().counts() == {"Create": 150}
    for n in range(30):  # made in Kizen, due before the events: the rebuild reads them first
        world.box.user().create(
            "call", NOW + timedelta(hours=1, minutes=n), note=f"Kizen's own {n}", assignee="ada@example.com"
        )
    lose_state(world)
    reads = 0
    get = ActivitiesClient.get

    def dies_after_70(self: ActivitiesClient, activity_id: object) -> object:
        nonlocal reads
        reads += 1
        if reads > 70:
            raise Killed
        return get(self, activity_id)  # type: ignore[arg-type]

    monkeypatch.setattr(ActivitiesClient, "get", dies_after_70)
    with pytest.raises(Killed):
        world.run()
    monkeypatch.undo()
    assert 0 < paired(world) < 150  # killed half-way through re-pairing
    gets = world.box.app.calls["GET"]
    report = world.run()
    assert "Create" not in report.counts() and duplicates(world) == 0 and len(world.activities()) == 180
    assert paired(world) == 150
    # what the first run read (30 of Kizen's own, 40 paired) is not read again
    assert world.box.app.calls["GET"] - gets <= 180 - 70 + 4
    assert world.run().actions == []


def test_a_rebuild_stopped_by_a_kizen_error_half_way_is_finished_by_the_next_run(world: World) -> None:
    world.feed(events(150))
    world.run()
    lose_state(world)
    faults, reads = world.box.faults, 0
    draw = faults.draw

    def fails_half_way(method: str, path: str) -> Fault | None:
        nonlocal reads
        if method == "GET" and path.startswith("/api/activities/scheduled-activity/"):
            reads += 1
            if reads == 75:  # every retry of this read fails: the request fails
                faults.script(Fault.UNAVAILABLE, method="GET", path="/api/activities/scheduled-activity/", times=10)
        return draw(method, path)

    faults.draw = fails_half_way  # type: ignore[method-assign]
    first = world.run()
    faults.draw = draw  # type: ignore[method-assign]
    faults.clear()
    assert first.kizen_failures and "Create" not in first.counts()
    assert 0 < paired(world) < 150
    report = world.run()
    assert "Create" not in report.counts() and duplicates(world) == 0 and len(world.activities()) == 150
    assert paired(world) == 150 and world.run().actions == []


def test_a_rebuild_by_a_real_process_killed_mid_way_is_finished_by_the_next_run(world: World) -> None:
    world.now = datetime.now(UTC).replace(microsecond=0)  # the process runs on the real clock
    world.feed(events(400, world.now))
    assert world.run().counts() == {"Create": 400}
    lose_state(world)
    config = world.folder / "config.toml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--config", str(config), "run", "--once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None and _saved(world) < 100:
            time.sleep(0.005)  # polling the state file, bounded by the deadline
        assert process.poll() is None, "the process ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert 0 < _saved(world) < 400
    report = world.run()
    assert "Create" not in report.counts() and duplicates(world) == 0 and len(world.activities()) == 400
    assert paired(world) == 400 and world.run().actions == []


def _saved(world: World) -> int:
    """Pairings committed to the state file so far (read beside the process that writes it)."""
    return backends.CURRENT.count(world.folder, "pairings")  # 0 if not made yet


def test_a_healthy_state_makes_no_extra_kizen_request(world: World) -> None:
    world.feed(events(20))
    world.run()
    world.feed(events(21))  # one new event: created without looking for activities made before
    gets = world.box.app.calls["GET"]
    assert world.run().counts() == {"Create": 1}
    assert world.box.app.calls["GET"] - gets <= 2  # the poll's list and the type list, no GET per activity


def test_an_item_quarantined_during_the_rebuild_is_paired_when_it_comes_back(world: World) -> None:
    fine = "BEGIN:VEVENT\nUID:odd\nDTSTAMP:20260101T000000Z\nDTSTART:20261205T090000Z\nSUMMARY:Odd one\nEND:VEVENT\n"
    broken = fine.replace("DTSTART:20261205T090000Z", "DTSTART;TZID=Mars/Olympus:20261205T090000")
    world.feed(events(5).replace("END:VCALENDAR", fine + "END:VCALENDAR"))
    assert world.run().counts() == {"Create": 6}
    lose_state(world)
    world.feed(events(5).replace("END:VCALENDAR", broken + "END:VCALENDAR"))
    report = world.run()
    assert "Create" not in report.counts() and [q[1].uid for q in report.quarantined] == ["odd"]
    world.feed(events(5).replace("END:VCALENDAR", fine + "END:VCALENDAR"))  # mended after the rebuild
    assert "Create" not in world.run().counts() and duplicates(world) == 0 and len(world.activities()) == 6
    assert paired(world) == 6 and world.run().actions == []


# --- safety rails -------------------------------------------------------------------------------


def test_an_emptied_calendar_stays_stopped_on_every_run_until_forced(world: World) -> None:
    world.feed(events(8))
    world.run()
    world.feed(calendar())
    for _ in range(3):
        report = world.run()
        assert "ada" in report.stopped and "Delete" not in report.counts() and len(world.activities()) == 8
    assert "ada" in world.run(dry_run=True).stopped
    forced = world.run(force_delete=True)
    assert forced.counts() == {"Delete": 8} and world.activities() == []
    assert world.run().stopped == {}


def test_a_dry_run_that_sees_the_emptied_calendar_shows_the_stop_and_the_next_run_holds(world: World) -> None:
    world.now = datetime.now(UTC).replace(microsecond=0)  # the command runs on the real clock
    world.feed(events(8, world.now))
    world.run()
    world.feed(calendar())
    result = CliRunner().invoke(cli, ["--config", str(world.folder / "config.toml"), "run", "--once", "--dry-run"])
    assert (
        result.exit_code == 0 and "source ada stopped by a safety rail: the calendar came back empty" in result.output
    )
    report = world.run()
    assert "ada" in report.stopped and len(world.activities()) == 8


def test_a_calendar_that_comes_back_clears_its_stop(world: World) -> None:
    world.feed(events(8))
    world.run()
    world.feed(calendar())
    assert "ada" in world.run().stopped
    world.feed(events(8))
    assert world.run().stopped == {} and len(world.activities()) == 8
    world.feed(events(7))  # one event deleted, once the calendar is back: deleted as usual
    assert world.run().counts() == {"Delete": 1}


def test_a_mass_delete_stays_held_when_the_share_later_drops(world: World) -> None:
    world.feed(events(12))
    world.run()
    kept = calendar(
        *(vevent(f"e{n}", (NOW + timedelta(hours=2 + n)).strftime("%Y%m%dT%H%M%SZ"), f"Event {n}") for n in range(5))
    )
    world.feed(kept)
    report = world.run()
    assert "would delete 7 of 12" in report.stopped["ada"] and len(world.activities()) == 12
    more = [
        vevent(f"n{n}", (NOW + timedelta(days=3, hours=n)).strftime("%Y%m%dT%H%M%SZ"), f"New {n}") for n in range(6)
    ]
    world.feed(kept.replace("END:VCALENDAR", "".join(more) + "END:VCALENDAR"))
    assert world.run().counts() == {"Create": 6}  # 7 of 18 would be under the share: held still
    report = world.run()
    assert "ada" in report.stopped and "Delete" not in report.counts() and len(world.activities()) == 18
    assert "would delete 7 of 12" in world.run(dry_run=True).stopped["ada"]  # a dry run shows the stop
    assert world.run(force_delete=True).counts() == {"Delete": 7}


# --- the journal ----------------------------------------------------------------------------------


def test_a_log_whose_answer_was_lost_is_settled_from_kizen_not_sent_again(world: World) -> None:
    world.feed(calendar(vtodo("todo", "20261201T170000Z", "Send proposal")))
    world.run()
    world.feed(
        calendar(vtodo("todo", "20261201T170000Z", "Send proposal", "STATUS:COMPLETED", "COMPLETED:20261123T100000Z"))
    )
    world.box.faults.script(Fault.DROP_AFTER, method="POST", path="/api/activities/")
    first = world.run()
    assert not first.clean and "may have been applied" in first.failures[0].detail
    second = world.run()
    assert second.actions == [] and second.clean  # the journal found it logged: nothing to do, nothing re-sent
    state = open_state(world.folder)
    (pairing,) = state.pairings()
    assert state.pending_intents() == [] and pairing.settled == "logged"
    assert pairing.settled_reason == "completed in the calendar" and pairing.logged_activity_id is not None
    state.close()
    (activity,) = world.activities()
    assert str(activity["logged_activity_id"]) == pairing.logged_activity_id


def test_a_rebuild_keeps_a_move_made_in_kizen_and_carries_one_made_in_the_calendar(world: World) -> None:
    stamp = "%Y%m%dT%H%M%SZ"
    world.feed(events(3))
    world.run()
    by_title = {a["note"].splitlines()[0]: a for a in world.activities()}
    kizen_time = NOW + timedelta(days=1, hours=5)
    world.box.user().reschedule(by_title["Event 0"]["id"], kizen_time)  # moved in Kizen, the feed unchanged
    assert world.run().counts() == {"Settle": 1}  # the feed is read-only: Kizen's time stands
    state = open_state(world.folder)
    try:  # and the pairing is due then (the poll's span and the overdue watch go by it)
        assert state.pairing_of(by_title["Event 0"]["id"]).due == kizen_time  # type: ignore[union-attr]
    finally:
        state.close()
    lose_state(world)
    calendar_time = NOW + timedelta(days=2)
    moved = vevent("e1", calendar_time.strftime(stamp), "Event 1")  # moved in the calendar while the store was lost
    world.feed(
        calendar(
            vevent("e0", (NOW + timedelta(hours=2)).strftime(stamp), "Event 0"),
            moved,
            vevent("e2", (NOW + timedelta(hours=4)).strftime(stamp), "Event 2"),
        )
    )
    report = world.run()
    assert "Create" not in report.counts() and duplicates(world) == 0
    due = {a["note"].splitlines()[0]: datetime.fromisoformat(a["due_datetime"]) for a in world.activities()}
    assert due["Event 0"] == kizen_time  # the calendar never moved: Kizen's move stands
    assert due["Event 1"] == calendar_time  # the calendar moved since: its time reaches Kizen
    assert not world.run().actions  # and the rebuilt pairings are in step

"""A cycle that cannot use Kizen says so: not clean, Kizen named with the cause, nothing sent.

And failures do not linger: an item that a later run settles (a lost create found by the
journal, an item that syncs fine again) leaves ``syncd status``'s list.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from syncd.config import load
from syncd.kizen import ActivitiesClient, Credentials, http_client
from syncd.runner import Cycle
from syncd.sandbox import Fault, FaultPlan, Sandbox
from syncd.state import open_store
from tests.backends import open_state
from tests.engine.test_cycle import World, calendar, vevent

SCHEDULED = "/api/activities/scheduled-activity"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


def events(count: int) -> str:
    return calendar(*(vevent(f"e{n}", f"202612{n + 1:02d}T090000Z", f"Event {n}") for n in range(count)))


def failures(world: World) -> list[tuple[str, str, str]]:
    state = open_state(world.folder)
    try:
        return [(f.uid, f.kind, f.reason) for f in state.failures()]
    finally:
        state.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_kizen_outage_fails_the_cycle_sends_nothing_and_the_next_cycle_catches_up(world: World) -> None:
    world.feed(events(2))
    assert world.run().clean
    world.feed(events(3))
    world.box.faults.use(FaultPlan(rates={Fault.UNAVAILABLE: 1.0}))
    writes = world.writes()
    report = world.run()
    assert not report.clean and report.outcomes == [] and world.writes() == writes
    (failure,) = report.kizen_failures
    assert failure.kind == "unavailable" and failure.step == "reading the scheduled activities"
    assert "503" in failure.reason and report.held == 1  # the new event's create waits
    world.box.faults.use(FaultPlan())
    caught_up = world.run()
    assert caught_up.clean and caught_up.counts() == {"Create": 1} and len(world.activities()) == 3


def test_a_closed_port_on_a_fresh_state_fails_adoption_and_creates_nothing(world: World) -> None:
    world.feed(events(2))
    world.url = f"http://127.0.0.1:{closed_port()}"
    report = world.run()
    assert not report.clean and report.outcomes == [] and report.held == 0
    (failure,) = report.kizen_failures
    assert failure.kind == "unavailable" and "state store was lost" in failure.step
    world.url = None
    assert world.run().counts() == {"Create": 2}


def test_refused_credentials_are_a_kizen_failure(world: World) -> None:
    world.feed(events(2))
    world.run(dry_run=True)  # writes the config file
    config = load(world.folder / "config.toml")
    business, user = world.box.world.business, world.box.world.api_user
    http = http_client("http://sandbox.invalid", transport=world.box.transport())
    wrong = ActivitiesClient(http, Credentials(SecretStr("not-the-key"), str(business.id), str(user.id)))
    state = open_store(config.sync.state)
    try:
        report = Cycle(config, state, wrong, clock=lambda: world.now).run()
    finally:
        state.close()
        http.close()
    assert not report.clean and world.activities() == []
    assert [f.kind for f in report.kizen_failures] == ["auth"] and "401" in report.kizen_failures[0].reason


def test_an_outage_in_the_middle_of_the_actions_stops_sending_after_three(world: World) -> None:
    world.concurrency = 1
    world.feed(events(10))
    world.box.faults.script(Fault.UNAVAILABLE, method="POST", path=SCHEDULED, times=100)
    report = world.run()
    assert len(report.failures) == 3 and report.held == 7
    assert [f.step for f in report.kizen_failures] == ["sending the planned changes"]
    world.box.faults.clear()
    assert world.run().counts() == {"Create": 10} and len(world.activities()) == 10


def test_an_outage_stops_every_worker_once_three_in_a_row_failed(world: World) -> None:
    world.concurrency = 4
    world.feed(events(30))
    world.box.faults.script(Fault.UNAVAILABLE, method="POST", path=SCHEDULED, times=1000)
    report = world.run()
    planned = len(report.actions)
    # the third failure halts the lanes; at most the other workers' actions in flight fail too
    assert planned == 30 and 3 <= len(report.failures) <= 3 + 3 and report.held == planned - len(report.failures)
    assert [f.step for f in report.kizen_failures] == ["sending the planned changes"]
    world.box.faults.clear()
    assert world.run().counts() == {"Create": planned} and len(world.activities()) == planned


def test_one_unreadable_activity_fails_alone_and_many_are_a_kizen_failure(world: World) -> None:
    world.feed(events(4))
    world.run()
    ids = [a["id"] for a in world.activities()]
    for activity_id in ids:  # completed in Kizen: no longer listed as open, so each is read alone
        world.box.user().complete(activity_id)
    world.box.faults.script(Fault.UNAVAILABLE, method="GET", path=f"{SCHEDULED}/{ids[0]}", times=5)
    one = world.run()
    assert one.kizen_failures == [] and one.counts() == {"Settle": 3}
    (failed,) = one.failures
    assert failed.kind == "Read" and ids[0] in failed.detail and "503" in failed.detail
    assert [uid for uid, _, _ in failures(world)] == [failed.identity.uid]
    assert world.run().clean and failures(world) == []  # read again, settled: the failure is gone


def test_many_unreadable_activities_are_a_kizen_failure(world: World) -> None:
    world.feed(events(4))
    world.run()
    for activity in world.activities():
        world.box.user().complete(activity["id"])
    world.box.faults.script(Fault.UNAVAILABLE, method="GET", path=f"{SCHEDULED}/", times=100)
    report = world.run()
    assert report.failures == [] and report.outcomes == []
    (failure,) = report.kizen_failures
    assert failure.step == "reading the paired activities (3 failed)"


def test_a_lost_create_found_by_the_journal_leaves_the_failed_list(world: World) -> None:
    world.feed(events(3))
    world.box.faults.script(Fault.DROP_AFTER, method="POST", path=SCHEDULED, times=2)
    first = world.run()
    assert len(first.failures) == 2 and len(failures(world)) == 2
    second = world.run()
    assert second.clean and second.actions == [] and len(world.activities()) == 3
    assert failures(world) == []


def test_a_failed_item_whose_action_a_stop_held_back_stays_listed(world: World) -> None:
    world.concurrency = 1  # one create at a time: all five attempts are the first one's
    world.feed(events(3))
    world.box.faults.script(Fault.RATE_LIMITED, method="POST", path=SCHEDULED, times=5)  # every attempt of one
    assert len(world.run().failures) == 1
    (failed,) = failures(world)
    stop = threading.Event()
    stop.set()  # asked to stop before the first action: nothing is applied
    report = world.run(stop=stop)
    assert [a.desired.id.uid for a in report.actions] == [failed[0]] and report.outcomes == []  # type: ignore[attr-defined]
    assert failures(world) == [failed]  # still waiting, so still failed
    assert world.run().counts() == {"Create": 1} and failures(world) == []


def test_a_lost_create_of_one_occurrence_found_by_the_journal_leaves_the_failed_list(world: World) -> None:
    world.feed(calendar(vevent("weekly", "20261123T090000Z", "Pipeline review", "RRULE:FREQ=WEEKLY;COUNT=3")))
    world.box.faults.script(Fault.DROP_AFTER, method="POST", path=SCHEDULED, times=1)
    assert len(world.run().failures) == 1
    state = open_state(world.folder)
    try:
        (failed,) = state.failures()
    finally:
        state.close()
    assert failed.uid == "weekly" and failed.slot != ""  # the occurrence, not the series
    second = world.run()
    assert second.clean and second.actions == [] and len(world.activities()) == 3
    assert failures(world) == []


def test_random_faults_once_converged_leave_no_failure_listed(world: World) -> None:
    world.feed(events(25))
    rates = {Fault.DROP_AFTER: 0.15, Fault.UNAVAILABLE: 0.05, Fault.RATE_LIMITED: 0.05}
    world.box.faults.use(FaultPlan(seed=7, rates=rates))
    for _ in range(3):
        world.run()
    assert sum(1 for _, _, fault in world.box.faults.injected if fault is Fault.DROP_AFTER) > 2
    world.box.faults.use(FaultPlan())
    world.run()
    assert world.run().clean and len(world.activities()) == 25 and failures(world) == []


def test_a_quarantined_item_fixed_or_removed_leaves_the_list(world: World) -> None:
    def broken(uid: str) -> str:
        return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\nDTSTART:20261203T090000Z\nRRULE:FREQ=NOPE\nEND:VEVENT\n"

    world.feed(calendar(vevent("ok", "20261203T140000Z", "Call"), broken("bad"), broken("worse")))
    world.run()
    assert sorted((uid, kind) for uid, kind, _ in failures(world)) == [("bad", "quarantined"), ("worse", "quarantined")]
    fixed = vevent("bad", "20261203T090000Z", "Fixed", "RRULE:FREQ=WEEKLY;COUNT=2")
    world.feed(calendar(vevent("ok", "20261203T140000Z", "Call"), fixed))  # one fixed, one removed
    assert world.run().counts() == {"Create": 2} and failures(world) == []


def test_the_state_remembers_kizen_as_the_last_run_found_it(world: World, tmp_path: Path) -> None:
    world.feed(events(1))
    world.run()
    world.box.faults.use(FaultPlan(rates={Fault.UNAVAILABLE: 1.0}))
    world.run()
    state = open_state(tmp_path)
    try:
        found = state.component("kizen")
        assert found is not None and found.last_success is not None and "503" in (found.last_error or "")
    finally:
        state.close()


def last_run(world: World, source: str = "ada") -> dict[str, object]:
    state = open_state(world.folder)
    try:
        return state.last_runs()[source]
    finally:
        state.close()


def test_each_run_records_its_status_its_changes_and_kizens_error_first(world: World) -> None:
    world.feed(events(2))
    world.run()
    assert (last_run(world)["status"], last_run(world)["counts"]) == ("ok", {"Create": 2})
    world.run()
    assert (last_run(world)["status"], last_run(world)["counts"]) == ("ok", {})  # nothing changed, nothing counted
    world.feed(events(3))
    world.box.faults.use(FaultPlan(rates={Fault.UNAVAILABLE: 1.0}))
    report = world.run()
    run = last_run(world)
    assert run["status"] == "failed" and run["counts"] == {}
    assert run["errors"][0] == report.kizen_error  # type: ignore[index]
    world.box.faults.use(FaultPlan())
    world.feed(calendar())  # emptied: the rail stops the deletions
    assert "ada" in world.run().stopped
    assert last_run(world)["status"] == "stopped"

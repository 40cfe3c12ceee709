"""Whole sync cycles: ICS feeds written by the tests, the sandbox in-process, a real state file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import StateError
from syncd.kizen import ActivitiesClient
from syncd.model import OccurrenceId
from syncd.sandbox import Fault, FaultPlan, Sandbox
from syncd.state import Settled, open_store
from syncd.sync.report import Report
from tests import backends
from tests.backends import lose_state, open_state, state_of
from tests.cycles import run_cycle

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def vevent(uid: str, start: str, summary: str = "Meeting", *extra: str) -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART:{start}", f"SUMMARY:{summary}", *extra]
    return "BEGIN:VEVENT\n" + "\n".join(lines) + "\nEND:VEVENT\n"


def vtodo(uid: str, due: str, summary: str, *extra: str) -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DUE:{due}", f"SUMMARY:{summary}", *extra]
    return "BEGIN:VTODO\n" + "\n".join(lines) + "\nEND:VTODO\n"


def calendar(*items: str) -> str:
    return "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\n" + "".join(items) + "END:VCALENDAR\n"


@dataclass
class World:
    """A config in a temp folder: one ICS source (ada), the sandbox, a state file, a fixed clock."""

    folder: Path
    box: Sandbox
    policy: str = "calendar"
    now: datetime = NOW
    feeds: dict[str, Path] = field(default_factory=dict)
    url: str | None = None  # the sandbox's loopback server, if the test uses one
    concurrency: int | None = None  # [kizen] concurrency, when not the default
    teams: dict[str, str] = field(default_factory=dict)  # source -> its team, where one is named

    def feed(self, text: str, name: str = "ada") -> None:
        path = self.folder / f"{name}.ics"
        path.write_text(text)
        self.feeds[name] = path

    def config_text(self) -> str:
        sources = "".join(
            f'[[sources]]\nname = "{name}"\ntype = "ics"\nowner = "{name}@example.com"\nurl = "{path.name}"\n'
            f'conflict_policy = "{self.policy}"\n' + (f'team = "{self.teams[name]}"\n' if name in self.teams else "")
            for name, path in self.feeds.items()
        )
        mappings = ROOT / "mappings" / "default.toml"
        kizen = f"[kizen]\nconcurrency = {self.concurrency}\n" if self.concurrency else ""
        return (
            kizen + '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
            f'[sync]\nstate = "{state_of(self.folder)}"\nmappings = ["{mappings}"]\ninternal_domains = ["example.com"]\n'
            'zone = "Europe/Berlin"\n' + sources
        )

    def run(self, **options: Any) -> Report:
        path = self.folder / "config.toml"
        path.write_text(self.config_text())
        return run_cycle(path, self.box, self.now, url=self.url, **options)

    def activities(self) -> list[dict[str, Any]]:
        return [self.box.service.get_scheduled(item["id"]) for item in self.box.service.list_scheduled({}, 0, 1000)[1]]

    def open_activities(self) -> list[dict[str, Any]]:
        return [a for a in self.activities() if a["completed_at"] is None]

    def writes(self) -> int:
        return sum(self.box.app.calls[m] for m in ("POST", "PATCH", "PUT", "DELETE"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


def by_note(world: World, text: str) -> dict[str, Any]:
    (found,) = [a for a in world.activities() if a["note"].startswith(text)]
    return found


def test_first_run_creates_and_a_second_plans_nothing_and_writes_nothing(world: World) -> None:
    world.feed(
        calendar(
            vevent(
                "single",
                "20261203T140000Z",
                "Intro call",
                "ATTENDEE:mailto:charles@customer.example",
                "ORGANIZER:mailto:ada@example.com",
            ),
            vevent("weekly", "20261123T090000Z", "Pipeline review", "RRULE:FREQ=WEEKLY;COUNT=3"),
            vevent("past", "20261001T090000Z", "Long ago"),
        )
    )
    first = world.run()
    assert first.clean and first.counts()["Create"] == 4
    intro = by_note(world, "Intro call")
    assert intro["due_datetime"] == intro["original_due_datetime"] == "2026-12-03T14:00:00Z"
    assert intro["employee"]["email"] == "ada@example.com"
    assert [e["entity"]["email"] for e in intro["associated_entities"]] == ["charles@customer.example"]
    assert "syncd: ada/" in intro["note"].splitlines()[-1]
    weekly = sorted(a["due_datetime"] for a in world.activities() if a["note"].startswith("Pipeline"))
    assert weekly == ["2026-11-23T09:00:00Z", "2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z"]
    writes = world.writes()
    second = world.run()
    assert second.actions == [] and second.outcomes == [] and world.writes() == writes


def test_a_moved_event_is_rescheduled_keeping_its_original_due(world: World) -> None:
    world.feed(calendar(vevent("single", "20261203T140000Z", "Intro call")))
    world.run()
    world.feed(calendar(vevent("single", "20261204T100000Z", "Intro call")))
    report = world.run()
    assert report.counts() == {"Update": 1}
    moved = by_note(world, "Intro call")
    assert moved["due_datetime"] == "2026-12-04T10:00:00Z" and moved["original_due_datetime"] == "2026-12-03T14:00:00Z"


def test_a_moved_occurrence_of_a_series_keeps_its_slot_as_original_due(world: World) -> None:
    series = vevent("weekly", "20261123T090000Z", "Pipeline review", "RRULE:FREQ=WEEKLY;COUNT=3")
    world.feed(calendar(series))
    world.run()
    override = vevent("weekly", "20261201T150000Z", "Pipeline review", "RECURRENCE-ID:20261130T090000Z")
    world.feed(calendar(series, override))
    assert world.run().counts() == {"Update": 1}
    dues = sorted((a["original_due_datetime"], a["due_datetime"]) for a in world.activities())
    assert dues[1] == ("2026-11-30T09:00:00Z", "2026-12-01T15:00:00Z") and len(dues) == 3


def test_cancelled_and_deleted_items_delete_their_activities(world: World) -> None:
    world.feed(
        calendar(
            vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=3"),
            vevent("one", "20261203T140000Z", "Call"),
        )
    )
    world.run()
    world.feed(
        calendar(vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20261130T090000Z"))
    )
    report = world.run()
    assert report.counts() == {"Delete": 2}
    assert sorted(a["due_datetime"] for a in world.activities()) == ["2026-11-23T09:00:00Z", "2026-12-07T09:00:00Z"]
    assert settled_states(world) == {"one": Settled.REMOVED, "weekly 20261130T090000Z": Settled.REMOVED}
    state = open_state(world.folder)
    try:
        reasons = {p.settled_reason for p in state.pairings() if p.settled}
    finally:
        state.close()
    assert reasons == {"gone from the calendar"}


def test_an_activity_deleted_in_kizen_is_never_recreated(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.box.user().delete(by_note(world, "Call")["id"])
    assert world.run().counts() == {"Settle": 1}
    assert world.run().actions == [] and world.activities() == []
    assert settled_states(world) == {"one": Settled.DELETED}


def settled_states(world: World) -> dict[str, Settled]:
    """Each settled pairing's state, by its identity (the slot after the UID)."""
    state = open_state(world.folder)
    try:
        return {f"{p.id.uid} {p.id.slot}".strip(): p.settled for p in state.pairings() if p.settled}
    finally:
        state.close()


def test_an_activity_completed_in_kizen_settles_and_is_not_recreated(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.box.user().complete(by_note(world, "Call")["id"])
    assert world.run().counts() == {"Settle": 1}  # an ICS feed cannot be written: no write-back
    assert world.run().actions == [] and len(world.activities()) == 1


def test_a_kizen_move_on_a_read_only_calendar_stands_and_a_later_calendar_move_flows(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    activity = by_note(world, "Call")
    world.box.user().reschedule(activity["id"], datetime(2026, 12, 5, 9, tzinfo=UTC))
    assert world.run().counts() == {"Settle": 1}
    assert by_note(world, "Call")["due_datetime"] == "2026-12-05T09:00:00Z"
    assert world.run().actions == []
    world.feed(calendar(vevent("one", "20261206T080000Z", "Call")))
    assert world.run().counts() == {"Update": 1}
    assert by_note(world, "Call")["due_datetime"] == "2026-12-06T08:00:00Z"


def test_both_sides_moved_is_a_conflict_settled_by_the_calendar_policy(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.box.user().reschedule(by_note(world, "Call")["id"], datetime(2026, 12, 5, 9, tzinfo=UTC))
    world.feed(calendar(vevent("one", "20261204T140000Z", "Call")))
    report = world.run()
    assert report.counts() == {"Update": 1, "RecordConflict": 1}
    assert by_note(world, "Call")["due_datetime"] == "2026-12-04T14:00:00Z"
    assert world.run().actions == []


def test_a_manual_conflict_waits_for_a_decision_then_applies_it(world: World) -> None:
    world.policy = "manual"
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.box.user().reschedule(by_note(world, "Call")["id"], datetime(2026, 12, 5, 9, tzinfo=UTC))
    world.feed(calendar(vevent("one", "20261204T140000Z", "Call")))
    assert world.run().counts() == {"RecordConflict": 1}
    assert by_note(world, "Call")["due_datetime"] == "2026-12-05T09:00:00Z"
    state = open_state(world.folder)
    (conflict,) = state.conflicts(open_only=True)
    state.resolve_conflict(conflict.id, "calendar")
    state.close()
    assert world.run().counts() == {"Update": 1}
    assert by_note(world, "Call")["due_datetime"] == "2026-12-04T14:00:00Z"
    assert world.run().actions == []


def test_a_note_edited_in_kizen_is_left_alone_from_then_on(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.box.user().edit_note(by_note(world, "Call")["id"], "Call: bring the contract")
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call with Charles")))
    writes = world.writes()
    report = world.run()
    # nothing was sent (the note is Kizen's now), so nothing counts as updated: the summary says no change
    assert report.counts() == {"Update": 1} and report.changes() == {} and world.writes() == writes
    (outcome,) = report.outcomes
    assert outcome.kind == "Update" and not outcome.changed and outcome.detail == "nothing sent: note left to Kizen"
    assert by_note(world, "Call")["note"] == "Call: bring the contract"
    assert world.run().actions == []
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call with Charles and Grace")))
    again = world.run()  # the second calendar edit: the note is still theirs, nothing is sent
    assert again.counts() == {"Settle": 1} and again.clean
    assert by_note(world, "Call")["note"] == "Call: bring the contract"


def test_a_todo_completed_in_the_calendar_is_logged_once(world: World) -> None:
    world.feed(calendar(vtodo("todo", "20261201T170000Z", "Send proposal")))
    world.run()
    world.feed(
        calendar(vtodo("todo", "20261201T170000Z", "Send proposal", "STATUS:COMPLETED", "COMPLETED:20261123T100000Z"))
    )
    assert world.run().counts() == {"Log": 1}
    (activity,) = world.activities()
    assert activity["logged_activity_id"] is not None
    assert_logged(world, "todo", activity, "completed in the calendar")
    assert world.run().actions == []


def test_a_log_kizen_refuses_is_journaled_as_failed_and_not_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone completes the activity in Kizen between the poll and the log: Kizen refuses the
    log (already completed); the intent is failed, not pending, and the next run logs nothing."""
    world.feed(calendar(vtodo("todo", "20261201T170000Z", "Send proposal")))
    world.run()
    (activity,) = world.activities()
    log = ActivitiesClient.log

    def raced(self: ActivitiesClient, activity_type: Any, request: Any) -> Any:
        world.box.user().complete(activity["id"])
        return log(self, activity_type, request)

    monkeypatch.setattr(ActivitiesClient, "log", raced)
    world.feed(
        calendar(vtodo("todo", "20261201T170000Z", "Send proposal", "STATUS:COMPLETED", "COMPLETED:20261123T100000Z"))
    )
    refused = world.run()
    monkeypatch.undo()
    (failure,) = refused.failures
    assert failure.kind == "Log" and "already completed" in failure.detail
    ((status, outcome),) = backends.CURRENT.rows(world.folder, "SELECT status, outcome FROM journal WHERE kind = 'log'")
    assert status == "failed" and "already completed" in json.loads(outcome)["error"]
    assert "Log" not in world.run().counts()


def assert_logged(world: World, uid: str, activity: dict[str, Any], reason: str) -> None:
    """The pairing is settled as logged, with Kizen's logged activity and the reason, and is not
    to be written back (syncd logged it: the calendar already shows it done); its intent is done."""
    state = open_state(world.folder)
    try:
        pairing = state.pairing(OccurrenceId(uid))
    finally:
        state.close()
    assert pairing is not None and pairing.settled is Settled.LOGGED and pairing.settled_reason == reason
    assert pairing.logged_activity_id == activity["logged_activity_id"] and pairing.written_back
    ((status, payload, activity_id, outcome),) = backends.CURRENT.rows(
        world.folder, f"SELECT status, payload, activity_id, outcome FROM journal WHERE kind = 'log' AND uid = '{uid}'"
    )
    assert (status, activity_id) == ("done", activity["id"])
    assert json.loads(payload) == {"activity_id": activity["id"], "reason": reason, "source": "ada"}
    assert json.loads(outcome) == {"logged_activity_id": activity["logged_activity_id"]}


def test_a_create_whose_answer_was_lost_is_found_not_duplicated(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.box.faults.script(Fault.DROP_AFTER, method="POST", path="/api/activities/scheduled-activity")
    first = world.run()
    assert not first.clean and "may have been applied" in first.failures[0].detail
    assert len(world.activities()) == 1
    second = world.run()
    assert second.actions == [] and len(world.activities()) == 1  # found by its provenance line


def test_a_create_that_never_arrived_is_sent_again(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.box.faults.script(Fault.DROP_BEFORE, method="POST", path="/api/activities/scheduled-activity")
    assert not world.run().clean and world.activities() == []
    assert world.run().counts() == {"Create": 1} and len(world.activities()) == 1


def test_an_emptied_feed_stops_its_source_instead_of_deleting(world: World) -> None:
    world.feed(calendar(*(vevent(f"e{n}", f"202612{n + 1:02d}T090000Z", f"Event {n}") for n in range(12))))
    world.run()
    world.feed(calendar())
    report = world.run()
    assert "ada" in report.stopped and len(world.activities()) == 12
    forced = world.run(force_delete=True)
    assert forced.counts() == {"Delete": 12} and world.activities() == []


def test_a_dry_run_writes_nothing(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    report = world.run(dry_run=True)
    assert len(report.actions) == 1 and report.outcomes == [] and world.activities() == []
    assert world.run().counts() == {"Create": 1}


def test_a_failing_source_does_not_stop_the_others(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")), "ada")
    world.feed(calendar(vevent("two", "20261203T150000Z", "Demo")), "grace")
    world.feeds["grace"].write_text("<html>not a calendar</html>")
    report = world.run()
    assert report.counts() == {"Create": 1} and "grace" in report.failed_sources and not report.clean


def test_an_item_kizen_refuses_fails_alone_and_is_retried(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call"), vtodo("todo", "20261201T170000Z", "Chase")))
    mappings = world.folder / "mappings.toml"
    mappings.write_text(
        '[[rule]]\nmatch = { kind = "VTODO" }\nset = { activity_type = "Nonexistent" }\n[default]\nactivity_type = "Meeting"\n'
    )
    world.config_text = lambda: World.config_text(world).replace(str(ROOT / "mappings" / "default.toml"), str(mappings))  # type: ignore[method-assign]
    report = world.run()
    assert report.counts() == {"Create": 1}
    (failure,) = report.failures
    assert failure.identity.uid == "todo" and "no activity type 'Nonexistent'" in failure.detail
    assert len(world.run().failures) == 1  # retried next run, still failing, still alone


def test_a_second_sync_is_refused_naming_the_holder(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    other = open_state(tmp_path)
    with state.lock("run --once"), pytest.raises(StateError, match=r"another sync is running \(pid \d+ .*run --once"):
        with other.lock("run --once"):
            pass
    with other.lock("run --once"):  # released: the next one gets it
        pass
    state.close()
    other.close()


def test_the_window_moves_with_the_clock(world: World) -> None:
    world.feed(calendar(vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY")))
    assert world.run().counts()["Create"] == 9
    world.now = NOW + timedelta(days=7)
    assert world.run().counts() == {"Create": 1}  # the next week entered; the first left and is not deleted
    assert len(world.activities()) == 10


def test_one_meeting_in_two_calendars_is_one_activity_led_by_the_organizer(world: World) -> None:
    meeting = vevent(
        "qbr",
        "20261210T100000Z",
        "QBR",
        "ORGANIZER:mailto:ada@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:grace@example.com",
    )
    world.feed(calendar(meeting), "grace")
    world.feed(calendar(meeting.replace("SUMMARY:QBR", "SUMMARY:QBR (organizer's copy)")), "ada")
    assert world.run().counts() == {"Create": 1}
    (activity,) = world.activities()
    assert activity["note"].startswith("QBR (organizer's copy)") and activity["employee"]["email"] == "ada@example.com"
    assert world.run(only="grace").actions == []  # a partial run never creates what another source leads
    world.feed(calendar(), "grace")  # the attendee deletes her copy: the activity follows the organizer's
    writes = world.writes()
    assert world.run().counts() == {"Settle": 1} and world.writes() == writes and len(world.activities()) == 1
    assert world.run().actions == []


def test_a_shifted_series_is_rescheduled_not_recreated(world: World) -> None:
    world.feed(calendar(vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=4")))
    world.run()
    before = {a["id"]: a["original_due_datetime"] for a in world.activities()}
    world.feed(calendar(vevent("weekly", "20261123T100000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=4")))
    report = world.run()
    assert report.counts() == {"Reschedule": 4}
    after = sorted((a["original_due_datetime"], a["due_datetime"]) for a in world.activities())
    assert {a["id"] for a in world.activities()} == set(before)
    assert after[0] == ("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")
    assert after[3] == ("2026-12-14T09:00:00Z", "2026-12-14T10:00:00Z")
    assert world.run().actions == []


def test_a_shorter_series_deletes_the_extra_and_a_longer_one_creates_more(world: World) -> None:
    world.feed(calendar(vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=3")))
    world.run()
    world.feed(calendar(vevent("weekly", "20261124T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=2")))
    assert world.run().counts() == {"Reschedule": 2, "Delete": 1}
    world.feed(calendar(vevent("weekly", "20261125T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=4")))
    assert world.run().counts() == {"Reschedule": 2, "Create": 2}
    assert len(world.activities()) == 4


def test_a_single_item_that_becomes_a_series_keeps_its_activity(world: World) -> None:
    world.feed(calendar(vevent("call", "20261203T140000Z", "Call")))
    world.run()
    (first,) = world.activities()
    world.feed(calendar(vevent("call", "20261203T140000Z", "Call", "RRULE:FREQ=WEEKLY;COUNT=3")))
    assert world.run().counts() == {"Reschedule": 1, "Create": 2}
    assert first["id"] in {a["id"] for a in world.activities()} and len(world.activities()) == 3
    assert world.run().actions == []


def test_a_lost_state_store_adopts_instead_of_duplicating(world: World) -> None:
    world.feed(
        calendar(
            vevent("weekly", "20261123T090000Z", "Review", "RRULE:FREQ=WEEKLY;COUNT=3"),
            vevent("call", "20261203T140000Z", "Call"),
            vevent("done", "20261204T140000Z", "Done deal"),
        )
    )
    world.run()
    world.box.user().complete(by_note(world, "Done deal")["id"])
    world.box.user().create("call", datetime(2026, 12, 5, 9, tzinfo=UTC), note="Made in Kizen")
    lose_state(world.folder)
    gets = world.box.app.calls["GET"]
    report = world.run()
    assert "Create" not in report.counts() and len(world.activities()) == 6
    assert report.counts() == {"Settle": 1}  # the completed one settles; the rest are in step
    assert world.box.app.calls["GET"] - gets <= 6 + 2 + 3  # one GET per activity, the lists, the team
    world.feed(calendar(vevent("call", "20261203T150000Z", "Call")))
    world.run()
    assert by_note(world, "Call")["due_datetime"] == "2026-12-03T15:00:00Z"


@pytest.mark.parametrize("transport", ["in-process", "loopback"])
def test_faults_during_a_500_item_sync_lose_nothing_and_duplicate_nothing(world: World, transport: str) -> None:
    if transport == "loopback":
        world.url = world.box.serve().url
    events = [
        vevent(f"e{n}", (NOW + timedelta(hours=2 + n)).strftime("%Y%m%dT%H%M%SZ"), f"Event {n}") for n in range(500)
    ]
    world.feed(calendar(*events))
    rates = {
        Fault.RATE_LIMITED: 0.05,
        Fault.UNAVAILABLE: 0.04,
        Fault.SERVER_ERROR: 0.02,
        Fault.DROP_AFTER: 0.03,
        Fault.DROP_BEFORE: 0.02,
    }
    world.box.faults.use(FaultPlan(seed=42, rates=rates))
    runs = [world.run() for _ in range(6)]
    assert sum(1 for _, _, fault in world.box.faults.injected if fault is Fault.DROP_AFTER) > 5
    world.box.faults.use(FaultPlan())
    final = world.run()
    assert final.clean
    activities = world.activities()
    notes = [a["note"].splitlines()[0] for a in activities]
    assert len(activities) == 500 and len(set(notes)) == 500, (len(activities), len(set(notes)))
    assert world.run().actions == []
    assert any(not r.clean for r in runs)


def test_past_events_are_logged_once_when_the_source_asks_for_it(world: World) -> None:
    world.feed(
        calendar(
            vevent("call", "20261122T140000Z", "Call", "DURATION:PT30M"), vevent("later", "20261125T140000Z", "Later")
        )
    )
    original = world.config_text
    world.config_text = lambda: original().replace(
        'conflict_policy = "calendar"\n', 'conflict_policy = "calendar"\nlog_past_events = true\n'
    )  # type: ignore[method-assign]
    assert world.run().counts() == {"Create": 2}
    world.now = NOW + timedelta(hours=3)  # the call has ended, the other has not
    assert world.run().counts() == {"Log": 1}
    assert by_note(world, "Call")["logged_activity_id"] is not None
    assert_logged(world, "call", by_note(world, "Call"), "the event happened")
    assert by_note(world, "Later")["logged_activity_id"] is None
    assert world.run().actions == []
    world.config_text = original  # type: ignore[method-assign]
    world.now = NOW + timedelta(days=4)
    assert world.run().actions == []  # off by default: an ended event is left scheduled


def test_a_pairing_overdue_past_the_watch_is_left_as_it_is(world: World) -> None:
    world.feed(calendar(vevent("one", "20261123T090000Z", "Call")))
    world.run()
    world.now = NOW + timedelta(days=95)
    report = world.run()
    assert report.counts() == {"Settle": 1} and "overdue for over 90 days" in report.outcomes[0].detail
    assert world.run().actions == [] and len(world.open_activities()) == 1


def test_a_kizen_400_fails_that_item_only_with_kizens_message(tmp_path: Path) -> None:
    from syncd.sandbox import load_world

    default = load_world()
    types = tuple(t.model_copy(update={"enabled": t.api_name != "follow_up"}) for t in default.activity_types)
    with Sandbox(default.model_copy(update={"activity_types": types}), data=tmp_path / "sandbox.sqlite") as box:
        world = World(tmp_path, box)
        world.feed(calendar(vevent("one", "20261203T140000Z", "Call"), vtodo("todo", "20261201T170000Z", "Chase")))
        report = world.run()
        assert report.counts() == {"Create": 1}
        (failure,) = report.failures
        assert failure.identity.uid == "todo" and "400 This activity type is disabled." in failure.detail
        state = open_state(tmp_path)
        (recorded,) = state.failures("ada")
        state.close()
        assert recorded.uid == "todo" and "disabled" in recorded.reason


def test_an_occurrence_moved_beyond_the_window_is_followed(world: World) -> None:
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call")))
    world.run()
    world.feed(calendar(vevent("one", "20270310T140000Z", "Call")))  # past the 60-day horizon
    assert world.run().counts() == {"Update": 1}
    assert by_note(world, "Call")["due_datetime"] == "2027-03-10T14:00:00Z"
    assert world.run().actions == []


def test_a_long_run_advances_a_progress_bar_once_per_action(world: World) -> None:
    class Bar:
        def __init__(self, total: int) -> None:
            self.total, self.done = total, 0

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def update(self, steps: int) -> None:
            self.done += steps

    bars: list[Bar] = []

    def progress(total: int) -> Bar:
        bars.append(Bar(total))
        return bars[-1]

    world.feed(calendar(*(vevent(f"e{n}", f"202612{n % 28 + 1:02d}T0{n % 9}0000Z", f"Event {n}") for n in range(25))))
    path = world.folder / "config.toml"
    path.write_text(world.config_text())
    from syncd.config import load as load_config
    from syncd.runner import Cycle
    from syncd.wiring import sandbox_client

    config = load_config(path)
    state = open_store(config.sync.state)
    client = sandbox_client(world.box)
    try:
        Cycle(config, state, client, clock=lambda: NOW, progress=progress).run()
    finally:
        client.http.close()
        state.close()
    assert [(b.total, b.done) for b in bars] == [(25, 25)]


def test_unknown_contacts_are_left_off_and_counted(world: World) -> None:
    people = ("ATTENDEE:mailto:charles@customer.example", "ATTENDEE:mailto:stranger@elsewhere.example")
    world.feed(calendar(vevent("one", "20261203T140000Z", "Call", *people)))
    report = world.run()
    assert report.counts() == {"Create": 1} and report.unknown_contacts == 1
    assert [e["entity"]["email"] for e in by_note(world, "Call")["associated_entities"]] == ["charles@customer.example"]


def test_each_sources_skips_are_counted_by_reason_for_status_and_forgotten_once_gone(world: World) -> None:
    free = vevent("free", "20261203T090000Z", "Lunch", "TRANSP:TRANSPARENT")
    world.feed(calendar(free, vevent("busy", "20261203T140000Z", "Call")), "ada")
    world.feed(calendar(vevent("g1", "20261204T140000Z", "Demo")), "grace")

    def skipped() -> dict[str, str | None]:
        state = open_state(world.folder)
        try:
            return {name: state.lookup("skipped", name) for name in ("ada", "grace")}
        finally:
            state.close()

    assert world.run().counts() == {"Create": 2}
    assert skipped() == {"ada": '{"marked free, not a commitment": 1}', "grace": "{}"}
    world.feed(calendar(vevent("busy", "20261203T140000Z", "Call")), "ada")
    world.run()
    assert skipped() == {"ada": "{}", "grace": "{}"}

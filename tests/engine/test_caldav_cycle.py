"""Sync cycles against a real Radicale and a real Xandikos: write-back of logged entries and moves made in Kizen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.sandbox import Sandbox
from syncd.state import Settled
from syncd.sync.report import Report
from tests.backends import open_state, pairings_in, state_of
from tests.connectors.radicale import Radicale, mkcalendar, put, quiet
from tests.connectors.xandikos import DavServer, Xandikos
from tests.cycles import run_cycle
from tests.secretfiles import write_secret

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    quiet()
    with Radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="module")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xandikos]:
    with Xandikos(tmp_path_factory.mktemp("xandikos")) as server:
        yield server


class Setup:
    def __init__(self, folder: Path, dav: DavServer, box: Sandbox, loopback: bool) -> None:
        self.folder, self.dav, self.box = folder, dav, box
        self.kizen_url = box.serve().url if loopback else None  # the sandbox's server, over real HTTP
        self.user = f"ada{uuid4().hex[:8]}"
        self.home = dav.home(self.user)
        self.http = dav.client(self.user)
        mkcalendar(self.http, f"{self.home}desk/", name="Work")
        write_secret(folder / "password", "unused\n")
        (folder / "config.toml").write_text(
            '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
            f'[sync]\nstate = "{state_of(folder)}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\nzone = "Europe/Berlin"\n'
            f'[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{dav.url}/{self.user}/"\n'
            f'username = "{self.user}"\npassword_file = "password"\nallow_private_network = true\n'
            'import_from_crm = true\nimport_collection = "Work"\n'
        )

    def put(self, name: str, ical: str) -> None:
        put(self.http, f"{self.home}desk/{name}", ical)

    def get(self, name: str) -> Any:
        response = self.http.get(f"{self.home}desk/{name}")
        response.raise_for_status()
        return icalendar.Calendar.from_ical(response.text)

    def run(self) -> Report:
        return run_cycle(self.folder / "config.toml", self.box, NOW, url=self.kizen_url)

    def activity(self, note: str) -> dict[str, Any]:
        (found,) = [
            self.box.service.get_scheduled(a["id"])
            for a in self.box.service.list_scheduled({}, 0, 1000)[1]
            if self.box.service.get_scheduled(a["id"])["note"].startswith(note)
        ]
        return found


# Kizen over loopback is its HTTP path, independent of the CalDAV server: once, on Radicale
@pytest.fixture(params=["radicale, kizen in-process", "radicale, kizen over loopback", "xandikos, kizen in-process"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    server: DavServer = request.getfixturevalue(request.param.split(",")[0])
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        made = Setup(tmp_path, server, box, loopback="loopback" in request.param)
        yield made
        made.http.close()


EVENT = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//tests//EN\r
BEGIN:VEVENT\r
UID:call-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20261203T150000\r
DTEND;TZID=Europe/Berlin:20261203T153000\r
SUMMARY:Intro call\r
ORGANIZER:mailto:ada@example.com\r
ATTENDEE;PARTSTAT=ACCEPTED:mailto:charles@customer.example\r
SEQUENCE:2\r
X-CUSTOM-THING:keep me\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Reminder\r
TRIGGER:-PT15M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_completed_in_kizen_writes_the_logged_entry_back_and_keeps_everything_else(setup: Setup) -> None:
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    logged = setup.box.user().complete(setup.activity("Intro call")["id"], notes="Went well")
    report = setup.run()
    assert report.counts() == {"WriteBack": 1}, report.outcomes
    (event,) = setup.get("call-1.ics").walk("VEVENT")
    assert str(event["SUMMARY"]) == "✓ Intro call"
    assert str(event["X-SYNCD-ACTIVITY-ID"]) == setup.activity("Intro call")["id"]
    assert str(event["X-SYNCD-LOGGED-ACTIVITY-ID"]) == str(logged["id"])
    completed = datetime.fromisoformat(logged["completed_at"].replace("Z", "+00:00"))
    assert str(event["X-SYNCD-COMPLETED-AT"]) == f"{completed:%Y%m%dT%H%M%SZ}"
    (pairing,) = pairings_in(setup.folder)
    assert (pairing.settled, pairing.settled_reason) == (Settled.LOGGED, "completed in Kizen")
    assert pairing.logged_activity_id == str(logged["id"]) and pairing.written_back
    assert int(event["SEQUENCE"]) == 2 and str(event["X-CUSTOM-THING"]) == "keep me"
    assert event["DTSTART"].dt == datetime(2026, 12, 3, 14, tzinfo=UTC) and len(event.walk("VALARM")) == 1
    assert "charles@customer.example" in str(event["ATTENDEE"])
    assert setup.run().actions == []  # syncd's own marks are not read back as an edit


def weekly(setup: Setup) -> list[dict[str, Any]]:
    """A weekly series of three in the calendar, synced: its activities, by due time."""
    series = EVENT.replace("UID:call-1", "UID:weekly").replace("SEQUENCE:2\r\n", "RRULE:FREQ=WEEKLY;COUNT=3\r\n")
    setup.put("weekly.ics", series)
    assert setup.run().counts() == {"Create": 3}
    return sorted(
        (setup.box.service.get_scheduled(a["id"]) for a in setup.box.service.list_scheduled({}, 0, 10)[1]),
        key=lambda a: a["due_datetime"],
    )


def test_completing_one_occurrence_of_a_series_writes_an_override_only(setup: Setup) -> None:
    second = weekly(setup)[1]
    setup.box.user().complete(second["id"])
    assert setup.run().counts() == {"WriteBack": 1}
    events = setup.get("weekly.ics").walk("VEVENT")
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    (override,) = [e for e in events if "RECURRENCE-ID" in e]
    assert str(master["SUMMARY"]) == "Intro call" and "RRULE" in master
    assert str(override["SUMMARY"]) == "✓ Intro call"
    assert override["RECURRENCE-ID"].dt == datetime(2026, 12, 10, 14, tzinfo=UTC)
    assert override["DTSTART"].dt == datetime(2026, 12, 10, 14, tzinfo=UTC)


def test_a_todo_completed_in_kizen_is_completed_in_the_calendar(setup: Setup) -> None:
    setup.put(
        "todo.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20260101T000000Z\r\n"
        "DUE:20261201T160000Z\r\nSUMMARY:Send proposal\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
    )
    assert setup.run().counts() == {"Create": 1}
    setup.box.user().complete(setup.activity("Send proposal")["id"])
    written = setup.run()
    assert written.counts() == {"WriteBack": 1}
    assert written.outcomes[0].detail == "logged entry written to 1 calendar item(s)"
    (todo,) = setup.get("todo.ics").walk("VTODO")
    assert str(todo["STATUS"]) == "COMPLETED" and int(todo["PERCENT-COMPLETE"]) == 100 and todo["COMPLETED"]
    assert str(todo["SUMMARY"]) == "Send proposal"


def test_a_meeting_shared_with_a_feed_is_written_back_to_its_writable_copy(setup: Setup) -> None:
    """A write-back goes to every writable copy; a read-only feed's copy is passed over."""
    (setup.folder / "feed.ics").write_text(EVENT)
    config = setup.folder / "config.toml"
    feed = '[[sources]]\nname = "a-feed"\ntype = "ics"\nowner = "grace@example.com"\nurl = "feed.ics"\n'
    config.write_text(config.read_text().replace("[[sources]]", feed + "[[sources]]", 1))
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    (pairing,) = pairings_in(setup.folder)
    assert [copy.source for copy in pairing.locations] == ["a-feed", "ada"]  # the feed's copy first
    setup.box.user().complete(setup.activity("Intro call")["id"])
    written = setup.run()
    assert written.counts() == {"WriteBack": 1}, written.failures
    assert written.outcomes[0].detail == "logged entry written to 1 calendar item(s)"
    (event,) = setup.get("call-1.ics").walk("VEVENT")
    assert str(event["SUMMARY"]) == "✓ Intro call" and event["X-SYNCD-LOGGED-ACTIVITY-ID"]


def test_a_source_with_its_own_identities_writes_back_to_its_item(setup: Setup) -> None:
    """``shared_identity = false``: the activity's identity carries the source's name, the
    calendar item keeps its own UID, and the write-back finds it by that UID."""
    config = setup.folder / "config.toml"
    config.write_text(
        config.read_text().replace("import_from_crm = true\n", "import_from_crm = true\nshared_identity = false\n")
    )
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    (pairing,) = pairings_in(setup.folder)
    assert pairing.id.uid == "ada#call-1"
    setup.box.user().complete(setup.activity("Intro call")["id"])
    written = setup.run()
    assert written.counts() == {"WriteBack": 1} and written.clean, written.failures
    (event,) = setup.get("call-1.ics").walk("VEVENT")
    assert str(event["UID"]) == "call-1" and str(event["SUMMARY"]) == "✓ Intro call"


def test_a_kizen_move_moves_the_organizers_event(setup: Setup) -> None:
    setup.put("call-1.ics", EVENT)
    setup.run()
    setup.box.user().reschedule(setup.activity("Intro call")["id"], datetime(2026, 12, 4, 9, tzinfo=UTC))
    assert setup.run().counts() == {"MoveInCalendar": 1}
    (event,) = setup.get("call-1.ics").walk("VEVENT")
    assert event["DTSTART"].dt == datetime(2026, 12, 4, 9, tzinfo=UTC)
    assert event["DTEND"].dt == datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Berlin" and int(event["SEQUENCE"]) == 3
    (pairing,) = pairings_in(setup.folder)
    moved = "2026-12-04T09:00:00Z"
    assert pairing.due == datetime(2026, 12, 4, 9, tzinfo=UTC) and pairing.changed_at == NOW
    assert pairing.calendar_seen["due"] == pairing.kizen_seen["due"] == moved and pairing.changes == 2
    assert setup.run().actions == []
    assert setup.activity("Intro call")["original_due_datetime"] == "2026-12-03T14:00:00Z"


def test_a_kizen_move_of_one_occurrence_moves_that_occurrence_only(setup: Setup) -> None:
    second = weekly(setup)[1]
    setup.box.user().reschedule(second["id"], datetime(2026, 12, 11, 9, tzinfo=UTC))
    assert setup.run().counts() == {"MoveInCalendar": 1}
    events = setup.get("weekly.ics").walk("VEVENT")
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    (override,) = [e for e in events if "RECURRENCE-ID" in e]
    assert master["DTSTART"].dt == datetime(2026, 12, 3, 15, tzinfo=ZoneInfo("Europe/Berlin")) and "RRULE" in master
    assert override["RECURRENCE-ID"].dt == datetime(2026, 12, 10, 14, tzinfo=UTC)
    assert override["DTSTART"].dt == datetime(2026, 12, 11, 9, tzinfo=UTC)
    assert str(override["DTSTART"].params["TZID"]) == "Europe/Berlin"
    assert setup.run().actions == []


def test_a_kizen_move_while_the_calendars_move_is_unread_is_a_conflict_the_calendar_wins(tmp_path: Path) -> None:
    """Radicale down when the event moved: Kizen's move before it is back meets an unsynced move."""
    quiet()
    server = Radicale(tmp_path / "radicale").start()
    port = int(server.url.rsplit(":", 1)[1])
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        setup = Setup(tmp_path, server, box, loopback=False)
        setup.put("call-1.ics", EVENT)
        setup.run()
        setup.put("call-1.ics", EVENT.replace("20261203T15", "20261203T17"))  # moved in the calendar
        server.stop()
        assert setup.run().failed_sources  # the move is not read
        setup.box.user().reschedule(setup.activity("Intro call")["id"], datetime(2026, 12, 4, 9, tzinfo=UTC))
        server = Radicale(tmp_path / "radicale", port=port).start()
        setup.http.close()
        setup.http = server.client(setup.user)
        try:
            assert setup.run().counts() == {"Update": 1, "RecordConflict": 1}
            assert setup.activity("Intro call")["due_datetime"] == "2026-12-03T16:00:00Z"
            (event,) = setup.get("call-1.ics").walk("VEVENT")
            assert event["DTSTART"].dt.astimezone(UTC) == datetime(2026, 12, 3, 16, tzinfo=UTC)
            state = open_state(tmp_path)
            (conflict,) = state.conflicts()
            state.close()
            assert (conflict.calendar_value, conflict.kizen_value) == ("2026-12-03T16:00:00Z", "2026-12-04T09:00:00Z")
            assert setup.run().actions == []
        finally:
            setup.http.close()
            server.stop()


def test_a_kizen_move_of_someone_elses_meeting_is_not_written(setup: Setup) -> None:
    setup.put("call-1.ics", EVENT.replace("ORGANIZER:mailto:ada@example.com", "ORGANIZER:mailto:boss@partner.example"))
    setup.run()
    setup.box.user().reschedule(setup.activity("Intro call")["id"], datetime(2026, 12, 4, 9, tzinfo=UTC))
    report = setup.run()
    assert report.counts() == {"Settle": 1} and "does not organize" in report.outcomes[0].detail
    (event,) = setup.get("call-1.ics").walk("VEVENT")
    assert event["DTSTART"].dt == datetime(2026, 12, 3, 14, tzinfo=UTC)


def test_the_caldav_source_costs_one_request_when_nothing_changed(setup: Setup) -> None:
    setup.put("call-1.ics", EVENT)
    setup.run()
    mark = setup.dav.mark()
    kizen_writes = sum(setup.box.app.calls[m] for m in ("POST", "PATCH", "DELETE"))
    assert setup.run().actions == []
    assert [s.report for s in setup.dav.since(mark)] == ["sync-collection"]
    assert sum(setup.box.app.calls[m] for m in ("POST", "PATCH", "DELETE")) == kizen_writes


def test_an_event_moved_to_another_calendar_is_followed_and_written_back_there(setup: Setup) -> None:
    mkcalendar(setup.http, f"{setup.home}home/", name="Home")
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    setup.http.delete(f"{setup.home}desk/call-1.ics").raise_for_status()
    put(setup.http, f"{setup.home}home/call-1.ics", EVENT)
    writes = sum(setup.box.app.calls[m] for m in ("POST", "PATCH", "DELETE"))
    report = setup.run()
    assert report.counts() == {"Settle": 1} and "lead copy" in report.outcomes[0].detail
    assert sum(setup.box.app.calls[m] for m in ("POST", "PATCH", "DELETE")) == writes  # one activity still
    setup.box.user().complete(setup.activity("Intro call")["id"])
    assert setup.run().counts() == {"WriteBack": 1}
    response = setup.http.get(f"{setup.home}home/call-1.ics")
    assert "✓ Intro call" in response.text


def test_an_activity_made_in_kizen_appears_in_the_importing_calendar_and_stays_paired(setup: Setup) -> None:
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    made = setup.box.user().create(
        "call", datetime(2026, 12, 2, 10, tzinfo=UTC), note="Follow up with Charles\nBring the quote"
    )
    report = setup.run()
    assert report.counts() == {"Import": 1}
    state = open_state(setup.folder)
    pairing = state.pairing_of(made["id"])
    state.close()
    assert pairing is not None and pairing.lead is not None and not pairing.created_by_syncd
    name = pairing.lead.href.rsplit("/", 1)[-1]
    (event,) = setup.get(name).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Follow up with Charles" and "Bring the quote" in str(event["DESCRIPTION"])
    assert event["DTSTART"].dt == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert event["DTEND"].dt == datetime(2026, 12, 2, 10, 15, tzinfo=UTC)  # the Call type's 15 minutes
    assert setup.run().actions == []  # paired like any other, and the note stays Kizen's
    assert setup.box.service.get_scheduled(made["id"])["note"] == "Follow up with Charles\nBring the quote"
    setup.box.user().reschedule(made["id"], datetime(2026, 12, 2, 15, tzinfo=UTC))
    assert setup.run().counts() == {"MoveInCalendar": 1}
    (event,) = setup.get(name).walk("VEVENT")
    assert event["DTSTART"].dt == datetime(2026, 12, 2, 15, tzinfo=UTC)

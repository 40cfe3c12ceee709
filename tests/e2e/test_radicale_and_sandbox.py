"""End to end over loopback HTTP: a real Radicale, the sandbox's server, syncd's cycle between.

Two people (ada, who organizes, and grace) each with a CalDAV calendar; each step is one edit on
one side, then a sync, then a check of both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest

from syncd.sandbox import Sandbox
from syncd.sync.report import Report
from tests.connectors.radicale import Radicale, delete, mkcalendar, put, quiet
from tests.cycles import run_cycle
from tests.secretfiles import write_secret

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def ics(*lines: str, kind: str = "VEVENT", header: str = "") -> str:
    body = "\r\n".join(("DTSTAMP:20260101T000000Z", *lines))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\n{header}BEGIN:{kind}\r\n{body}\r\nEND:{kind}\r\nEND:VCALENDAR\r\n"


class Office:
    """Radicale with ada's and grace's calendars, the sandbox's server, and syncd's config."""

    def __init__(self, folder: Path, radicale: Radicale, box: Sandbox) -> None:
        self.folder, self.radicale, self.box = folder, radicale, box
        self.kizen_url = box.serve().url
        self.http = {name: radicale.client(name) for name in ("ada", "grace")}
        sources = ""
        for name in ("ada", "grace"):
            mkcalendar(self.http[name], f"/{name}/desk/", name="Work")
            sources += (
                f'[[sources]]\nname = "{name}"\ntype = "caldav"\nowner = "{name}@example.com"\n'
                f'url = "{radicale.url}/{name}/"\nusername = "{name}"\npassword_file = "password"\n'
                "allow_private_network = true\n"
            )
        write_secret(folder / "password", "unused\n")
        (folder / "config.toml").write_text(
            '[kizen.sandbox]\ndata = "unused.sqlite"\n'
            f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\nzone = "Europe/Berlin"\n' + sources
        )

    def put(self, who: str, name: str, text: str) -> None:
        put(self.http[who], f"/{who}/desk/{name}", text)

    def delete(self, who: str, name: str) -> None:
        delete(self.http[who], f"/{who}/desk/{name}")

    def event(self, who: str, name: str) -> Any:
        text = self.http[who].get(f"/{who}/desk/{name}").text
        return [c for c in icalendar.Calendar.from_ical(text).walk() if c.name in ("VEVENT", "VTODO")]

    def sync(self) -> Report:
        report = run_cycle(self.folder / "config.toml", self.box, NOW, url=self.kizen_url)
        assert report.clean, (report.failures, report.failed_sources, report.stopped)
        return report

    def activities(self, starting: str) -> list[dict[str, Any]]:
        found = [self.box.service.get_scheduled(a["id"]) for a in self.box.service.list_scheduled({}, 0, 1000)[1]]
        return sorted((a for a in found if a["note"].startswith(starting)), key=lambda a: a["original_due_datetime"])


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    quiet()
    with Radicale(tmp_path / "radicale") as radicale, Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        made = Office(tmp_path, radicale, box)
        yield made
        for client in made.http.values():
            client.close()


SERIES = (
    "UID:weekly",
    "DTSTART;TZID=Europe/Berlin:20261123T100000",
    "DTEND;TZID=Europe/Berlin:20261123T103000",
    "RRULE:FREQ=WEEKLY;COUNT=4",
    "EXDATE;TZID=Europe/Berlin:20261207T100000",
    "SUMMARY:Pipeline review",
    "ORGANIZER:mailto:ada@example.com",
)
MOVED = (
    "UID:weekly",
    "RECURRENCE-ID;TZID=Europe/Berlin:20261130T100000",
    "DTSTART;TZID=Europe/Berlin:20261201T150000",
    "DTEND;TZID=Europe/Berlin:20261201T153000",
    "SUMMARY:Pipeline review",
    "ORGANIZER:mailto:ada@example.com",
)


def series_text(*master: str) -> str:
    body = "\r\n".join(("DTSTAMP:20260101T000000Z", *master))
    override = "\r\n".join(("DTSTAMP:20260101T000000Z", *MOVED))
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\n"
        f"BEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\n{override}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_a_working_week_between_two_calendars_and_kizen(office: Office) -> None:
    meeting = (
        "UID:qbr",
        "DTSTART:20261210T100000Z",
        "DTEND:20261210T110000Z",
        "SUMMARY:Quarterly business review",
        "ORGANIZER:mailto:ada@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:grace@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:charles@customer.example",
    )
    office.put(
        "ada",
        "single.ics",
        ics("UID:single", "DTSTART:20261203T140000Z", "DTEND:20261203T143000Z", "SUMMARY:Intro call"),
    )
    office.put("ada", "weekly.ics", series_text(*SERIES))
    office.put("ada", "allday.ics", ics("UID:allday", "DTSTART;VALUE=DATE:20261215", "SUMMARY:Renewal deadline"))
    office.put("ada", "todo.ics", ics("UID:todo", "DUE:20261201T160000Z", "SUMMARY:Send proposal", kind="VTODO"))
    office.put("ada", "qbr.ics", ics(*meeting))
    office.put("grace", "qbr.ics", ics(*meeting))

    # First sync: one activity per occurrence, the meeting once, due and original due right.
    assert office.sync().counts() == {"Create": 7}
    weekly = office.activities("Pipeline review")
    assert [(a["original_due_datetime"], a["due_datetime"]) for a in weekly] == [
        ("2026-11-23T09:00:00Z", "2026-11-23T09:00:00Z"),
        ("2026-11-30T09:00:00Z", "2026-12-01T14:00:00Z"),  # the moved occurrence: due moved, original its slot
        ("2026-12-14T09:00:00Z", "2026-12-14T09:00:00Z"),  # 12-07 is cancelled
    ]
    assert office.activities("Renewal deadline")[0]["due_datetime"] == "2026-12-15T08:00:00Z"  # 09:00 Berlin
    (qbr,) = office.activities("Quarterly business review")
    assert qbr["employee"]["email"] == "ada@example.com"

    # An event moved: due changes, original stays.
    office.put(
        "ada",
        "single.ics",
        ics("UID:single", "DTSTART:20261204T090000Z", "DTEND:20261204T093000Z", "SUMMARY:Intro call"),
    )
    assert office.sync().counts() == {"Update": 1}
    (intro,) = office.activities("Intro call")
    assert (intro["original_due_datetime"], intro["due_datetime"]) == ("2026-12-03T14:00:00Z", "2026-12-04T09:00:00Z")

    # The whole series shifted an hour: rescheduled, not re-created.
    ids = {a["id"] for a in office.activities("Pipeline review")}
    shifted = tuple(line.replace("T100000", "T110000").replace("T103000", "T113000") for line in SERIES)
    office.put("ada", "weekly.ics", series_text(*shifted))
    report = office.sync()
    assert "Create" not in report.counts() and "Delete" not in report.counts()
    assert {a["id"] for a in office.activities("Pipeline review")} == ids

    # Completed in Kizen: the CalDAV object shows the logged entry, other properties intact.
    office.box.user().complete(qbr["id"])
    assert office.sync().counts() == {"WriteBack": 1}
    for who in ("ada", "grace"):
        (event,) = office.event(who, "qbr.ics")
        assert str(event["SUMMARY"]) == "✓ Quarterly business review" and event["X-SYNCD-LOGGED-ACTIVITY-ID"]
        assert len(event["ATTENDEE"]) == 2 and event["DTSTART"].dt == datetime(2026, 12, 10, 10, tzinfo=UTC)

    # A to-do completed in the calendar: logged once in Kizen.
    office.put(
        "ada",
        "todo.ics",
        ics("UID:todo", "DUE:20261201T160000Z", "SUMMARY:Send proposal", "STATUS:COMPLETED", kind="VTODO"),
    )
    assert office.sync().counts() == {"Log": 1}
    assert office.activities("Send proposal")[0]["logged_activity_id"]
    assert office.sync().actions == []

    # Both sides moved: a conflict recorded, the calendar policy applied.
    office.box.user().reschedule(intro["id"], datetime(2026, 12, 5, 9, tzinfo=UTC))
    office.put(
        "ada",
        "single.ics",
        ics("UID:single", "DTSTART:20261204T100000Z", "DTEND:20261204T103000Z", "SUMMARY:Intro call"),
    )
    assert office.sync().counts() == {"Update": 1, "RecordConflict": 1}
    assert office.activities("Intro call")[0]["due_datetime"] == "2026-12-04T10:00:00Z"

    # Deleted in the calendar: the activity is deleted.
    office.delete("ada", "allday.ics")
    assert office.sync().counts() == {"Delete": 1}
    assert office.activities("Renewal deadline") == []
    assert office.sync().actions == []

"""Expansion of calendar objects into occurrences: exact due and slot times for every quirk."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.calendar.connectors.ics import IcsSource
from syncd.calendar.occurrences import Expansion, Window, expand, expand_all
from syncd.model import CollectionChanges, Cursor, Location, OccurrenceId, Resource


def read(feed: IcsSource, since: Cursor) -> CollectionChanges:
    """One read of a feed's one collection, its target."""
    return feed.changes(feed.target, since)


BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 12, 31, tzinfo=UTC), zone=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def calendar(*components: str, header: str = "") -> str:
    body = "".join(components)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{header}{body}END:VCALENDAR\n"


def event(uid: str, *lines: str, kind: str = "VEVENT") -> str:
    uid_line = f"UID:{uid}\n" if uid else ""
    return f"BEGIN:{kind}\n{uid_line}" + "".join(f"{line}\n" for line in lines) + f"END:{kind}\n"


def run(text: str, window: Window = WINDOW, zone: str | None = None, href: str = "item.ics") -> Expansion:
    return expand(Resource(Location("work", "/cal/", href), "etag", text), window, zone)


def times(result: Expansion) -> list[tuple[str, datetime, datetime | None]]:
    return [(o.id.slot, o.due, o.slot_due) for o in result.occurrences]


def test_a_single_event_is_due_at_its_start_with_an_empty_slot() -> None:
    result = run(calendar(event("one", "DTSTART:20260401T100000Z", "DTEND:20260401T110000Z", "SUMMARY:Call")))
    (occurrence,) = result.occurrences
    assert occurrence.id == OccurrenceId("one", "")
    assert occurrence.due == utc(2026, 4, 1, 10) and occurrence.slot_due is None
    assert occurrence.duration == timedelta(hours=1) and occurrence.summary == "Call"


def test_a_berlin_series_keeps_its_wall_clock_across_spring_forward() -> None:
    text = calendar(event("s", "DTSTART;TZID=Europe/Berlin:20260326T090000", "RRULE:FREQ=DAILY;COUNT=5"))
    assert times(run(text)) == [
        ("20260326T080000Z", utc(2026, 3, 26, 8), utc(2026, 3, 26, 8)),
        ("20260327T080000Z", utc(2026, 3, 27, 8), utc(2026, 3, 27, 8)),
        ("20260328T080000Z", utc(2026, 3, 28, 8), utc(2026, 3, 28, 8)),
        ("20260329T070000Z", utc(2026, 3, 29, 7), utc(2026, 3, 29, 7)),
        ("20260330T070000Z", utc(2026, 3, 30, 7), utc(2026, 3, 30, 7)),
    ]


def test_a_new_york_series_keeps_its_wall_clock_across_fall_back() -> None:
    text = calendar(event("ny", "DTSTART;TZID=America/New_York:20261030T090000", "RRULE:FREQ=DAILY;COUNT=4"))
    assert [o.due for o in run(text).occurrences] == [
        utc(2026, 10, 30, 13),
        utc(2026, 10, 31, 13),
        utc(2026, 11, 1, 14),
        utc(2026, 11, 2, 14),
    ]


@pytest.mark.parametrize(
    ("local", "due"),
    [
        ("20260329T023000", utc(2026, 3, 29, 1, 30)),  # in the spring gap: the offset before it (+01:00)
        ("20261025T023000", utc(2026, 10, 25, 0, 30)),  # ambiguous at fall back: the first (+02:00)
    ],
)
def test_times_in_a_dst_change_follow_rfc_5545(local: str, due: datetime) -> None:
    (occurrence,) = run(calendar(event("gap", f"DTSTART;TZID=Europe/Berlin:{local}"))).occurrences
    assert occurrence.due == due


def test_a_moved_occurrence_keeps_its_slot_and_original_due() -> None:
    text = calendar(
        event(
            "w",
            "DTSTART;TZID=Europe/Berlin:20260406T090000",
            "DTEND;TZID=Europe/Berlin:20260406T100000",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
        event(
            "w",
            "RECURRENCE-ID;TZID=Europe/Berlin:20260413T090000",
            "DTSTART;TZID=Europe/Berlin:20260414T150000",
            "DTEND;TZID=Europe/Berlin:20260414T160000",
            "SUMMARY:moved",
        ),
    )
    assert times(run(text)) == [
        ("20260406T070000Z", utc(2026, 4, 6, 7), utc(2026, 4, 6, 7)),
        ("20260413T070000Z", utc(2026, 4, 14, 13), utc(2026, 4, 13, 7)),
        ("20260420T070000Z", utc(2026, 4, 20, 7), utc(2026, 4, 20, 7)),
    ]


def test_exdate_and_cancelled_instances_leave_the_series() -> None:
    text = calendar(
        event("x", "DTSTART:20260406T090000Z", "RRULE:FREQ=DAILY;COUNT=4", "EXDATE:20260407T090000Z"),
        event("x", "RECURRENCE-ID:20260408T090000Z", "DTSTART:20260408T090000Z", "STATUS:CANCELLED"),
    )
    result = run(text)
    assert [o.id.slot for o in result.occurrences] == ["20260406T090000Z", "20260409T090000Z"]
    assert result.cancelled == [OccurrenceId("x", "20260408T090000Z")]


def test_rdate_adds_an_occurrence() -> None:
    text = calendar(event("r", "DTSTART:20260406T090000Z", "RRULE:FREQ=WEEKLY;COUNT=2", "RDATE:20260408T120000Z"))
    assert [o.due for o in run(text).occurrences] == [utc(2026, 4, 6, 9), utc(2026, 4, 8, 12), utc(2026, 4, 13, 9)]


def test_thisandfuture_shifts_later_occurrences_but_not_their_slots() -> None:
    text = calendar(
        event(
            "f",
            "DTSTART;TZID=Europe/Berlin:20260326T090000",
            "DTEND;TZID=Europe/Berlin:20260326T100000",
            "RRULE:FREQ=DAILY;COUNT=5",
        ),
        event(
            "f",
            "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20260328T090000",
            "DTSTART;TZID=Europe/Berlin:20260328T110000",
            "DTEND;TZID=Europe/Berlin:20260328T120000",
        ),
    )
    assert times(run(text)) == [
        ("20260326T080000Z", utc(2026, 3, 26, 8), utc(2026, 3, 26, 8)),
        ("20260327T080000Z", utc(2026, 3, 27, 8), utc(2026, 3, 27, 8)),
        ("20260328T080000Z", utc(2026, 3, 28, 10), utc(2026, 3, 28, 8)),
        ("20260329T070000Z", utc(2026, 3, 29, 9), utc(2026, 3, 29, 7)),
        ("20260330T070000Z", utc(2026, 3, 30, 9), utc(2026, 3, 30, 7)),
    ]


def test_all_day_items_are_due_at_the_configured_local_time() -> None:
    single = run(calendar(event("d", "DTSTART;VALUE=DATE:20260710", "DTEND;VALUE=DATE:20260711")))
    assert times(single) == [("", utc(2026, 7, 10, 7), None)] and single.occurrences[0].all_day
    series = run(
        calendar(event("ds", "DTSTART;VALUE=DATE:20260710", "RRULE:FREQ=DAILY;COUNT=2")),
        Window(WINDOW.start, WINDOW.end, zone=ZoneInfo("America/New_York"), all_day_at=time(8, 30)),
    )
    assert times(series) == [
        ("20260710", utc(2026, 7, 10, 12, 30), utc(2026, 7, 10, 12, 30)),
        ("20260711", utc(2026, 7, 11, 12, 30), utc(2026, 7, 11, 12, 30)),
    ]


def test_floating_times_are_read_in_the_collection_zone_else_the_source_zone() -> None:
    text = calendar(event("fl", "DTSTART:20260710T090000"))
    assert run(text).occurrences[0].due == utc(2026, 7, 10, 7)  # source zone: Berlin
    assert run(text, zone="Asia/Tokyo").occurrences[0].due == utc(2026, 7, 10, 0)  # calendar-timezone


@pytest.mark.parametrize(
    "tzid", ["W. Europe Standard Time", "/freeassociation.sourceforge.net/Europe/Berlin", "Europe/Berlin"]
)
def test_windows_and_vendor_zone_names_mean_their_iana_zone(tzid: str) -> None:
    text = calendar(event("z", f"DTSTART;TZID={tzid}:20260710T090000"))
    assert run(text, Window(WINDOW.start, WINDOW.end, zone=UTC)).occurrences[0].due == utc(2026, 7, 10, 7)


OUTLOOK_EXPORT = """BEGIN:VCALENDAR
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN
VERSION:2.0
METHOD:PUBLISH
BEGIN:VTIMEZONE
TZID:Eastern Standard Time
BEGIN:STANDARD
DTSTART:16011104T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010311T020000
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:040000008200E00074C5B7101A82E00800000000D0
DTSTART;TZID=Eastern Standard Time:20261030T100000
DTEND;TZID=Eastern Standard Time:20261030T103000
RRULE:FREQ=WEEKLY;COUNT=2;BYDAY=FR
SUMMARY:Pipeline review
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
END:VEVENT
END:VCALENDAR
"""


def test_an_outlook_export_with_windows_zone_names() -> None:
    result = run(OUTLOOK_EXPORT)
    assert times(result) == [
        ("20261030T140000Z", utc(2026, 10, 30, 14), utc(2026, 10, 30, 14)),
        ("20261106T150000Z", utc(2026, 11, 6, 15), utc(2026, 11, 6, 15)),
    ]


def test_a_custom_vtimezone_is_honoured() -> None:
    zone = """BEGIN:VTIMEZONE
TZID:Company Time
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
END:STANDARD
END:VTIMEZONE
"""
    text = calendar(event("c", "DTSTART;TZID=Company Time:20260710T090000"), header=zone)
    assert run(text).occurrences[0].due == utc(2026, 7, 10, 3, 30)


GOOGLE_EXPORT = """BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
X-WR-CALNAME:Work
X-WR-TIMEZONE:Europe/Berlin
BEGIN:VEVENT
DTSTART:20260326T080000Z
DTEND:20260326T090000Z
RRULE:FREQ=WEEKLY;COUNT=2
UID:abc123@google.com
SUMMARY:Weekly sync
END:VEVENT
BEGIN:VTODO
DUE:20260326T160000Z
RRULE:FREQ=WEEKLY;COUNT=2
UID:todo123@google.com
SUMMARY:Send report
END:VTODO
END:VCALENDAR
"""


def test_a_google_export_recurs_in_its_x_wr_timezone_events_and_todos() -> None:
    events = run(GOOGLE_EXPORT.replace("BEGIN:VTODO", "X").split("X\n")[0] + "END:VCALENDAR\n")
    assert times(events) == [
        ("20260326T080000Z", utc(2026, 3, 26, 8), utc(2026, 3, 26, 8)),
        ("20260402T070000Z", utc(2026, 4, 2, 7), utc(2026, 4, 2, 7)),  # 09:00 Berlin after the change
    ]
    todo = GOOGLE_EXPORT.split("BEGIN:VEVENT")[0] + "BEGIN:VTODO" + GOOGLE_EXPORT.split("BEGIN:VTODO")[1]
    assert times(run(todo)) == [
        ("20260326T160000Z", utc(2026, 3, 26, 16), utc(2026, 3, 26, 16)),
        ("20260402T150000Z", utc(2026, 4, 2, 15), utc(2026, 4, 2, 15)),
    ]


def test_vtodo_due_dates() -> None:
    due_only = run(calendar(event("t1", "DUE:20260710T170000Z", kind="VTODO")))
    assert times(due_only) == [("", utc(2026, 7, 10, 17), None)] and due_only.occurrences[0].kind == "VTODO"
    start_only = run(calendar(event("t2", "DTSTART:20260710T080000Z", kind="VTODO")))
    assert times(start_only) == [("", utc(2026, 7, 10, 8), None)]
    neither = run(calendar(event("t3", "SUMMARY:someday", kind="VTODO")))
    assert neither.occurrences == [] and "neither DUE nor DTSTART" in neither.skipped[0].reason
    series = run(
        calendar(
            event("t4", "DTSTART:20260710T080000Z", "DUE:20260710T170000Z", "RRULE:FREQ=DAILY;COUNT=2", kind="VTODO")
        )
    )
    assert times(series) == [
        ("20260710T080000Z", utc(2026, 7, 10, 17), utc(2026, 7, 10, 17)),
        ("20260711T080000Z", utc(2026, 7, 11, 17), utc(2026, 7, 11, 17)),
    ]


def test_a_completed_vtodo_says_so() -> None:
    (todo,) = run(
        calendar(event("t", "DUE:20260710T170000Z", "STATUS:COMPLETED", "COMPLETED:20260710T120000Z", kind="VTODO"))
    ).occurrences
    assert todo.completed and todo.completed_at == utc(2026, 7, 10, 12)


@pytest.mark.parametrize(
    ("uid", "why"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e--1234@google.com", "Kizen's calendar integration"),
        ("syncd-activity-0f8fad5b-d9cb-469f-a165-70867728950e", "syncd's own feed"),
    ],
)
def test_kizen_and_syncd_events_are_left_out(uid: str, why: str) -> None:
    result = run(calendar(event(uid, "DTSTART:20260710T090000Z")))
    assert result.occurrences == [] and why in result.skipped[0].reason


def test_an_unknown_zone_quarantines_the_item_naming_source_and_uid() -> None:
    result = run(calendar(event("mars", "DTSTART;TZID=Mars/Olympus_Mons:20260710T090000")))
    assert result.occurrences == []
    (quarantine,) = result.quarantined
    assert quarantine.uid == "mars" and quarantine.location.source == "work"
    assert "Mars/Olympus_Mons" in quarantine.reason


def test_an_unreadable_date_quarantines_only_that_item() -> None:
    good = Resource(Location("work", "/cal/", "good.ics"), "1", calendar(event("good", "DTSTART:20260710T090000Z")))
    bad = Resource(Location("work", "/cal/", "bad.ics"), "2", calendar(event("bad", "DTSTART:2026-13-45")))
    result = expand_all([good, bad], WINDOW)
    assert [o.id.uid for o in result.occurrences] == ["good"]
    (quarantine,) = result.quarantined
    assert quarantine.uid == "bad" and "DTSTART" in quarantine.reason


def test_duplicate_uids_are_all_quarantined_and_the_rest_syncs() -> None:
    def resource(href: str, uid: str) -> Resource:
        return Resource(Location("work", "/cal/", href), href, calendar(event(uid, "DTSTART:20260710T090000Z")))

    result = expand_all([resource("a.ics", "dup"), resource("b.ics", "dup"), resource("c.ics", "fine")], WINDOW)
    assert [o.id.uid for o in result.occurrences] == ["fine"]
    assert sorted(q.location.href for q in result.quarantined) == ["a.ics", "b.ics"]
    assert all("duplicate UID" in q.reason for q in result.quarantined)
    inside = run(calendar(event("twice", "DTSTART:20260710T090000Z"), event("twice", "DTSTART:20260711T090000Z")))
    assert inside.occurrences == [] and "duplicate UID" in inside.quarantined[0].reason


def test_an_item_without_uid_is_quarantined() -> None:
    result = run(calendar(event("", "DTSTART:20260710T090000Z", "SUMMARY:No UID")))
    assert result.occurrences == [] and result.quarantined[0].reason == "no UID"


def test_a_series_past_the_cap_is_capped_and_reported() -> None:
    window = Window(utc(2026, 7, 1), utc(2026, 8, 30), zone=UTC, cap=500)
    result = run(calendar(event("hourly", "DTSTART:20200101T000000Z", "RRULE:FREQ=HOURLY")), window)
    assert len(result.occurrences) == 500 and result.capped == {"hourly": utc(2026, 7, 21, 20)}
    assert result.occurrences[0].due == utc(2026, 7, 1) and result.occurrences[-1].due == utc(2026, 7, 21, 19)


def test_a_dense_series_from_long_ago_is_refused_in_well_under_seconds() -> None:
    window = Window(utc(2026, 7, 1), utc(2026, 8, 30), zone=UTC)
    result = run(calendar(event("minutely", "DTSTART:20200101T000000Z", "RRULE:FREQ=MINUTELY")), window)
    assert result.occurrences == [] and "too dense" in result.quarantined[0].reason


def test_occurrences_outside_the_window_are_left_out() -> None:
    window = Window(utc(2026, 7, 1), utc(2026, 7, 3), zone=UTC)
    text = calendar(event("d", "DTSTART:20260629T090000Z", "RRULE:FREQ=DAILY;COUNT=10"))
    assert [o.due for o in run(text, window).occurrences] == [utc(2026, 7, 1, 9), utc(2026, 7, 2, 9)]


def test_fields_for_mapping() -> None:
    text = calendar(
        event(
            "m",
            "DTSTART:20260710T090000Z",
            "DTEND:20260710T093000Z",
            "SUMMARY:Demo",
            "DESCRIPTION:Agenda\\nJoin: https://meet.google.com/abc-defg-hij",
            "LOCATION:Room 1",
            "CATEGORIES:Sales,Demo",
            "ORGANIZER;CN=Ada:mailto:ada@example.com",
            "ATTENDEE;CN=Charles;PARTSTAT=ACCEPTED:mailto:charles@customer.example",
            "ATTENDEE;PARTSTAT=DECLINED;ROLE=OPT-PARTICIPANT:mailto:grace@example.com",
            "CLASS:PRIVATE",
            "TRANSP:TRANSPARENT",
            "BEGIN:VALARM",
            "TRIGGER:-PT15M",
            "ACTION:DISPLAY",
            "END:VALARM",
            "BEGIN:VALARM",
            "TRIGGER;RELATED=END:-PT1H",
            "ACTION:DISPLAY",
            "END:VALARM",
            "BEGIN:VALARM",
            "TRIGGER;VALUE=DATE-TIME:20260709T090000Z",
            "ACTION:EMAIL",
            "END:VALARM",
            "BEGIN:VALARM",
            "TRIGGER:PT5M",
            "ACTION:DISPLAY",
            "END:VALARM",
        )
    )
    (o,) = run(text).occurrences
    assert o.conference == "https://meet.google.com/abc-defg-hij" and o.place == "Room 1"
    assert o.categories == ("Sales", "Demo") and o.organizer == "ada@example.com"
    assert [(a.email, a.partstat, a.role) for a in o.attendees] == [
        ("charles@customer.example", "ACCEPTED", "REQ-PARTICIPANT"),
        ("grace@example.com", "DECLINED", "OPT-PARTICIPANT"),
    ]
    assert o.classification == "PRIVATE" and o.transparency == "TRANSPARENT"
    assert o.alarms == (timedelta(minutes=15), timedelta(minutes=30), timedelta(days=1))


def test_long_folded_uids_that_differ_late_are_not_duplicates() -> None:
    prefix = "040000008200E00074C5B7101A82E00800000000" * 3

    def resource(href: str, tail: str) -> Resource:
        text = calendar(event(prefix + tail, "DTSTART:20260710T090000Z"))
        folded = text.replace(f"UID:{prefix}", f"UID:{prefix[:60]}\r\n {prefix[60:]}")
        return Resource(Location("work", "/cal/", href), href, folded)

    result = expand_all([resource("a.ics", "AAAA"), resource("b.ics", "BBBB")], WINDOW)
    assert sorted(o.id.uid for o in result.occurrences) == [prefix + "AAAA", prefix + "BBBB"]
    assert result.quarantined == []


# --- one item never stops the others: the shapes real calendars hold, and the unforeseen ----------


def three(middle: str) -> list[Resource]:
    """A good item, the item under test (UID ``odd``), another good item."""

    def resource(href: str, text: str) -> Resource:
        return Resource(Location("work", "/cal/", href), href, text)

    return [
        resource("a.ics", calendar(event("a", "DTSTART:20260710T090000Z"))),
        resource("odd.ics", middle),
        resource("c.ics", calendar(event("c", "DTSTART:20260711T090000Z"))),
    ]


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (("SUMMARY:No start",), "a VEVENT without DTSTART"),
        (("RDATE;VALUE=PERIOD:20260403T020000Z/20260403T040000Z",), "a VEVENT without DTSTART"),
        (("DTSTART:20260710T080000Z", "DTSTART:20260710T100000Z"), "2 DTSTART properties in one VEVENT"),
        (("DTSTART:20260710T080000Z", "DTEND:20260710T090000Z", "DTEND:20260710T100000Z"), "2 DTEND properties"),
        (("DTSTART:20260710T080000Z", "STATUS:CONFIRMED", "STATUS:CANCELLED"), "2 STATUS properties"),
        (("DTSTART;VALUE=PERIOD:20260710T080000Z/PT1H",), "DTSTART is not a date or a date-time"),
        (("DTSTART:20260710T080000Z", "UID:another"), "2 UID properties"),
    ],
)
def test_a_shape_rfc_5545_rules_out_quarantines_that_item_alone(lines: tuple[str, ...], reason: str) -> None:
    result = expand_all(three(calendar(event("odd", *lines))), WINDOW)
    assert [o.id.uid for o in result.occurrences] == ["a", "c"]
    (quarantine,) = result.quarantined
    assert quarantine.location.href == "odd.ics" and reason in quarantine.reason


def test_a_vtodo_override_without_due_or_start_is_quarantined() -> None:
    text = calendar(
        event("odd", "DUE:20260710T090000Z", "RRULE:FREQ=DAILY;COUNT=3", kind="VTODO"),
        event("odd", "RECURRENCE-ID:20260711T090000Z", "SUMMARY:moved nowhere", kind="VTODO"),
    )
    (quarantine,) = expand_all(three(text), WINDOW).quarantined
    assert quarantine.uid == "odd" and "a VTODO override with neither DUE nor DTSTART" in quarantine.reason


def test_the_rfc_5545_rdate_examples_without_dtstart_are_each_quarantined() -> None:
    """RFC 5545's RDATE examples as icalendar ships them (PERIODs too), none with a DTSTART."""
    path = Path(icalendar.__file__).parent / "tests" / "calendars" / "rfc_5545_RDATE_example.ics"
    changes = read(IcsSource("work", str(path)), Cursor())
    result = expand_all(changes.changed, WINDOW)
    assert sorted(q.uid for q in result.quarantined) == ["0", "1", "2", "3", "4", "5"]
    assert {q.reason for q in result.quarantined} == {"a VEVENT without DTSTART"}


def test_several_rrules_are_honoured_together_and_capped_together() -> None:
    text = calendar(
        event(
            "two-rules",
            "DTSTART:20260702T100000Z",
            "RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3",
            "RRULE:FREQ=MONTHLY;BYDAY=2MO;COUNT=2",
        )
    )
    window = Window(utc(2026, 7, 1), utc(2026, 9, 30), zone=UTC)
    assert [o.due for o in run(text, window).occurrences] == [
        utc(2026, 7, 2, 10),
        utc(2026, 7, 9, 10),
        utc(2026, 7, 13, 10),
        utc(2026, 7, 16, 10),
        utc(2026, 8, 10, 10),
    ]
    capped = run(text, Window(utc(2026, 7, 1), utc(2026, 9, 30), zone=UTC, cap=2))
    assert [o.due for o in capped.occurrences] == [utc(2026, 7, 2, 10), utc(2026, 7, 9, 10)]
    assert capped.capped == {"two-rules": utc(2026, 7, 13, 10)}


def test_a_descriptive_property_given_twice_is_read_from_its_first() -> None:
    text = calendar(
        event("twice", "DTSTART:20260710T090000Z", "SUMMARY:First", "SUMMARY:Second", "SEQUENCE:2", "SEQUENCE:3")
    )
    (occurrence,) = run(text).occurrences
    assert occurrence.summary == "First" and occurrence.sequence == 2


def test_an_unforeseen_exception_quarantines_that_item_naming_it_and_logs_it_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import syncd.calendar.occurrences as occurrences

    real = occurrences._occurrence

    def breaks_on_odd(c: object, ident: OccurrenceId, *args: object) -> object:
        if ident.uid == "odd":
            raise RuntimeError("the library did something new")
        return real(c, ident, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(occurrences, "_occurrence", breaks_on_odd)
    caplog.set_level("DEBUG", logger="syncd.calendar.occurrences")
    series = calendar(event("odd", "DTSTART:20260710T090000Z", "RRULE:FREQ=DAILY;COUNT=3"))
    result = expand_all(three(series), WINDOW)
    assert [o.id.uid for o in result.occurrences] == ["a", "c"]
    (quarantine,) = result.quarantined
    assert quarantine.uid == "odd" and quarantine.location.source == "work"
    assert quarantine.reason == "cannot be expanded: RuntimeError: the library did something new"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [f"source work, UID odd: {quarantine.reason}"]
    assert [r.exc_info is not None for r in caplog.records] == [False, True]  # the traceback at DEBUG only
    assert caplog.records[1].levelname == "DEBUG"


def test_two_components_of_one_uid_in_one_resource_are_named_as_such() -> None:
    twice = calendar(event("twice", "DTSTART:20260710T090000Z"), event("twice", "DTSTART:20260711T090000Z"))
    (quarantine,) = expand_all(three(twice), WINDOW).quarantined
    assert quarantine.reason == "duplicate UID: two components with the same UID and RECURRENCE-ID"


def test_a_line_icalendar_cannot_split_is_named_as_a_line_not_as_none() -> None:
    broken = calendar(event("odd", "DTSTART:20260710T090000Z", "X-APPLE-RADIUS=49.9"))
    (quarantine,) = expand_all([Resource(Location("work", "/cal/", "odd.ics"), "1", broken)], WINDOW).quarantined
    assert quarantine.uid == "odd" and quarantine.reason.startswith("an unreadable line: ")

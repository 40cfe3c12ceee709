"""The benchmarks' mixed calendar: 80% single events spread over the sync window, 20% weekly series.

The same events serve a Radicale collection (:func:`mixed_events`, one VEVENT each) and an ICS
file (:func:`mixed_calendar`), so CalDAV and ICS figures are of one calendar. Times are relative
to ``now``: the single events fall from 12 hours ago to 58 days ahead, the series began up to
a month ago and repeat without end.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta


def uid(n: int) -> str:
    """The UID of the ``n``-th event (Radicale names its object ``<uid>.ics``)."""
    return f"bench-{n}"


def mixed_event(n: int, now: datetime, tag: str = "") -> str:
    """The ``n``-th event's VEVENT (CRLF lines), every fifth a weekly series; ``tag`` changes its summary."""
    weekly = n % 5 == 0
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=(n * 7) % (24 * 58) - 12)
    if weekly:
        start -= timedelta(days=n % 30)
    summary = f"Event {n}" + (f" ({tag})" if tag else "")
    lines = ["BEGIN:VEVENT", f"UID:{uid(n)}", "DTSTAMP:20260101T000000Z", f"DTSTART:{start:%Y%m%dT%H%M%SZ}"]
    lines += ["DURATION:PT30M", f"SUMMARY:{summary}", "ORGANIZER:mailto:ada@example.com"]
    lines += ["RRULE:FREQ=WEEKLY"] if weekly else []
    return "\r\n".join([*lines, "END:VEVENT"]) + "\r\n"


def mixed_events(count: int, now: datetime, changed: Mapping[int, str] | None = None) -> list[str]:
    """The first ``count`` events; ``changed`` maps an event's number to the tag its summary gets."""
    tags = changed or {}
    return [mixed_event(n, now, tags.get(n, "")) for n in range(count)]


def mixed_calendar(count: int, now: datetime, changed: Mapping[int, str] | None = None) -> str:
    """The same events as one VCALENDAR, an ICS file's text."""
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
    return head + "".join(mixed_events(count, now, changed)) + "END:VCALENDAR\r\n"

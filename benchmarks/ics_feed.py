"""ICS feed costs: parse throughput, and the incremental re-sync ratio on a 10,000-event feed.

Run: python benchmarks/ics_feed.py [--events N]

- full parse: icalendar's parse of the whole feed (the yardstick);
- first sync: the connector's split and digests plus expanding every item into occurrences;
- re-sync, one event changed: the connector's split and digests plus expanding that one item.
  Aim: at most a tenth of the full parse.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from syncd.calendar.connectors.ics import IcsSource
from syncd.calendar.occurrences import Window, expand_all
from syncd.model import CollectionChanges, Cursor


def read(feed: IcsSource, since: Cursor) -> CollectionChanges:
    """One read of a feed's one collection, its target."""
    return feed.changes(feed.target, since)


def make_feed(events: int, changed: int | None = None) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", "X-WR-TIMEZONE:Europe/Berlin"]
    start = datetime(2026, 7, 1, 8, tzinfo=UTC)
    for n in range(events):
        due = start + timedelta(hours=n % 1400)
        lines += [
            "BEGIN:VEVENT",
            f"UID:event-{n}@bench.example",
            "DTSTAMP:20260101T000000Z" if changed is None else "DTSTAMP:20260102T000000Z",
            f"DTSTART:{due:%Y%m%dT%H%M%SZ}",
            f"DTEND:{due + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Customer call {n}" + (" (moved)" if n == changed else ""),
            f"DESCRIPTION:Agenda for call {n}\\nJoin: https://meet.google.com/abc-defg-{n:03d}",
            "ORGANIZER:mailto:ada@example.com",
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:customer{n}@customer.example",
        ]
        if n % 50 == 0:
            lines.append("RRULE:FREQ=WEEKLY;COUNT=8")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def timed(work: object) -> tuple[float, object]:
    began = time.perf_counter()
    result = work()  # type: ignore[operator]
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    window = Window(
        datetime(2026, 6, 30, tzinfo=UTC), datetime(2026, 9, 30, tzinfo=UTC), zone=ZoneInfo("Europe/Berlin")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feed.ics"
        path.write_text(make_feed(args.events))
        text = path.read_text()
        full, _ = timed(lambda: icalendar.Calendar.from_ical(text))
        source = IcsSource("bench", str(path))

        def first_sync() -> tuple[object, int]:
            changes = read(source, Cursor())
            return changes, len(expand_all(changes.changed, window).occurrences)

        first, (changes, occurrences) = timed(first_sync)
        path.write_text(make_feed(args.events, changed=args.events // 2))

        def resync() -> int:
            again = read(source, changes.cursor)  # type: ignore[attr-defined]
            assert len(again.changed) == 1, len(again.changed)
            return len(expand_all(again.changed, window).occurrences)

        incremental, _ = timed(resync)
    print(f"feed: {args.events} events, {len(text) / 1e6:.1f} MB, {occurrences} occurrences in the window")
    print(f"icalendar full parse:       {full * 1000:8.0f} ms ({args.events / full:8.0f} events/s)")
    print(f"first sync (split+expand):  {first * 1000:8.0f} ms ({args.events / first:8.0f} events/s)")
    print(
        f"re-sync, one event changed: {incremental * 1000:8.0f} ms (ratio to full parse {incremental / full:.3f}; aim <= 0.1)"
    )


if __name__ == "__main__":
    main()

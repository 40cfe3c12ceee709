"""syncd's ICS feed: activities as plain RFC 5545 events, the same data giving the same bytes.

One VEVENT per activity (DESIGN section 7): SUMMARY is the activity type's name and the calendar
item's title when syncd knows it, else the note's first line (never the provenance line); DTSTART
the due time; DTEND from the item's own length, else the type's ``calendar_sync_duration``
(default 30 minutes); logged activities carry the completed marker. An activity of an all-day
calendar item is an all-day event (DTSTART and DTEND as DATE values, its day in its source's
zone, so apps show it as a day and not as 24 hours across two) unless the feed's ``all_day`` is
``timed``: then it is a short event at the due time (``sync.all_day_time``), as long as its type's. UIDs are syncd's own
(``syncd-activity-<id>``, which syncd never imports back); SEQUENCE and LAST-MODIFIED come from
syncd's change counter and time, and DTSTAMP is LAST-MODIFIED, so nothing depends on the clock.

Each activity's component is rendered once per change and its bytes kept (:class:`ComponentCache`),
so a warm render only joins bytes. The body's strong ETag is a digest of those bytes.

A rendered feed is saved in the state (:func:`refresh_feed`), its Last-Modified the time its
bytes last changed: the daemon serves it from the start after a restart, and every worker of a
shared state serves what one of them rendered (:class:`SavedFeeds`), so a calendar app gets the
same bytes, ETag and Last-Modified whichever process answers.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.config import Config, FeedConfig
from syncd.identifiers import feed_uid, is_provenance
from syncd.kizen import ActivitiesClient
from syncd.state import Pairing, RenderedFeed, Store

DEFAULT_MINUTES = 30
REFRESH = "PT15M"
_CRLF = "\r\n"
_SLACK = timedelta(seconds=1)  # Kizen's list bounds may be exclusive: widen them


@dataclass(frozen=True)
class FeedItem:
    """What the feed shows of one activity."""

    activity_id: str
    type_name: str
    due: datetime
    note: str = ""
    title: str | None = None  # the calendar item's summary, when syncd knows it
    minutes: int | None = None  # the calendar item's length, else the type's default
    type_minutes: int | None = None
    logged: bool = False
    logged_at: datetime | None = None
    sequence: int = 0
    changed_at: datetime | None = None
    day: date | None = None  # an all-day item's first day (in its source's zone): shown as a DATE event
    days: int = 1  # how many days an all-day item spans


def summary(item: FeedItem, marker: str) -> str:
    """The type's name with the calendar's title, else the note's first line; the marker if logged."""
    lines = [line.strip() for line in item.note.splitlines() if line.strip() and not is_provenance(line)]
    title = item.title or (lines[0] if lines else "")
    text = f"{item.type_name}: {title}" if title and title != item.type_name else item.type_name
    return f"{marker}{text}" if item.logged and marker else text


def render_component(item: FeedItem, marker: str = "✓ ") -> bytes:
    """One VEVENT, folded and escaped as RFC 5545 wants, with CRLF line ends."""
    start = item.due.astimezone(UTC)  # a direct log comes with its logged_at as its due time
    minutes = item.minutes or item.type_minutes or DEFAULT_MINUTES
    stamp = (item.changed_at or item.due).astimezone(UTC)
    description = "\n".join(line for line in item.note.splitlines() if not is_provenance(line)).strip()
    lines = [
        "BEGIN:VEVENT",
        f"UID:{feed_uid(item.activity_id)}",
        f"DTSTAMP:{_utc(stamp)}",
        f"LAST-MODIFIED:{_utc(stamp)}",
        f"SEQUENCE:{item.sequence}",
        *(
            [f"DTSTART;VALUE=DATE:{item.day:%Y%m%d}", f"DTEND;VALUE=DATE:{item.day + timedelta(days=item.days):%Y%m%d}"]
            if item.day is not None
            else [f"DTSTART:{_utc(start)}", f"DTEND:{_utc(start + timedelta(minutes=minutes))}"]
        ),
        f"SUMMARY:{_text(summary(item, marker))}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{_text(description)}")
    if item.logged:
        lines.append("STATUS:CONFIRMED")
        lines.append(f"X-SYNCD-LOGGED:{_utc((item.logged_at or stamp).astimezone(UTC))}")
    lines.append("END:VEVENT")
    return (_CRLF.join(_fold(line) for line in lines) + _CRLF).encode()


class ComponentCache:
    """Each activity's component bytes, rendered again only when the activity's data changes.

    The cache keeps the item it rendered; an equal item (a frozen dataclass compared field by
    field) reuses the bytes.
    """

    def __init__(self, marker: str = "✓ ") -> None:
        self.store: dict[str, tuple[FeedItem, bytes]] = {}
        self.marker = marker
        self.rendered = 0

    def component(self, item: FeedItem) -> bytes:
        kept = self.store.get(item.activity_id)
        if kept is not None and kept[0] == item:
            return kept[1]
        body = render_component(item, self.marker)
        self.store[item.activity_id] = (item, body)
        self.rendered += 1
        return body


def render_feed(name: str, items: Iterable[FeedItem], cache: ComponentCache) -> tuple[bytes, str]:
    """The whole feed's bytes (events ordered by due time, then id) and its strong ETag."""
    ordered = sorted(items, key=lambda i: (i.due, i.activity_id))
    head = _CRLF.join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//syncd//activities feed//EN",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            _fold(f"X-WR-CALNAME:{_text(name)}"),
            f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
            f"X-PUBLISHED-TTL:{REFRESH}",
        ]
    )
    body = head.encode() + _CRLF.encode() + b"".join(cache.component(i) for i in ordered) + b"END:VCALENDAR\r\n"
    return body, f'"{hashlib.sha256(body).hexdigest()[:40]}"'


def refresh_feed(
    config: Config, state: Store, kizen: ActivitiesClient, feed: FeedConfig, cache: ComponentCache, now: datetime
) -> RenderedFeed | None:
    """Renders the feed from Kizen and the state; saves and returns it if its bytes differ from
    the saved ones. None: the same bytes (what is saved stays, its Last-Modified with it; only
    the saved ETag is read to tell)."""
    body, etag = render_feed(feed.name, feed_items(config, state, kizen, feed, now), cache)
    if state.feed_etag(feed.name) == etag:
        return None
    rendered = RenderedFeed(body, etag, now.replace(microsecond=0))
    state.save_feed(feed.name, rendered)
    return rendered


class SavedFeeds:
    """The feeds as saved in the state, for a process that serves what another rendered (a
    worker): a request costs one small read of the saved ETag, and the bytes are read again only
    when it changed. None: the feed was never rendered yet."""

    def __init__(self, state: Store) -> None:
        self.state = state
        self._kept: dict[str, RenderedFeed] = {}
        self._lock = threading.Lock()  # the web server answers on several threads

    def __call__(self, name: str) -> RenderedFeed | None:
        etag = self.state.feed_etag(name)
        if etag is None:
            return None
        with self._lock:
            kept = self._kept.get(name)
        if kept is not None and kept.etag == etag:
            return kept
        saved = self.state.feed(name)
        if saved is not None:
            with self._lock:
                self._kept[name] = saved
        return saved


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """RFC 5545 TEXT escaping."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Folds a content line at 75 octets, never inside a UTF-8 character."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts: list[str] = []
    start, limit = 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # not in the middle of a character
            end -= 1
        parts.append(data[start:end].decode())
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(parts)


def _all_day(
    config: Config, feed: FeedConfig, pairing: Pairing | None, due: datetime
) -> tuple[date | None, int, int | None]:
    """An activity's all-day day, span in days and length in minutes, for the feed.

    A timed item: no day, its own length. An all-day one: its day in its source's zone (Kizen
    may have moved the due time: the day follows it) and its span, or, with ``all_day =
    "timed"``, no day and no length of its own (its type's, at the due time)."""
    seen = pairing.calendar_seen if pairing else {}
    if not seen.get("all_day") or pairing is None:
        return None, 1, seen.get("minutes")
    if feed.all_day == "timed":
        return None, 1, None
    names = {s.name: s for s in config.sources}
    source = names.get(pairing.lead.source) if pairing.lead else None
    zone = config.source_zone(source) if source else ZoneInfo(config.sync.zone)
    return due.astimezone(zone).date(), max(1, (seen.get("minutes") or 0) // (24 * 60)), None


def feed_items(
    config: Config, state: Store, kizen: ActivitiesClient, feed: FeedConfig, now: datetime
) -> list[FeedItem]:
    """The activities a feed shows: its employees' scheduled ones in the window, the logged
    ones from the lookback, and (if the feed asks) those logged directly in Kizen."""
    emails = {e.lower() for e in feed.employees} or {s.owner.lower() for s in config.sources}
    team = {p.email.lower(): str(p.id) for p in kizen.team()}
    employees = sorted(team[e] for e in emails if e in team)
    types = {str(t.id): t for t in kizen.activity_types()}
    wanted = {w.lower() for w in feed.activity_types}
    shown = {i for i, t in types.items() if not wanted or t.name.lower() in wanted or t.api_name.lower() in wanted}
    start, end = now - config.sync.lookback - _SLACK, now + config.sync.horizon + _SLACK
    items: list[FeedItem] = []
    for completed in (False, True):
        if not employees:
            break
        for activity in kizen.list_scheduled(completed=completed, employee_ids=employees, from_date=start, to_date=end):
            type_id = str(activity.activity_object.id)
            if type_id not in shown:
                continue
            pairing = state.pairing_of(str(activity.id))
            seen = pairing.calendar_seen if pairing else {}
            note = seen.get("note") or ("" if seen.get("summary") else kizen.get(activity.id).note)
            day, days, minutes = _all_day(config, feed, pairing, activity.due_datetime)
            items.append(
                FeedItem(
                    activity_id=str(activity.id),
                    type_name=types[type_id].name,
                    due=activity.due_datetime,
                    note=note,
                    title=seen.get("summary") or None,
                    minutes=minutes,
                    type_minutes=types[type_id].calendar_sync_duration,
                    logged=activity.completed,
                    logged_at=activity.completed_at,
                    sequence=pairing.changes if pairing else 0,
                    changed_at=pairing.changed_at if pairing else activity.created,
                    day=day,
                    days=days,
                )
            )
    if feed.include_direct_logs:
        for type_id in sorted(shown):
            for logged in kizen.list_logged(type_id):
                if logged.scheduled_activity_id is None and start <= logged.logged_at <= end:
                    items.append(
                        FeedItem(
                            activity_id=str(logged.id),
                            type_name=types[type_id].name,
                            due=logged.logged_at,
                            note=logged.notes or "",
                            type_minutes=types[type_id].calendar_sync_duration,
                            logged=True,
                            logged_at=logged.logged_at,
                            changed_at=logged.logged_at,
                        )
                    )
    return items

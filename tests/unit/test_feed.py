"""The feed's bytes: plain RFC 5545, the same for the same data, rendered once per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import vobject

from syncd.service.feed import ComponentCache, FeedItem, SavedFeeds, render_feed, summary
from syncd.state import RenderedFeed, open_store

DUE = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def items() -> list[FeedItem]:
    return [
        FeedItem(
            "a1",
            "Meeting",
            DUE,
            note="Intro call\nAgenda; pricing, terms\n\nsyncd: ada/0123",
            title="Intro call",
            minutes=45,
        ),
        FeedItem(
            "a2", "Call", DUE - timedelta(days=1), note="Follow up with Charles\nsyncd: ada/4567", type_minutes=15
        ),
        FeedItem("a3", "Meeting", DUE + timedelta(days=1), note="Done deal", logged=True, logged_at=DUE, sequence=3),
        FeedItem("a4", "Follow-up", DUE + timedelta(days=2), note="Ünïcödé " * 20, changed_at=DUE - timedelta(days=9)),
    ]


def test_the_same_data_gives_the_same_bytes_whatever_the_order() -> None:
    first, etag = render_feed("team", items(), ComponentCache())
    again, etag_again = render_feed("team", list(reversed(items())), ComponentCache())
    assert first == again and etag == etag_again and etag.startswith('"')
    changed, other = render_feed(
        "team", [*items()[:3], FeedItem("a4", "Follow-up", DUE, note="moved")], ComponentCache()
    )
    assert changed != first and other != etag


def test_a_warm_render_reuses_every_component_and_a_change_rerenders_one() -> None:
    cache = ComponentCache()
    render_feed("team", items(), cache)
    assert cache.rendered == 4
    render_feed("team", items(), cache)
    assert cache.rendered == 4
    moved = [*items()[:3], FeedItem("a4", "Follow-up", DUE + timedelta(days=5), note="x")]
    render_feed("team", moved, cache)
    assert cache.rendered == 5


def test_icalendar_and_vobject_both_read_it() -> None:
    body, _ = render_feed("team", items(), ComponentCache())
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}
    assert sorted(events) == ["syncd-activity-a1", "syncd-activity-a2", "syncd-activity-a3", "syncd-activity-a4"]
    intro = events["syncd-activity-a1"]
    assert str(intro["SUMMARY"]) == "Meeting: Intro call"
    assert intro["DTEND"].dt - intro["DTSTART"].dt == timedelta(minutes=45)
    assert "syncd:" not in str(intro["DESCRIPTION"]) and "Agenda; pricing, terms" in str(intro["DESCRIPTION"])
    assert events["syncd-activity-a2"]["DTEND"].dt - events["syncd-activity-a2"]["DTSTART"].dt == timedelta(minutes=15)
    assert (
        str(events["syncd-activity-a3"]["SUMMARY"]) == "✓ Meeting: Done deal"
        and int(events["syncd-activity-a3"]["SEQUENCE"]) == 3
    )
    parsed = vobject.readOne(body.decode())
    by_uid = {e.uid.value: e for e in parsed.vevent_list}
    assert by_uid["syncd-activity-a4"].summary.value == "Follow-up: " + ("Ünïcödé " * 20).strip()
    assert by_uid["syncd-activity-a1"].dtstart.value == DUE


def test_the_summary_rules() -> None:
    assert summary(FeedItem("x", "Call", DUE, note="syncd: ada/1"), "✓ ") == "Call"
    assert summary(FeedItem("x", "Call", DUE, note="\nsyncd: ada/1", title="Intro"), "✓ ") == "Call: Intro"
    assert summary(FeedItem("x", "Call", DUE, note="First line\nsecond"), "✓ ") == "Call: First line"
    assert summary(FeedItem("x", "Call", DUE, note="Done", logged=True), "") == "Call: Done"


class _CountedState:
    """A SQLite state whose whole-feed reads are counted."""

    def __init__(self, path: Path) -> None:
        self.store = open_store(path)
        self.reads = 0

    def feed_etag(self, name: str) -> str | None:
        return self.store.feed_etag(name)

    def feed(self, name: str) -> RenderedFeed | None:
        self.reads += 1
        return self.store.feed(name)


def test_saved_feeds_read_the_bytes_again_only_when_the_saved_etag_changed(tmp_path: Path) -> None:
    state = _CountedState(tmp_path / "state.sqlite")
    try:
        served = SavedFeeds(state)  # type: ignore[arg-type]
        assert served("team") is None and state.reads == 0  # never rendered: nothing to read
        first = RenderedFeed(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", '"one"', datetime(2026, 12, 1, 9, tzinfo=UTC))
        state.store.save_feed("team", first)
        assert served("team") == first and served("team") == first and state.reads == 1
        second = RenderedFeed(
            b"BEGIN:VCALENDAR\r\n\r\nEND:VCALENDAR\r\n", '"two"', datetime(2026, 12, 1, 10, tzinfo=UTC)
        )
        state.store.save_feed("team", second)  # saved by another process
        assert served("team") == second and served("team") == second and state.reads == 2
    finally:
        state.store.close()

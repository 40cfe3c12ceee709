"""The ICS connector: files and URLs, conditional GET, gzip, size limits, per-UID change detection."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.calendar.connectors.ics import IcsSource
from syncd.calendar.occurrences import Window, expand_all
from syncd.errors import SourceError
from syncd.model import CollectionChanges, Cursor
from tests.logs import assert_never_logged, capture_every_level


def read(feed: IcsSource, since: Cursor) -> CollectionChanges:
    """One read of a feed's one collection, its target."""
    return feed.changes(feed.target, since)


def feed(
    *events: tuple[str, str], stamp: str = "20260101T000000Z", header: str = "X-WR-TIMEZONE:Europe/Berlin\n"
) -> str:
    body = "".join(
        f"BEGIN:VEVENT\n{'UID:' + uid + chr(10) if uid else ''}DTSTAMP:{stamp}\nDTSTART:20260710T0{n}0000Z\nSUMMARY:{summary}\nEND:VEVENT\n"
        for n, (uid, summary) in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{header}{body}END:VCALENDAR\n"


THREE = [("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "feed.ics"
    target.write_text(feed(*THREE))
    return target


def test_a_file_feed_lists_each_uid_once(path: Path) -> None:
    changes = read(IcsSource("team", str(path)), Cursor())
    assert sorted(r.location.href for r in changes.changed) == ["a", "b", "c"]
    assert changes.complete and changes.deleted == () and changes.requests == 0
    assert all(r.location.source == "team" and r.location.collection == str(path) for r in changes.changed)
    assert "X-WR-TIMEZONE:Europe/Berlin" in changes.changed[0].ical


def test_an_untouched_file_costs_no_read_and_an_unchanged_body_no_parse(path: Path) -> None:
    source = IcsSource("team", str(path))
    first = read(source, Cursor())
    untouched = read(source, first.cursor)
    assert untouched.changed == () and not untouched.complete and untouched.cursor == first.cursor
    os.utime(path, ns=(1, 1))  # same bytes, new modification time: read, but not parsed
    touched = read(source, first.cursor)
    assert touched.changed == () and not touched.complete
    assert touched.cursor.digests == first.cursor.digests and touched.cursor.etag != first.cursor.etag


def test_only_the_uid_that_changed_comes_back(path: Path) -> None:
    source = IcsSource("team", str(path))
    first = read(source, Cursor())
    # A re-export stamps every event anew (DTSTAMP) and changes one summary.
    path.write_text(feed(("a", "Alpha"), ("b", "Beta, moved"), ("c", "Gamma"), stamp="20260202T000000Z"))
    second = read(source, first.cursor)
    assert [r.location.href for r in second.changed] == ["b"] and "Beta, moved" in second.changed[0].ical
    assert sorted(second.unchanged) == ["a", "c"] and second.deleted == () and second.complete
    path.write_text(feed(("a", "Alpha"), ("b", "Beta, moved")))
    third = read(source, second.cursor)
    assert third.changed == () and third.deleted == ("c",)


def test_a_changed_calendar_property_changes_every_item(path: Path) -> None:
    source = IcsSource("team", str(path))
    first = read(source, Cursor())
    path.write_text(feed(*THREE, header="X-WR-TIMEZONE:America/New_York\n"))
    assert len(read(source, first.cursor).changed) == 3


def test_items_without_uid_get_a_stable_synthetic_one(tmp_path: Path) -> None:
    target = tmp_path / "no-uids.ics"
    target.write_text(feed(("", "First"), ("", "Second")))
    source = IcsSource("feed", str(target))
    first = read(source, Cursor())
    uids = sorted(r.location.href for r in first.changed)
    assert len(uids) == 2 and all(u.startswith("syncd-nouid-") for u in uids)
    target.write_text(feed(("", "First"), ("", "Second"), stamp="20260303T000000Z"))
    again = read(source, first.cursor)
    assert again.changed == () and sorted(again.unchanged) == uids
    occurrences = expand_all(first.changed, Window(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)))
    assert sorted(o.id.uid for o in occurrences.occurrences) == uids


def test_resources_carry_the_zones_and_properties_they_need(tmp_path: Path) -> None:
    target = tmp_path / "outlook.ics"
    target.write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n"
        "BEGIN:VTIMEZONE\nTZID:Company Time\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0530\nTZOFFSETTO:+0530\nEND:STANDARD\nEND:VTIMEZONE\n"
        "BEGIN:VTIMEZONE\nTZID:Unused\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\n"
        "BEGIN:VEVENT\nUID:z\nDTSTART;TZID=Company Time:20260710T090000\n"
        "BEGIN:VALARM\nTRIGGER:-PT10M\nACTION:DISPLAY\nEND:VALARM\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    (resource,) = read(IcsSource("outlook", str(target)), Cursor()).changed
    assert "TZID:Company Time" in resource.ical and "TZID:Unused" not in resource.ical
    (occurrence,) = expand_all(
        [resource], Window(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))
    ).occurrences
    assert occurrence.due == datetime(2026, 7, 10, 3, 30, tzinfo=UTC) and len(occurrence.alarms) == 1


def test_a_google_feed_through_the_connector_recurs_in_its_zone(tmp_path: Path) -> None:
    target = tmp_path / "google.ics"
    target.write_text(
        "BEGIN:VCALENDAR\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\nVERSION:2.0\nX-WR-TIMEZONE:Europe/Berlin\n"
        "BEGIN:VEVENT\nDTSTART:20260326T080000Z\nRRULE:FREQ=WEEKLY;COUNT=2\nUID:g@google.com\nSUMMARY:Sync\nEND:VEVENT\n"
        "END:VCALENDAR\n"
    )
    changes = read(IcsSource("google", str(target)), Cursor())
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC), zone=ZoneInfo("UTC"))
    assert [o.due.hour for o in expand_all(changes.changed, window).occurrences] == [8, 7]


def test_a_gzipped_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "feed.ics.gz"
    target.write_bytes(gzip.compress(feed(*THREE).encode()))
    assert len(read(IcsSource("gz", str(target)), Cursor()).changed) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [("<html><body>Sign in</body></html>", "not iCalendar"), ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\n", "unbalanced")],
)
def test_a_file_that_is_not_icalendar_fails_the_source(tmp_path: Path, content: str, message: str) -> None:
    target = tmp_path / "bad.ics"
    target.write_text(content)
    with pytest.raises(SourceError, match=message) as failed:
        read(IcsSource("bad", str(target)), Cursor())
    assert failed.value.source == "bad"


def test_a_missing_file_fails_the_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        read(IcsSource("gone", str(tmp_path / "nope.ics")), Cursor())


def test_a_file_over_the_limit_fails_clearly(path: Path) -> None:
    with pytest.raises(SourceError, match="larger than 100 bytes"):
        read(IcsSource("big", str(path), max_bytes=100), Cursor())


# --- over HTTP ------------------------------------------------------------------------------------


class FeedServer:
    """A loopback HTTP server for one feed: ETag and Last-Modified, 304s, optional gzip."""

    def __init__(self) -> None:
        self.body = feed(*THREE).encode()
        self.status = 200
        self.gzip = False
        self.seen: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(dict(self.headers))
                etag = f'"{hash(server.body) & 0xFFFFFFFF:x}"'
                if server.status != 200:
                    self.send_response(server.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                payload = gzip.compress(server.body) if server.gzip else server.body
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", formatdate(0, usegmt=True))
                if server.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/calendars/secret-token-123/basic.ics"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    running = FeedServer()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def test_a_url_feed_uses_conditional_get_and_a_304_costs_nothing_more(server: FeedServer, http: httpx.Client) -> None:
    source = IcsSource("web", server.url, http=http)
    first = read(source, Cursor())
    assert len(first.changed) == 3 and first.requests == 1 and first.cursor.etag
    second = read(source, first.cursor)
    assert second.changed == () and second.requests == 1 and not second.complete
    assert server.seen[1]["If-None-Match"] == first.cursor.etag
    assert server.seen[1]["If-Modified-Since"] == first.cursor.last_modified


def test_a_gzip_encoded_feed_is_decoded(server: FeedServer, http: httpx.Client) -> None:
    server.gzip = True
    changes = read(IcsSource("web", server.url, http=http), Cursor())
    assert len(changes.changed) == 3 and "gzip" in server.seen[0]["Accept-Encoding"]


def test_a_url_feed_over_the_limit_fails_clearly(server: FeedServer, http: httpx.Client) -> None:
    server.gzip = True  # the limit counts decompressed bytes
    with pytest.raises(SourceError, match="larger than 200 bytes"):
        read(IcsSource("web", server.url, http=http, max_bytes=200), Cursor())


@pytest.mark.parametrize("status", [401, 404, 500])
def test_a_failing_server_fails_the_source_without_its_token(
    server: FeedServer, http: httpx.Client, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    capture_every_level(caplog)
    server.status = status
    with pytest.raises(SourceError, match=str(status)) as failed:
        read(IcsSource("web", server.url, http=http), Cursor())
    assert "secret-token-123" not in str(failed.value)
    # httpx logs every URL at INFO, the token with it: the CLI keeps it at WARNING unless -v
    assert_never_logged(caplog, "secret-token-123", besides=("httpx",))


def test_garbage_from_a_server_fails_the_source(server: FeedServer, http: httpx.Client) -> None:
    server.body = b"<!doctype html><title>Login</title>"
    with pytest.raises(SourceError, match="not iCalendar"):
        read(IcsSource("web", server.url, http=http), Cursor())


def test_an_unreachable_server_fails_the_source(http: httpx.Client) -> None:
    with pytest.raises(SourceError, match="cannot fetch"):
        read(IcsSource("web", "http://127.0.0.1:9/feed.ics?token=s3cret", http=http), Cursor())

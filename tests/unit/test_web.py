"""The daemon's HTTP face over real loopback HTTP: feeds, Kizen's webhook, health, metrics."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import icalendar
import pytest

from syncd import __version__
from syncd.service.feed import ComponentCache, FeedItem, render_feed
from syncd.service.serving import LoopbackServer
from syncd.service.web import Health, Metrics, SourceHealth, WebApp
from syncd.state import RenderedFeed
from tests.logs import assert_never_logged, capture_every_level

WHEN = datetime(2026, 11, 22, 12, tzinfo=UTC)


class Daemon:
    def __init__(self) -> None:
        self.items = [FeedItem("a1", "Meeting", WHEN, note="Intro call")]
        self.cache = ComponentCache()
        self.logged: list[str] = []
        self.health = Health(SourceHealth(WHEN, None, False), {"ada": SourceHealth(WHEN, None, False)})
        self.metrics = Metrics()

    def render(self, name: str) -> RenderedFeed:
        body, etag = render_feed(name, self.items, self.cache)
        return RenderedFeed(body, etag, WHEN)


@pytest.fixture
def daemon() -> Iterator[tuple[Daemon, httpx.Client]]:
    state = Daemon()
    app = WebApp(
        feeds={"t0ken-team": "team"},
        render=state.render,
        webhook_secret="hook-s3cret",
        on_logged=state.logged.append,
        health=lambda: state.health,
        metrics=state.metrics,
    )
    server = LoopbackServer(app, ident="syncd-test").start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield state, client
    server.stop()


def test_a_feed_is_served_with_a_strong_etag_and_304_on_a_repeat(daemon: tuple[Daemon, httpx.Client]) -> None:
    state, client = daemon
    first = client.get("/feeds/t0ken-team.ics")
    assert first.status_code == 200 and first.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert first.headers["ETag"].startswith('"') and first.headers["Last-Modified"] == "Sun, 22 Nov 2026 12:00:00 GMT"
    assert [str(e["UID"]) for e in icalendar.Calendar.from_ical(first.content).walk("VEVENT")] == ["syncd-activity-a1"]
    repeat = client.get("/feeds/t0ken-team.ics", headers={"If-None-Match": first.headers["ETag"]})
    assert repeat.status_code == 304 and repeat.content == b""
    state.items.append(FeedItem("a2", "Call", WHEN, note="New"))
    changed = client.get("/feeds/t0ken-team.ics", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]


def test_a_wrong_token_and_a_missing_feed_look_the_same(daemon: tuple[Daemon, httpx.Client]) -> None:
    _, client = daemon
    wrong, missing = client.get("/feeds/guess.ics"), client.get("/feeds/other-feed.ics")
    assert wrong.status_code == missing.status_code == 404 and wrong.content == missing.content


def test_the_webhook_takes_the_logged_id_and_refuses_a_wrong_secret(
    daemon: tuple[Daemon, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    capture_every_level(caplog)
    state, client = daemon
    body = {"event": "activity.logged", "logged_activity_id": "6f1c2a7e-0000-4000-8000-000000000001"}
    assert client.post("/webhooks/kizen/wrong", json=body).status_code == 404
    assert state.logged == []
    for _ in range(2):  # a replay is just another hint
        assert client.post("/webhooks/kizen/hook-s3cret", json=body).status_code == 202
    assert state.logged == [body["logged_activity_id"]] * 2
    assert client.post("/webhooks/kizen/hook-s3cret", content=b"not json").status_code == 400
    assert_never_logged(caplog, "hook-s3cret", besides=("httpx",))  # the test's own client logs its URLs


def test_health_reports_kizen_and_each_source_and_503_when_one_is_stale(daemon: tuple[Daemon, httpx.Client]) -> None:
    state, client = daemon
    healthy = client.get("/healthz")
    assert healthy.status_code == 200 and healthy.json()["sources"]["ada"]["last_success"] == WHEN.isoformat()
    assert healthy.json()["kizen"] == {"last_success": WHEN.isoformat(), "last_error": None, "stale": False}
    fine = SourceHealth(WHEN, None, False)
    state.health = Health(fine, {"ada": SourceHealth(WHEN, "Radicale answered 503", True)})
    stale = client.get("/healthz")
    assert stale.status_code == 503 and stale.json()["sources"]["ada"]["last_error"] == "server error"
    state.health = Health(SourceHealth(WHEN, "Kizen not reached while ...", True), {"ada": fine})
    kizen_down = client.get("/healthz")
    assert kizen_down.status_code == 503 and kizen_down.json()["kizen"]["last_error"] == "unreachable"


def test_metrics_are_prometheus_text(daemon: tuple[Daemon, httpx.Client]) -> None:
    state, client = daemon
    state.metrics.runs.labels(source="ada", status="ok").inc()
    state.metrics.actions.labels(kind="create").inc(3)
    state.metrics.failures.labels(component="kizen", kind="unavailable").inc()
    state.metrics.last_success.labels(component="source", name="ada").set(WHEN.timestamp())
    text = client.get("/metrics").text
    assert 'syncd_runs_total{source="ada",status="ok"} 1.0' in text and 'syncd_actions_total{kind="create"} 3.0' in text
    assert 'syncd_failures_total{component="kizen",kind="unavailable"} 1.0' in text
    (gauge,) = [line for line in text.splitlines() if line.startswith("syncd_last_success_timestamp_seconds{")]
    assert gauge.startswith('syncd_last_success_timestamp_seconds{component="source",name="ada"} ')
    assert float(gauge.split()[-1]) == WHEN.timestamp()
    assert "_created" not in text


def test_a_feed_is_gzipped_when_asked_with_an_etag_of_its_own(daemon: tuple[Daemon, httpx.Client]) -> None:
    _, client = daemon
    plain = client.get("/feeds/t0ken-team.ics", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/feeds/t0ken-team.ics", headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes it: the same calendar
    assert int(zipped.headers["Content-Length"]) < len(plain.content)
    assert zipped.headers["ETag"] != plain.headers["ETag"] and zipped.headers["ETag"].endswith('-gzip"')
    assert plain.headers["Vary"] == zipped.headers["Vary"] == "Accept-Encoding"
    refused = client.get("/feeds/t0ken-team.ics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    repeat = client.get(
        "/feeds/t0ken-team.ics", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    )
    assert repeat.status_code == 304 and repeat.headers["ETag"] == zipped.headers["ETag"]


def test_if_modified_since_and_if_none_match_star_answer_304(daemon: tuple[Daemon, httpx.Client]) -> None:
    _, client = daemon
    url = "/feeds/t0ken-team.ics"
    assert client.get(url, headers={"If-Modified-Since": "Sun, 22 Nov 2026 12:00:00 GMT"}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": "Mon, 23 Nov 2026 08:00:00 GMT"}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": "Sun, 22 Nov 2026 11:59:59 GMT"}).status_code == 200
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = {"If-None-Match": '"stale"', "If-Modified-Since": "Mon, 23 Nov 2026 08:00:00 GMT"}
    assert client.get(url, headers=both).status_code == 200


def test_a_304_keeps_the_connection_open(daemon: tuple[Daemon, httpx.Client]) -> None:
    _, client = daemon
    etag = client.get("/feeds/t0ken-team.ics").headers["ETag"]
    host, port = str(client.base_url.host), int(client.base_url.port or 80)
    request = f"GET /feeds/t0ken-team.ics HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: {etag}\r\n\r\n".encode()
    with socket.create_connection((host, port), timeout=10) as conn:
        answers = []
        for _ in range(2):  # two requests on the one connection: both answered
            conn.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(4096)
                assert chunk, "the server closed the connection"
                answer += chunk
            answers.append(answer)
    assert all(a.startswith(b"HTTP/1.1 304") and b"Connection: close" not in a for a in answers)


def test_metrics_negotiate_openmetrics_and_carry_the_build(daemon: tuple[Daemon, httpx.Client]) -> None:
    state, client = daemon
    state.metrics.calendar_requests.labels(source="ada").inc(2)
    text = client.get("/metrics")
    assert text.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert f'syncd_build_info{{version="{__version__}"}} 1.0' in text.text
    assert 'syncd_calendar_requests_total{source="ada"} 2.0' in text.text and 'source="*"' not in text.text
    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert open_metrics.text.rstrip().endswith("# EOF") and "_created" not in open_metrics.text


@pytest.mark.parametrize("port", [40312, 40112, 40444, 4031])
def test_a_port_that_holds_a_status_code_is_no_status_code_in_health(port: int) -> None:
    from syncd.service.web import error_category

    text = f"source 'down': cannot reach http://127.0.0.1:{port}/ (finding the calendars): ConnectError"
    assert error_category(text) == "unreachable"
    assert error_category(f"the server at 127.0.0.1:{port} answered 404 Not Found") == "not found"
    assert error_category(f"[::1]:{port} refused the credentials (401)") == "refused credentials"

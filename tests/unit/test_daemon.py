"""The daemon's bookkeeping, without its process: backoff of a failing source, and staleness."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from werkzeug.test import Client

from syncd.config import load
from syncd.kizen import ActivitiesClient, http_client
from syncd.service.daemon import POLL, Daemon
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 22, 12, tzinfo=UTC)


def daemon(tmp_path: Path, clock: list[datetime]) -> Daemon:
    (tmp_path / "ada.ics").write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:one\nDTSTART:20261203T140000Z\nSUMMARY:Call\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    (tmp_path / "config.toml").write_text(
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        "[daemon]\ninterval_seconds = 60\n"
        '[[sources]]\nname = "ada"\ntype = "ics"\nowner = "ada@example.com"\nurl = "ada.ics"\n'
        '[[sources]]\nname = "down"\ntype = "ics"\nowner = "grace@example.com"\nurl = "missing.ics"\n'
    )
    return Daemon(load(tmp_path / "config.toml"), clock=lambda: clock[0])


def test_a_failing_source_backs_off_without_holding_the_others_up(tmp_path: Path) -> None:
    clock = [START]
    running = daemon(tmp_path, clock)
    try:
        assert running.cycle("down") is not None  # tried, failed
        assert running.health["down"].failures == 1 and running.health["down"].resume_at == START + timedelta(minutes=2)
        assert running.cycle("down") is None  # backing off: not even tried
        report = running.cycle("ada")
        assert report is not None and report.counts() == {"Create": 1}
        clock[0] = START + timedelta(minutes=3)
        assert running.cycle("down") is not None and running.health["down"].failures == 2
        assert running.health["down"].resume_at == clock[0] + timedelta(minutes=4)
        (tmp_path / "missing.ics").write_text((tmp_path / "ada.ics").read_text().replace("UID:one", "UID:two"))
        clock[0] += timedelta(minutes=5)
        assert running.cycle("down") is not None and running.health["down"].failures == 0
    finally:
        running.close()


def test_a_source_is_stale_after_three_intervals_without_success(tmp_path: Path) -> None:
    clock = [START]
    running = daemon(tmp_path, clock)
    try:
        running.cycle(None)
        clock[0] = START + timedelta(minutes=2)
        health = running._source_health()
        assert not health["ada"].stale and not health["down"].stale
        running.cycle("ada")  # ada succeeds again at 2 min; "down" never does
        clock[0] = START + timedelta(minutes=3, seconds=1)
        health = running._source_health()
        assert health["down"].stale and health["down"].last_error
        assert not health["ada"].stale and health["ada"].last_success == START + timedelta(minutes=2)
    finally:
        running.close()


def test_queued_work_is_not_queued_twice(tmp_path: Path) -> None:
    running = daemon(tmp_path, [START])
    try:
        for _ in range(3):
            running.enqueue(POLL)
        running.enqueue("ada")
        assert running._work.qsize() == 2
    finally:
        running.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sample(running: Daemon, metric: str, **labels: str) -> float | None:
    return running.metrics.registry.get_sample_value(metric, labels)


def test_kizen_failing_is_no_success_and_healthz_is_503_after_three_intervals(tmp_path: Path) -> None:
    clock = [START]
    running = daemon(tmp_path, clock)
    good = running.kizen
    web = Client(running.app)
    try:
        running.cycle(None)  # ada syncs; "down" cannot be read
        assert running.kizen_health.last_success == START and running.health["ada"].last_success == START
        assert (
            sample(running, "syncd_last_success_timestamp_seconds", component="kizen", name="kizen")
            == START.timestamp()
        )
        running.kizen = ActivitiesClient(
            http_client(f"http://127.0.0.1:{closed_port()}"), good.credentials, sleep=lambda _: None
        )
        for minute in (1, 2, 3):
            clock[0] = START + timedelta(minutes=minute)
            report = running.cycle(None)
            assert report is not None and [f.kind for f in report.kizen_failures] == ["unavailable"]
        assert web.get("/healthz").status_code == 200  # three intervals not yet past
        clock[0] = START + timedelta(minutes=3, seconds=1)
        answer = web.get("/healthz")
        assert answer.status_code == 503
        body = answer.get_json()
        assert body["kizen"]["stale"] and body["kizen"]["last_success"] == START.isoformat()
        assert body["kizen"]["last_error"] == "unreachable"  # the whole text in the logs and `syncd status`
        assert running.kizen_health.last_error.startswith("Kizen not reached while reading the scheduled activities")
        ada = body["sources"]["ada"]
        assert ada["last_success"] == START.isoformat() and ada["last_error"] == "unreachable"
        assert sample(running, "syncd_runs_total", source="ada", status="ok") == 1
        assert sample(running, "syncd_runs_total", source="ada", status="failed") == 3
        assert sample(running, "syncd_failures_total", component="kizen", kind="unavailable") == 3
        # "down" was tried at 0 and 2 min: it rests twice as long after each failure (2, then 4 min)
        assert sample(running, "syncd_failures_total", component="source", kind="unreadable") == 2
        assert sample(running, "syncd_last_success_timestamp_seconds", component="source", name="ada") == (
            START.timestamp()
        )
        running.kizen = good
        report = running.cycle(None)
        assert report is not None and report.kizen_failures == [] and running.kizen_health.failures == 0
        assert running.health["ada"].last_success == clock[0] and not running._health().kizen.stale
        assert sample(running, "syncd_runs_total", source="ada", status="ok") == 2
    finally:
        running.kizen = good
        running.close()


def with_feed(tmp_path: Path, clock: list[datetime]) -> Daemon:
    """The daemon of :func:`daemon`'s config with a feed of Ada's activities added."""
    daemon(tmp_path, clock).close()
    write_secret(tmp_path / "feed-token", "a-feed-token-of-enough-length-0123456789")
    with (tmp_path / "config.toml").open("a") as config:
        config.write('[[feeds]]\nname = "ada"\ntoken_file = "feed-token"\nemployees = ["ada@example.com"]\n')
    return Daemon(load(tmp_path / "config.toml"), clock=lambda: clock[0])


def test_a_feed_that_cannot_be_refreshed_keeps_its_content_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [START]
    running = with_feed(tmp_path, clock)
    try:
        running.cycle(None)
        kept = running.feeds["ada"].rendered
        assert kept is not None and b"BEGIN:VEVENT" in kept.body  # the first refresh worked

        def broken(*args: object) -> list[object]:
            raise RuntimeError("the feed's query broke")

        monkeypatch.setattr("syncd.service.feed.feed_items", broken)
        caplog.set_level(logging.DEBUG)
        running.cycle(None)
        assert running.feeds["ada"].rendered == kept  # the last good content stays
        assert sample(running, "syncd_failures_total", component="feed", kind="unexpected") == 1
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == ["feed ada not refreshed: RuntimeError: the feed's query broke"]
        assert all(r.exc_info is None for r in errors)  # the traceback only at DEBUG
    finally:
        running.close()


def test_a_restarted_daemon_serves_the_saved_feed_with_its_bytes_etag_and_last_modified(tmp_path: Path) -> None:
    clock = [START]
    first = with_feed(tmp_path, clock)
    try:
        assert first.feeds["ada"].rendered is None  # never rendered: the app answers 503
        first.cycle(None)
        served = first.feeds["ada"].rendered
        assert served is not None and served.last_modified == START.replace(microsecond=0)
    finally:
        first.close()
    clock[0] = START + timedelta(hours=1)
    again = Daemon(load(tmp_path / "config.toml"), clock=lambda: clock[0])
    try:
        assert again.feeds["ada"].rendered == served  # from the start, before any cycle
        again.refresh_feeds()
        assert again.feeds["ada"].rendered == served  # the same bytes: Last-Modified is not moved
    finally:
        again.close()


def test_a_reload_drops_a_gone_source_and_its_queued_cycle_is_skipped(tmp_path: Path) -> None:
    clock = [START]
    running = daemon(tmp_path, clock)
    running.path = tmp_path / "config.toml"
    try:
        assert running.cycle(None) is not None and "down" in running.connectors
        config = running.path.read_text()
        running.path.write_text(config[: config.index('[[sources]]\nname = "down"')])
        running.reload()
        assert set(running.health) == {"ada"} and "down" not in running.connectors
        assert running.cycle("down") is None  # queued before the reload: nothing to run, no crash
        assert running.cycle("ada") is not None
    finally:
        running.close()


def test_one_cycle_an_interval_reads_every_source_and_leaves_a_resting_one_unread(tmp_path: Path) -> None:
    """One interval, one Kizen poll and one read per source, however many sources: a single job;
    a source that failed rests (its backoff) while the others sync on."""
    clock = [START]
    running = daemon(tmp_path, clock)
    try:
        running._scheduler = BackgroundScheduler(timezone=UTC)  # as run() makes it, not started
        running._schedule(set())
        assert sorted(job.id for job in running._scheduler.get_jobs()) == sorted([POLL, "reconcile"])
        first = running.cycle(None)
        assert first is not None and set(first.failed_sources) == {"down"} and first.counts() == {"Create": 1}
        clock[0] = START + timedelta(minutes=1)  # "down" rests until 2 min: not even tried
        (tmp_path / "ada.ics").write_text((tmp_path / "ada.ics").read_text().replace("UID:one", "UID:three"))
        resting = running.cycle(None)
        assert resting is not None and resting.failed_sources == {} and "down" not in resting.source_requests
        assert resting.counts()["Create"] == 1 and running.health["down"].failures == 1
        clock[0] = START + timedelta(minutes=2)
        again = running.cycle(None)
        assert again is not None and set(again.failed_sources) == {"down"} and running.health["down"].failures == 2
    finally:
        running.close()

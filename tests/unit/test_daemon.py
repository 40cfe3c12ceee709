"""The daemon's bookkeeping, without its process: backoff of a failing source, and staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.config import load
from syncd.daemon import POLL, Daemon

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

"""The daemon beside another process writing its state store: a brief write is waited out, one
that outlasts the busy timeout fails that cycle in one logged line, and the next cycle syncs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.config import load
from syncd.service.daemon import Daemon
from syncd.state import StateStore
from tests.unit.test_state import writing

ROOT = Path(__file__).resolve().parents[2]


def daemon(tmp_path: Path) -> Daemon:
    (tmp_path / "ada.ics").write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:one\nDTSTART:20261203T140000Z\nSUMMARY:Call\n"
        "END:VEVENT\nBEGIN:VEVENT\nUID:two\nDTSTART:20261204T140000Z\nSUMMARY:Call\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    (tmp_path / "config.toml").write_text(
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        '[[sources]]\nname = "ada"\ntype = "ics"\nowner = "ada@example.com"\nurl = "ada.ics"\n'
    )
    clock = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return Daemon(load(tmp_path / "config.toml"), clock=lambda: clock)


def test_a_daemon_cycle_waits_out_a_brief_writer_and_outlives_a_long_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = daemon(tmp_path)
    path = tmp_path / "state.sqlite"
    try:
        running.state.close()
        running.state = StateStore(path, busy_timeout=0.3)
        with writing(path), caplog.at_level(logging.ERROR, logger="syncd.service.daemon"):
            assert running.cycle(None) is None  # this cycle failed ...
        failed = [r for r in caplog.records if r.name == "syncd.service.daemon"]
        assert [r.getMessage() for r in failed] == [
            f"sync cycle failed: state store {path}: database is locked: another process kept it busy past the"
            " 0.3 s busy timeout; nothing was half-written, try again (or stop the other process)"
        ]
        assert failed[0].exc_info is None  # named in one line, no traceback
        running.state.close()
        running.state = StateStore(path, busy_timeout=5)
        with writing(path, release_after=1.0):
            report = running.cycle(None)  # ... the next one waits for the other writer, then syncs
        assert report is not None and report.counts() == {"Create": 2} and report.clean
        assert len(running.state.pairings()) == 2
    finally:
        running.close()

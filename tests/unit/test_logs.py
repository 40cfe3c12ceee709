"""Logs an operator reads: UTC times with their zone, JSON on request, a summary line per cycle
and source, no line per action on a first sync, libraries' chatter held back."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from syncd.logs import configure

ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")


def example(folder: Path) -> Path:
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copytree(ROOT / "mappings", folder / "mappings")
    shutil.copy(ROOT / "config.example.toml", folder / "config.toml")
    return folder / "config.toml"


def syncd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "America/New_York"}  # a zone that is not UTC
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_json_logs_one_object_a_line_with_utc_times_and_each_cycles_summary(tmp_path: Path) -> None:
    example(tmp_path)
    ran = syncd("--log-format", "json", "run", "--once", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    records = [json.loads(line) for line in ran.stderr.splitlines()]  # every line is one JSON object
    assert records and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    assert {r["level"] for r in records} <= {"INFO", "WARNING"} and all(
        r["logger"].startswith("syncd") for r in records
    )
    summaries = [r["summary"] for r in records if "summary" in r]
    by_source = {s["source"]: s for s in summaries if "source" in s}
    # the example calendar's dates are fixed and the clock is real: how many are in the window varies
    created = by_source["ada"]["created"] + by_source["grace"]["created"]
    assert by_source["ada"]["created"] > 1 and by_source["ada"]["status"] == "ok" and by_source["grace"]["created"] == 1
    (cycle,) = [s for s in summaries if "cycle" in s]
    assert cycle["cycle"] == "done" and cycle["changes"] == created and cycle["kizen_requests"] > created


def test_text_logs_have_utc_times_with_their_zone_and_one_line_per_source(tmp_path: Path) -> None:
    example(tmp_path)
    ran = syncd("run", "--once", cwd=tmp_path)
    lines = ran.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
    ada = re.compile(r" syncd\.sync\.report: source ada: ok; \d+ created, 0 failed")  # the window holds a varying count
    assert sum(bool(ada.search(line)) for line in lines) == 1
    assert sum(" syncd.sync.report: cycle done in " in line for line in lines) == 1


def test_a_first_sync_logs_progress_not_a_line_per_create(tmp_path: Path) -> None:
    config = example(tmp_path)
    events = "".join(
        f"BEGIN:VEVENT\nUID:bulk-{n}\nDTSTAMP:20260101T000000Z\nDTSTART:20301201T{n % 10:02d}0000Z\n"
        f"SUMMARY:Bulk {n}\nEND:VEVENT\n"
        for n in range(40)
    )
    (tmp_path / "bulk.ics").write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{events}END:VCALENDAR\n")
    config.write_text(
        config.read_text().replace("lookback_days = 1\nhorizon_days = 60", "lookback_days = 1\nhorizon_days = 2000")
        + '[[sources]]\nname = "bulk"\ntype = "ics"\nowner = "ada@example.com"\nurl = "bulk.ics"\n'
    )
    ran = syncd("run", "--once", cwd=tmp_path)  # stdout is a pipe: no progress bar
    assert ran.returncode == 0, ran.stderr
    lines = ran.stderr.splitlines()
    assert not [line for line in lines if " INFO syncd.sync.apply: create " in line]
    progress = [line.split(": ", 1)[1] for line in lines if "actions applied" in line]
    assert 5 <= len(progress) <= 12 and re.match(r"(\d+) of \1 actions applied \(\1 activities created\)", progress[-1])
    again = syncd("-v", "run", "--once", cwd=tmp_path)  # and -v still names each action
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.fixture
def levels() -> Iterator[None]:
    """The loggers' levels as they were, after a test that configures logging in this process."""
    names = ["", "httpx", "httpcore", "caldav", "apscheduler", "waitress"]
    kept = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in kept.items():
        logging.getLogger(name).setLevel(level)


def test_the_schedulers_chatter_is_held_to_warning_even_with_v(caplog: pytest.LogCaptureFixture, levels: None) -> None:
    caplog.set_level(logging.DEBUG)  # first: caplog puts back the level it finds
    configure(verbose=True)
    ran = threading.Event()
    scheduler = BackgroundScheduler()
    scheduler.add_job(ran.set)
    scheduler.start()
    try:
        assert ran.wait(10)
        deadline = time.monotonic() + 10
        while scheduler.get_jobs():  # the one-off job is removed once it has run
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        scheduler.shutdown(wait=True)
    assert not [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno < logging.WARNING]
    assert logging.getLogger("waitress").getEffectiveLevel() == logging.WARNING

"""SIGHUP reloads `syncd run`'s config in the real process: a good one takes effect, a bad one is refused."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_daemon import Running, daemon_for, free_port, one_event, until


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    yield from daemon_for(tmp_path, one_event)


def sources(running: Running) -> dict[str, Any] | None:
    try:
        return dict(httpx.get(f"{running.url}/healthz", timeout=5).json()["sources"])
    except httpx.HTTPError:
        return None


def log_lines(running: Running, text: str) -> list[str]:
    return [line for line in (running.folder / "daemon.log").read_text().splitlines() if text in line]


def test_sighup_adds_a_source_at_once_and_refuses_a_broken_config(running: Running) -> None:
    assert running.process is not None
    until(lambda: (s := sources(running)) and s["ada"]["last_success"])
    config = running.folder / "config.toml"
    text = config.read_text()

    # A new source, and a new port (which needs a restart): the source is read at once, long
    # before the 60 s interval; the port stays the same, with a warning saying so.
    added = text.replace(f"port = {running.port}\n", f"port = {free_port()}\n") + (
        f'[[sources]]\nname = "late"\ntype = "ics"\nowner = "grace@example.com"\nurl = "http://127.0.0.1:{free_port()}/x.ics"\n'
    )
    config.write_text(added)
    running.process.send_signal(signal.SIGHUP)
    report = until(lambda: (s := sources(running)) and s.get("late", {}).get("last_error") and s)
    assert report["late"]["last_error"] == "unreachable" and set(report) == {"ada", "down", "late"}
    assert until(lambda: log_lines(running, "[daemon] port changed: kept until a restart"))
    assert running.process.poll() is None

    # A broken config: one ERROR line naming the problem; the daemon runs on with the old one.
    config.write_text(added.replace("interval_seconds = 60", "interval_seconds = -1"))
    running.process.send_signal(signal.SIGHUP)
    (line,) = until(lambda: log_lines(running, "config not reloaded"))
    assert " ERROR " in line and "daemon.interval_seconds" in line
    assert running.process.poll() is None
    assert set(sources(running) or {}) == {"ada", "down", "late"}

    # SIGHUP again with it fixed (the late source gone): reloaded, and still a clean stop.
    config.write_text(text)
    running.process.send_signal(signal.SIGHUP)
    until(lambda: set(sources(running) or {}) == {"ada", "down"})
    assert len(log_lines(running, " ERROR syncd.service.daemon")) == 1
    assert running.stop() == 0

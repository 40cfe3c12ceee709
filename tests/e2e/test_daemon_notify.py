"""`syncd run` under systemd's notify protocol, as a real process with a real notify socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_daemon import Running, daemon_for, one_event


@pytest.fixture
def notified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Running, socket.socket]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
        monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every half second
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        for running in daemon_for(tmp_path / "daemon", one_event):
            yield running, sock


def next_message(sock: socket.socket, wanted: str, deadline: float = 30.0) -> list[str]:
    """The datagrams received until one holding the line ``wanted`` (that one last)."""
    give_up = time.monotonic() + deadline
    seen = []
    while True:
        sock.settimeout(max(give_up - time.monotonic(), 0.01))
        try:
            lines = sock.recv(4096).decode().split("\n")
        except TimeoutError:
            raise AssertionError(f"no {wanted} within {deadline} s; got {seen}") from None
        seen.append(lines)
        if wanted in lines:
            return [line for message in seen for line in message]


def test_ready_once_serving_watchdog_pings_and_stopping_on_sigterm(notified: tuple[Running, socket.socket]) -> None:
    running, sock = notified
    assert running.process is not None
    before = next_message(sock, "READY=1")
    assert not any(line == "WATCHDOG=1" for line in before)  # READY comes first
    assert httpx.get(f"{running.url}/healthz", timeout=5).status_code in (200, 503)  # already answering
    assert any(line.startswith("STATUS=serving on ") for line in before)

    # The worker pings at half of WATCHDOG_USEC, between cycles too; it reports each cycle.
    seen = next_message(sock, "WATCHDOG=1") + next_message(sock, "WATCHDOG=1")
    seen += next_message(sock, "WATCHDOG=1", deadline=5)
    statuses = [line for line in seen if line.startswith("STATUS=")]
    assert any(" cycle " in line for line in statuses + next_message(sock, "WATCHDOG=1")), seen

    running.process.terminate()
    assert "STOPPING=1" in next_message(sock, "STOPPING=1")
    assert running.process.wait(timeout=60) == 0

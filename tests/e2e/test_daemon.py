"""`syncd run` as a real process, with Radicale and the sandbox's server on loopback.

Every wait polls with a generous deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from syncd.sandbox import Sandbox, load_world
from syncd.state import StateStore
from tests.connectors.radicale import Radicale, bulk, mkcalendar, put, quiet, vevent
from tests.secretfiles import write_secret

T = TypeVar("T")
HOOK = "hook-secret-42-aaaaaaaaaaaaaaaaaaaaaaaa"  # 128 bits at least, as syncd requires
FEED_TOKEN = "feed-token-7-aaaaaaaaaaaaaaaaaaaaaaaa"
EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\nBEGIN:VEVENT\r\nUID:call-1\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:{start}\r\nDURATION:PT30M\r\nSUMMARY:Intro call\r\nX-CUSTOM:kept\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until(check: Callable[[], T | None], deadline: float = 30.0) -> T:
    """Polls ``check`` until it returns something truthy, or fails after ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < give_up, "gave up waiting"
        time.sleep(0.1)


class Running:
    """syncd's daemon as a real process on a config in ``folder``; its output goes to a file."""

    def __init__(self, folder: Path, radicale: Radicale, box: Sandbox, kizen_url: str, port: int) -> None:
        self.folder, self.radicale, self.box, self.port = folder, radicale, box, port
        write_secret(folder / "key", box.world.business.api_key)
        write_secret(folder / "hook", HOOK)
        write_secret(folder / "feed-token", FEED_TOKEN)
        write_secret(folder / "password", "unused")
        down = free_port()
        (folder / "config.toml").write_text(
            f'[kizen]\nbase_url = "{kizen_url}"\nbusiness_id = "{box.world.business.id}"\n'
            f'user_id = "{box.world.api_user.id}"\napi_key_file = "key"\n'
            f'[sync]\nstate = "state.sqlite"\nmappings = ["{Path(__file__).resolve().parents[2] / "mappings" / "default.toml"}"]\n'
            f'[daemon]\nport = {port}\ninterval_seconds = 60\njitter_seconds = 0\nwebhook_secret_file = "hook"\n'
            '[[feeds]]\nname = "ada"\ntoken_file = "feed-token"\nemployees = ["ada@example.com"]\n'
            f'[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{radicale.url}/ada/"\n'
            'username = "ada"\npassword_file = "password"\nallow_private_network = true\n'
            f'[[sources]]\nname = "down"\ntype = "caldav"\nowner = "grace@example.com"\nurl = "http://127.0.0.1:{down}/"\n'
            "allow_private_network = true\n"
        )
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.folder / "daemon.log", "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "--config", str(self.folder / "config.toml"), "run"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def stop(self) -> int:
        """SIGTERM, and the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def activities(self) -> list[dict[str, Any]]:
        return [self.box.service.get_scheduled(a["id"]) for a in self.box.service.list_scheduled({}, 0, 1000)[1]]

    def feed(self) -> httpx.Response | None:
        try:
            response = httpx.get(f"{self.url}/feeds/{FEED_TOKEN}.ics", timeout=5)
        except httpx.HTTPError:
            return None
        return response if b"BEGIN:VEVENT" in response.content else None


def daemon_for(tmp_path: Path, seed: Callable[[httpx.Client], None]) -> Iterator[Running]:
    quiet()
    port = free_port()
    default = load_world()
    hook = f"http://127.0.0.1:{port}/webhooks/kizen/{HOOK}"
    hooked = tuple(t.model_copy(update={"webhook_url": hook}) for t in default.activity_types)
    with (
        Radicale(tmp_path / "radicale") as radicale,
        Sandbox(default.model_copy(update={"activity_types": hooked})) as box,
    ):
        with radicale.client("ada") as http:
            seed(http)
        made = Running(tmp_path, radicale, box, box.serve().url, port)
        try:
            yield made
        finally:
            if made.process is not None and made.process.poll() is None:
                made.process.kill()
                made.process.wait(timeout=30)


def one_event(http: httpx.Client) -> None:
    mkcalendar(http, "/ada/desk/", name="Work")
    start = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 2 * 86400))
    put(http, "/ada/desk/call-1.ics", EVENT.format(start=start))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    yield from daemon_for(tmp_path, one_event)


def test_the_daemon_syncs_writes_back_on_a_webhook_reports_health_and_stops_cleanly(running: Running) -> None:
    # An event in Radicale reaches the sandbox at the daemon's first cycle.
    (activity,) = until(running.activities)
    assert activity["note"].startswith("Intro call")

    # Health: the working source succeeded, the stopped one is reported, each on its own.
    def health() -> dict[str, Any] | None:
        try:
            body = httpx.get(f"{running.url}/healthz", timeout=5).json()
        except httpx.HTTPError:
            return None
        sources = body["sources"]
        return sources if sources["ada"]["last_success"] and sources["down"]["last_error"] else None

    report = until(health)
    assert report["down"]["last_error"] == "unreachable"  # the host and port only in the log

    # Completed in Kizen: the webhook brings the logged entry into the calendar long before the
    # next scheduled poll (the interval is 60 s).
    running.box.user().complete(activity["id"])
    with running.radicale.client("ada") as http:

        def written() -> str | None:
            text = http.get("/ada/desk/call-1.ics").text
            return text if "✓ Intro call" in text else None

        text = until(written, deadline=20)
    assert "X-CUSTOM:kept" in text and "X-SYNCD-LOGGED-ACTIVITY-ID" in text

    # The daemon holds the state store's lock: a one-off sync beside it is refused, naming it.
    beside = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(running.folder / "config.toml"), "run", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert beside.returncode == 2 and "another sync is running" in beside.stderr and "run (daemon)" in beside.stderr

    # Metrics: runs, actions, CalDAV requests and Kizen latency.
    metrics = httpx.get(f"{running.url}/metrics", timeout=5).text
    assert (
        'syncd_runs_total{source="ada",status="ok"}' in metrics and 'syncd_actions_total{kind="create"} 1.0' in metrics
    )
    assert (
        'syncd_kizen_request_seconds_count{method="GET"}' in metrics
        and 'syncd_calendar_requests_total{source="ada"}' in metrics
    )
    assert 'syncd_calendar_read_seconds_count{source="ada"}' in metrics

    # SIGTERM: the daemon finishes what it is doing, settles and exits 0.
    assert running.stop() == 0
    # Its log: one summary line per cycle and per source, UTC times with their zone, no scheduler chatter.
    log = (running.folder / "daemon.log").read_text().splitlines()
    assert any(" INFO syncd.sync.report: source ada: ok; " in line and "request(s)" in line for line in log), log
    assert any(" INFO syncd.sync.report: source down: failed (" in line for line in log)
    assert any(" INFO syncd.sync.report: cycle " in line and "Kizen request(s)" in line for line in log)
    stamped = [line for line in log if " syncd." in line]
    assert stamped and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line) for line in stamped)
    assert not any("Running job" in line or "executed successfully" in line for line in log)
    state = StateStore(running.folder / "state.sqlite")
    assert state.pending_intents() == [] and state.pairings()[0].settled == "logged"
    state.close()


def test_a_feed_is_served_and_its_bytes_survive_a_restart(running: Running) -> None:
    first = until(running.feed)
    assert first.headers["ETag"] and b"SUMMARY:Meeting: Intro call" in first.content
    assert (
        httpx.get(f"{running.url}/feeds/{FEED_TOKEN}.ics", headers={"If-None-Match": first.headers["ETag"]}).status_code
        == 304
    )
    assert httpx.get(f"{running.url}/feeds/wrong.ics").status_code == 404
    subscribed = subscribe(running.folder, f"{running.url}/feeds/{FEED_TOKEN}.ics")
    assert len(subscribed) == first.content.count(b"BEGIN:VEVENT")
    assert all("SUMMARY:Meeting: Intro call" in text for text in subscribed)
    assert running.stop() == 0
    running.start()
    again = until(running.feed)
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    assert running.stop() == 0


def subscribe(folder: Path, url: str) -> list[str]:
    """Subscribes to a feed with vdirsyncer (its http storage into a folder); the items it got."""
    local = folder / "subscribed"
    local.mkdir()
    config = folder / "vdirsyncer.conf"
    config.write_text(
        f'[general]\nstatus_path = "{folder / "vdirsyncer-status"}/"\n'
        '[pair feed]\na = "remote"\nb = "local"\ncollections = null\n'
        f'[storage remote]\ntype = "http"\nurl = "{url}"\n'
        f'[storage local]\ntype = "filesystem"\npath = "{local}/"\nfileext = ".ics"\n'
    )
    command = [str(Path(sys.executable).parent / "vdirsyncer"), "-c", str(config)]
    for step in (["discover", "feed"], ["sync"]):
        done = subprocess.run([*command, *step], capture_output=True, text=True, timeout=120, input="y\n")
        assert done.returncode == 0, done.stderr
    return [path.read_text() for path in sorted(local.iterdir())]


def many_events(http: httpx.Client) -> None:
    start = time.time() + 86400
    events = (
        vevent(f"e{n}", f"Event {n}", start=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start + 3600 * n)))
        for n in range(400)
    )
    bulk(http, "/ada/desk/", events, name="Work")


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[Running]:
    yield from daemon_for(tmp_path, many_events)


def test_sigterm_mid_run_exits_0_and_leaves_a_consistent_state(busy: Running) -> None:
    until(
        lambda: len(busy.box.service.list_scheduled({}, 0, 1)[1]) and busy.box.service.list_scheduled({}, 0, 1)[0] >= 20
    )
    assert busy.stop() == 0
    made = busy.activities()
    assert 20 <= len(made) < 400, "the daemon should have stopped mid-run"
    state = StateStore(busy.folder / "state.sqlite")
    assert state.pending_intents() == []
    assert {p.activity_id for p in state.pairings()} == {a["id"] for a in made}  # every activity paired, no orphan
    state.close()
    busy.start()  # the next start finishes the job, duplicating nothing
    until(lambda: busy.box.service.list_scheduled({}, 0, 1)[0] >= 400, deadline=60)
    assert busy.stop() == 0
    notes = [a["note"].splitlines()[0] for a in busy.activities()]
    assert len(notes) == 400 and len(set(notes)) == 400

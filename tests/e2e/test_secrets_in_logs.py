"""No secret in any line syncd prints, at -v (DEBUG), for a whole sync and for the daemon.

Every secret is unique, so a scan of every line of the output finds it wherever it leaks: an ICS
URL's query and userinfo, a CalDAV password, the Kizen key (the sandbox on loopback, configured
as the real Kizen is), the feed's token and the webhook's secret (a body the parser cannot take
posted to it: a leak in the server's error log would show it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.sandbox import Sandbox, load_world
from syncd.service.serving import LoopbackServer
from tests.connectors.radicale import Radicale, mkcalendar, put, quiet
from tests.e2e.test_daemon import free_port, until
from tests.secretfiles import write_secret

ICS_TOKEN = "UNIQUE1icstoken"
CALDAV_PASSWORD = "UNIQUE2caldavpw"
KIZEN_KEY = "UNIQUE3kizenkey"
ICS_PASSWORD = "UNIQUE4icsuserinfo"
FEED_TOKEN = "UNIQUE5feedtoken-aaaaaaaaaaaaaaaa"
HOOK = "UNIQUE6hooksecret-aaaaaaaaaaaaaaaa"
SECRETS = (ICS_TOKEN, CALDAV_PASSWORD, KIZEN_KEY, ICS_PASSWORD, FEED_TOKEN, HOOK)
ROOT = Path(__file__).resolve().parents[2]


def event(uid: str, summary: str) -> str:
    start = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 2 * 86400))
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//secrets//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT30M\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ics_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if ICS_TOKEN not in environ.get("QUERY_STRING", ""):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    start_response("200 OK", [("Content-Type", "text/calendar")])
    return [event("feed-1", "Demo").encode()]


class Setup:
    def __init__(self, folder: Path, radicale: Radicale, box: Sandbox, ics: str, kizen: str) -> None:
        self.folder, self.box, self.port = folder, box, free_port()
        write_secret(folder / "password", CALDAV_PASSWORD)
        write_secret(folder / "feed-token", FEED_TOKEN)
        write_secret(folder / "hook", HOOK)
        host = ics.removeprefix("http://")
        (folder / "config.toml").write_text(
            f'[kizen]\nbase_url = "{kizen}"\nbusiness_id = "{box.world.business.id}"\n'
            f'user_id = "{box.world.api_user.id}"\napi_key_env = "SYNCD_TEST_KIZEN_KEY"\n'
            f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            f'[daemon]\nport = {self.port}\ninterval_seconds = 60\njitter_seconds = 0\nwebhook_secret_file = "hook"\n'
            '[[feeds]]\nname = "ada"\ntoken_file = "feed-token"\nemployees = ["ada@example.com"]\n'
            f'[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{radicale.url}/ada/"\n'
            'username = "ada"\npassword_file = "password"\nallow_private_network = true\n'
            f'[[sources]]\nname = "grace"\ntype = "ics"\nowner = "grace@example.com"\n'
            f'url = "http://grace:{ICS_PASSWORD}@{host}/grace.ics?token={ICS_TOKEN}"\n'
            "allow_private_network = true\n"
        )
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "SYNCD_TEST_KIZEN_KEY": KIZEN_KEY}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncd", "-v", "--config", str(self.folder / "config.toml"), *args]

    def activities(self) -> list[dict[str, Any]]:
        return self.box.service.list_scheduled({}, 0, 1000)[1]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    quiet()
    (tmp_path / "radicale").mkdir()
    world = load_world()
    world = world.model_copy(update={"business": world.business.model_copy(update={"api_key": KIZEN_KEY})})
    ics = LoopbackServer(ics_app, ident="ics").start()
    try:
        with (
            Radicale(tmp_path / "radicale", users={"ada": CALDAV_PASSWORD}) as radicale,
            Sandbox(world) as box,
        ):
            with radicale.client("ada", CALDAV_PASSWORD) as http:
                mkcalendar(http, "/ada/desk/", name="Work")
                put(http, "/ada/desk/call-1.ics", event("call-1", "Intro call"))
            yield Setup(tmp_path, radicale, box, ics.url, box.serve().url)
    finally:
        ics.stop()


def leaks(output: str) -> list[str]:
    return [f"{secret} in: {line[:200]}" for line in output.splitlines() for secret in SECRETS if secret in line]


def test_a_full_sync_at_debug_prints_no_secret(setup: Setup) -> None:
    done = subprocess.run(
        setup.command("run", "--once"), capture_output=True, text=True, env=setup.env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(setup.activities()) == 2  # both sources synced: their requests were made and logged
    assert "HTTP Request: GET http://" in done.stderr  # httpx's request lines are there, at -v
    assert leaks(done.stdout + done.stderr) == []


def test_the_daemon_at_debug_prints_no_secret_even_for_a_body_its_parser_cannot_take(setup: Setup) -> None:
    with open(setup.folder / "daemon.log", "wb") as output:
        daemon = subprocess.Popen(setup.command("run"), stdout=output, stderr=subprocess.STDOUT, env=setup.env)
    try:
        url = f"http://127.0.0.1:{setup.port}"

        def synced() -> dict[str, Any] | None:
            try:
                sources = httpx.get(f"{url}/healthz", timeout=5).json()["sources"]
            except httpx.HTTPError:
                return None
            return sources if all(s["last_success"] for s in sources.values()) else None

        until(synced, deadline=60)
        deep = httpx.post(f"{url}/webhooks/kizen/{HOOK}", content=b"[" * 60_000, timeout=10)
        assert deep.status_code == 400
        assert httpx.get(f"{url}/feeds/{FEED_TOKEN}.ics", timeout=10).status_code == 200
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
    output = (setup.folder / "daemon.log").read_text()
    assert "HTTP Request: GET http://" in output
    assert leaks(output) == []

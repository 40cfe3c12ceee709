"""Hostile servers: a deadline for each fetch and request, a size limit on the decoded body, no
private address without the source's opt-in, TLS verified with clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from syncd.calendar.connectors import net
from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.calendar.connectors.ics import IcsSource
from syncd.config import load
from syncd.errors import SourceError
from syncd.model import Cursor
from syncd.sandbox import Sandbox
from syncd.service.daemon import Daemon
from syncd.wiring import feed_client
from tests.connectors.hostile import FEED, Drip, Serving, self_signed, stacked_gzip_bomb
from tests.cycles import run_cycle

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
LOOPBACK = net.Policy(allow_private_network=True)
DEADLINE = 2.0
SLACK = 3.0  # the deadline plus scheduling on a busy machine


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with feed_client() as client:
        yield client


@pytest.fixture(params=["headers", "body"])
def drip(request: pytest.FixtureRequest) -> Iterator[Drip]:
    server = Drip(request.param)
    yield server
    server.close()


# --- 1. a deadline for the whole exchange ---------------------------------------------------------


def test_a_dripping_feed_fails_within_its_deadline(drip: Drip, http: httpx.Client) -> None:
    source = IcsSource("slow", drip.url, http=http, timeout=DEADLINE, policy=LOOPBACK)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"did not answer in full within 2 s \(timeout_seconds\)") as failed:
        source.changes(drip.url, Cursor())
    assert time.monotonic() - started < DEADLINE + SLACK
    assert "token=t" not in str(failed.value)


def test_a_dripping_caldav_server_fails_within_its_deadline(drip: Drip) -> None:
    url = f"http://127.0.0.1:{drip.port}/dav/"
    with CalDAVSource("slow", url, username="ada", password=SecretStr("pw"), timeout=DEADLINE, policy=LOOPBACK) as dav:
        for call in (dav.discover, lambda: dav.changes(url + "work/", Cursor(sync_token="t"), {})):
            started = time.monotonic()
            with pytest.raises(SourceError, match=r"did not answer within 2 s \(timeout_seconds\)"):
                call()
            assert time.monotonic() - started < DEADLINE + SLACK


def two_sources(folder: Path, drip: Drip) -> Path:
    """A good file feed (ada) and a dripping URL (slow), each its own source."""
    (folder / "ada.ics").write_text(FEED)
    config = folder / "config.toml"
    config.write_text(
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        "[daemon]\ninterval_seconds = 60\n"
        f'[[sources]]\nname = "slow"\ntype = "ics"\nowner = "grace@example.com"\nurl = "{drip.url}"\n'
        f"timeout_seconds = {DEADLINE}\nallow_private_network = true\n"
        '[[sources]]\nname = "ada"\ntype = "ics"\nowner = "ada@example.com"\nurl = "ada.ics"\n'
    )
    return config


def test_a_dripping_source_fails_alone_and_the_cycle_syncs_the_others(tmp_path: Path, drip: Drip) -> None:
    config = two_sources(tmp_path, drip)
    started = time.monotonic()
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        report = run_cycle(config, box, NOW)
    assert time.monotonic() - started < DEADLINE + SLACK + 5
    assert report.counts() == {"Create": 1} and report.failures == []
    assert list(report.failed_sources) == ["slow"] and "within 2 s" in report.failed_sources["slow"]


def test_in_the_daemon_a_dripping_source_holds_the_good_one_up_at_most_its_deadline(tmp_path: Path, drip: Drip) -> None:
    running = Daemon(load(two_sources(tmp_path, drip)), clock=lambda: NOW)
    try:
        started = time.monotonic()
        assert running.cycle("slow") is not None  # the one worker: the next cycle waits for this one
        assert time.monotonic() - started < DEADLINE + SLACK
        assert "within 2 s" in (running.health["slow"].last_error or "")
        report = running.cycle("ada")
        assert report is not None and report.counts() == {"Create": 1}
        assert running.health["ada"].last_success == NOW
    finally:
        running.close()


def test_the_deadline_is_per_source_and_defaults_to_sixty_seconds(tmp_path: Path, drip: Drip) -> None:
    config = load(two_sources(tmp_path, drip))
    assert [s.timeout_seconds for s in config.sources] == [DEADLINE, 60.0]


# --- 2. the size limit on the decoded stream ------------------------------------------------------

FETCH = """
import sys
from syncd.calendar.connectors import net
from syncd.calendar.connectors.ics import IcsSource
from syncd.errors import SourceError
from syncd.model import Cursor
from syncd.wiring import feed_client
url, limit = sys.argv[1], int(sys.argv[2])
with feed_client() as http:
    source = IcsSource("bomb", url, http=http, max_bytes=limit, policy=net.Policy(allow_private_network=True))
    try:
        source.changes(url, Cursor())
        print("read")
    except SourceError as exc:
        print(exc)
# the mm's high-water mark: ru_maxrss would count the forked copy of pytest before exec
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(peak.split()[1]) // 1024)  # MB
"""


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip"])
def test_a_gzip_bomb_is_stopped_at_max_bytes_with_memory_near_the_limit(tmp_path: Path, encoding: str) -> None:
    layers = encoding.count("gzip")
    bomb = stacked_gzip_bomb(1 << 30, layers)  # 1 GiB of zeros
    assert len(bomb) < 2_000_000
    server = Serving((200, {"Content-Type": "text/calendar", "Content-Encoding": encoding}, bomb))
    try:
        limit = 20 * 1024 * 1024
        done = subprocess.run(
            [sys.executable, "-c", FETCH, server.url + "/feed.ics", str(limit)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(ROOT)},
        )
    finally:
        server.close()
    message, peak = done.stdout.splitlines()
    assert "larger than 20971520 bytes" in message, done.stderr
    assert int(peak) < limit // (1 << 20) + 100, f"peak RSS {peak} MB"


def test_a_deflate_body_is_decoded_with_or_without_its_zlib_header(http: httpx.Client) -> None:
    import zlib

    wrapped = zlib.compress(FEED.encode())
    raw = wrapped[2:-4]
    for body in (wrapped, raw):
        server = Serving((200, {"Content-Encoding": "deflate"}, body))
        try:
            source = IcsSource("d", server.url + "/f.ics", http=http, policy=LOOPBACK)
            assert len(source.changes(server.url + "/f.ics", Cursor()).changed) == 1
        finally:
            server.close()


def test_an_encoding_syncd_does_not_read_fails_clearly(http: httpx.Client) -> None:
    server = Serving((200, {"Content-Encoding": "br"}, b"\x0b\x02\x80"))
    try:
        with pytest.raises(SourceError, match=r"an encoding syncd does not read \(br\)"):
            IcsSource("b", server.url + "/f.ics", http=http, policy=LOOPBACK).changes(server.url + "/f.ics", Cursor())
    finally:
        server.close()


# --- 5. private addresses only with the source's opt-in -------------------------------------------


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "224.0.0.1", "::ffff:127.0.0.1"]
)
def test_loopback_link_local_private_and_multicast_addresses_are_private(address: str) -> None:
    assert net.private(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"])
def test_public_addresses_are_not(address: str) -> None:
    assert not net.private(address)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "localhost"])
def test_a_feed_at_a_private_address_is_refused_before_connecting(host: str, http: httpx.Client) -> None:
    url = f"http://{host}:9/feed.ics"
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"a private address \(set allow_private_network to allow\)"):
        IcsSource("inside", url, http=http).changes(url, Cursor())
    assert time.monotonic() - started < 1  # 169.254.169.254 would take a connect timeout to fail


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "localhost"])
def test_a_caldav_server_at_a_private_address_is_refused_before_connecting(host: str) -> None:
    with CalDAVSource("inside", f"http://{host}:9/dav/", username="ada", password=SecretStr("pw")) as dav:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"a private address \(set allow_private_network to allow\)"):
            dav.discover()
        assert time.monotonic() - started < 1


def test_a_private_server_is_not_even_contacted_without_the_opt_in(http: httpx.Client) -> None:
    server = Serving((200, {}, FEED.encode()))
    try:
        with pytest.raises(SourceError, match="private address"):
            IcsSource("inside", server.url + "/f.ics", http=http).changes(server.url + "/f.ics", Cursor())
        with CalDAVSource("inside", server.url + "/dav/", username="ada", password=SecretStr("pw")) as dav:
            with pytest.raises(SourceError, match="private address"):
                dav.discover()
        assert server.seen == []
        opted = IcsSource("inside", server.url + "/f.ics", http=http, policy=LOOPBACK)
        assert len(opted.changes(server.url + "/f.ics", Cursor()).changed) == 1
    finally:
        server.close()


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback counted as public, so a loopback server can stand for a public one that redirects."""
    real = net.private
    monkeypatch.setattr(net, "private", lambda address: not address.startswith("127.") and real(address))


@pytest.mark.usefixtures("loopback_is_public")
def test_a_redirect_to_a_private_address_is_refused(http: httpx.Client) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    server = Serving((302, {"Location": metadata}, b""))
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="169.254.169.254 is a private address"):
            IcsSource("hop", server.url + "/f.ics", http=http).changes(server.url + "/f.ics", Cursor())
        with CalDAVSource("hop", server.url + "/dav/", username="ada", password=SecretStr("pw")) as dav:
            with pytest.raises(SourceError, match="169.254.169.254 is a private address"):
                dav.discover()
        assert time.monotonic() - started < 2
        assert server.seen  # the first hop was made: the refusal is the redirect's
    finally:
        server.close()


# --- 7. TLS verified, a CA bundle per source, the problem named ----------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[Serving, Path]]:
    cert, context = self_signed(tmp_path)
    server = Serving((200, {"Content-Type": "text/calendar"}, FEED.encode()), tls=context)
    yield server, cert
    server.close()


def test_a_self_signed_feed_is_refused_with_the_certificate_problem_named(
    tls: tuple[Serving, Path], http: httpx.Client
) -> None:
    server, cert = tls
    url = server.url + "/f.ics"
    with pytest.raises(SourceError, match=r"certificate verify failed: self.signed certificate"):
        IcsSource("tls", url, http=http, policy=LOOPBACK).changes(url, Cursor())
    trusted = IcsSource("tls", url, http=http, policy=net.Policy(allow_private_network=True, ca_file=cert))
    assert [r.location.href for r in trusted.changes(url, Cursor()).changed] == ["tls-1"]


def test_a_self_signed_caldav_server_is_refused_with_the_certificate_problem_named(tls: tuple[Serving, Path]) -> None:
    server, cert = tls
    with CalDAVSource("tls", server.url + "/dav/", username="a", password=SecretStr("p"), policy=LOOPBACK) as dav:
        with pytest.raises(SourceError, match=r"certificate verify failed: self.signed certificate"):
            dav.discover()
    trusting = net.Policy(allow_private_network=True, ca_file=cert)
    server.answer = (404, {}, b"")
    with CalDAVSource("tls", server.url + "/dav/", username="a", password=SecretStr("p"), policy=trusting) as dav:
        with pytest.raises(SourceError, match="HTTP 404"):  # the server is reached: it is just no CalDAV server
            dav.discover()
    assert server.seen


def test_an_unreadable_ca_file_fails_the_source_naming_the_file(tmp_path: Path, http: httpx.Client) -> None:
    url = "https://127.0.0.1:9/f.ics"
    policy = net.Policy(allow_private_network=True, ca_file=tmp_path / "missing.pem")
    with pytest.raises(SourceError, match=r"cannot read the CA bundle .*missing.pem: No such file"):
        IcsSource("tls", url, http=http, policy=policy).changes(url, Cursor())

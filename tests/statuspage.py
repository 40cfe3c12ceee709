"""A daemon's HTTP app with its status page, on loopback, over the shipped example after one sync.

The example config (sample calendars into the in-process sandbox) gets a status secret, a feed
token and one conflict waiting for a decision, plus a failed item whose reason is HTML, so a
page that did not escape it would show it as markup.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from syncd.cli import cli
from syncd.config import load
from syncd.model import OccurrenceId
from syncd.service.daemon import Daemon
from syncd.service.serving import LoopbackServer
from syncd.state import StateStore
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[1]
STATUS_SECRET = "status-Zx8_kP2-qW9rT4yU7iO0aS"
FEED_TOKEN = "feed-Qm3_vB8-nL1xC6zH4jK9pR"
HOSTILE_REASON = 'Kizen refused <script>alert("x")</script> & more'


@dataclass
class Served:
    url: str  # the status page's
    base: str  # the server's
    config: Path
    daemon: Daemon
    conflict: int

    def open_conflicts(self) -> list[int]:
        state = StateStore(self.daemon.config.sync.state, read_only=True)
        try:
            return [c.id for c in state.conflicts(open_only=True) if c.status == "open"]
        finally:
            state.close()

    def keep_of(self, conflict: int) -> tuple[str, str | None]:
        state = StateStore(self.daemon.config.sync.state, read_only=True)
        try:
            (found,) = [c for c in state.conflicts() if c.id == conflict]
            return found.status, found.keep
        finally:
            state.close()


def example_config(folder: Path) -> Path:
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copytree(ROOT / "mappings", folder / "mappings")
    write_secret(folder / "status-secret", STATUS_SECRET)
    write_secret(folder / "feed-token", FEED_TOKEN)
    text = (
        (ROOT / "config.example.toml").read_text().replace('# token_file = "feed-token"', 'token_file = "feed-token"')
    )
    config = folder / "config.toml"
    config.write_text(text + '\n[daemon]\nstatus_secret_file = "status-secret"\n')
    return config


@contextmanager
def served(folder: Path) -> Iterator[Served]:
    """The example synced once, a conflict and a failure recorded, the daemon's app on loopback."""
    config = example_config(folder)
    ran = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
    assert ran.exit_code == 0, ran.output
    state = StateStore(folder / ".syncd" / "state.sqlite")
    pairing = next(p for p in state.pairings() if p.lead and p.lead.source == "ada")
    conflict = state.record_conflict(pairing, "due", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "manual")
    state.record_failure("grace", OccurrenceId("broken@example.com", ""), "failed", HOSTILE_REASON)
    state.close()
    daemon = Daemon(load(config), path=config)
    server = LoopbackServer(daemon.app, ident="syncd-test").start()
    try:
        yield Served(f"{server.url}/status/{STATUS_SECRET}", server.url, config, daemon, conflict)
    finally:
        server.stop()
        daemon.close()


def form_token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found.group(1)

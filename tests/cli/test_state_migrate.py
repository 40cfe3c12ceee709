"""``syncd state migrate --to postgresql://...``: a SQLite state that holds pairings, copies,
cursors, a conflict, a quarantined item, runs and the journal is copied row for row into
PostgreSQL; a cycle on the copy plans what one on the file would and writes nothing; the file is kept as it was; a
database that already holds a state, a server that is down and a bad URL are one line each."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.sandbox import Sandbox
from tests import backends
from tests.engine.test_cycle import World, by_note, calendar, vevent
from tests.pg import Server

BROKEN = "BEGIN:VEVENT\nUID:odd\nDTSTAMP:20260101T000000Z\nDTSTART;TZID=Mars/Olympus:20261205T090000\nSUMMARY:Odd\nEND:VEVENT\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A world whose state is a SQLite file with something in every table that matters."""
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        world = World(tmp_path, box, policy="manual")
        world.feed(calendar(vevent("one", "20261203T140000Z", "Call"), vevent("two", "20261204T090000Z", "Demo")))
        assert world.run().counts() == {"Create": 2}
        world.box.user().reschedule(by_note(world, "Call")["id"], datetime(2026, 12, 5, 9, tzinfo=UTC))
        world.feed(
            calendar(vevent("one", "20261204T140000Z", "Call"), vevent("two", "20261204T090000Z", "Demo"), BROKEN)
        )
        world.run()
        yield world


@pytest.fixture
def url(pg_server: Server) -> Iterator[str]:
    made = pg_server.database()
    try:
        yield made
    finally:
        pg_server.drop(made)


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows but the migrations', sorted: what the two stores must agree on."""
    lite = sqlite3.connect(path)
    try:
        names = [n for (n,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if n[0] != "_"]
        return {n: sorted(lite.execute(f"SELECT * FROM {n}").fetchall()) for n in names}
    finally:
        lite.close()


def pg_contents(url: str, like: dict[str, list[tuple[Any, ...]]], sqlite_path: Path) -> dict[str, list[Any]]:
    lite = sqlite3.connect(sqlite_path)
    try:
        columns = {t: [c[1] for c in lite.execute(f"PRAGMA table_info({t})")] for t in like}
    finally:
        lite.close()
    with psycopg.connect(url) as conn:
        return {
            t: sorted(tuple(row) for row in conn.execute(f"SELECT {', '.join(c)} FROM {t}".encode()).fetchall())
            for t, c in columns.items()
        }


def test_a_sqlite_state_is_copied_row_for_row_and_a_cycle_on_the_copy_changes_nothing(
    world: World, url: str, pg_server: Server
) -> None:
    config = world.folder / "config.toml"
    state = world.folder / "state.sqlite"
    steady = world.run()  # what a cycle on the SQLite state plans now: the open conflict, again
    assert steady.counts() == {"RecordConflict": 1} and steady.quarantined
    before = contents(state)
    assert all(before[t] for t in ("pairings", "pairing_locations", "resources", "cursors", "conflicts", "runs"))
    assert before["failures"] and before["journal"] and before["discoveries"]
    digest = hashlib.sha256(state.read_bytes()).hexdigest()

    result = invoke(config, "state", "migrate", "--to", url)

    assert result.exit_code == 0, result.output
    assert f"{len(before['pairings'])} pairings" in result.output and f"into {url}" in result.output
    assert pg_contents(url, before, state) == before
    assert hashlib.sha256(state.read_bytes()).hexdigest() == digest  # only read
    writes = world.writes()
    backends.CURRENT = backends.Backend("postgresql", pg_server)
    backends.CURRENT.urls[world.folder] = url
    try:
        report = world.run()  # on the copy
    finally:
        backends.CURRENT = backends.Backend("sqlite")
    assert report.actions == steady.actions and report.quarantined == steady.quarantined
    assert world.writes() == writes  # nothing sent to Kizen
    after = pg_contents(url, before, state)
    for table in ("pairings", "pairing_locations", "resources", "conflicts", "journal", "lookups"):
        assert after[table] == before[table], table
    assert [row[:-1] for row in after["failures"]] == [row[:-1] for row in before["failures"]]  # seen again
    assert len(after["runs"]) > len(before["runs"])  # it ran there, and the ids went on after the copied ones
    shown = invoke(config, "status", "--json")  # the config now names the database
    assert shown.exit_code == 0 and '"quarantined"' in shown.output and "Mars/Olympus" in shown.output, shown.output
    assert invoke(config, "conflicts", "list").output.startswith(f"{before['conflicts'][0][0]}: one - due:")

    again = invoke(config, "state", "migrate", "--to", url, "--from", str(state))  # never merged into a state
    assert again.exit_code == 2 and again.output.count("\n") == 1, again.output
    assert f"syncd: state store {url} already holds a state" in again.output
    assert "nothing was changed" in again.output


def test_a_server_that_is_down_or_a_bad_url_is_one_line_and_exit_2(world: World) -> None:
    config = world.folder / "config.toml"
    for url, said in (
        ("postgresql://syncd@127.0.0.1:1/syncd", "is the PostgreSQL server running and reachable?"),
        ("postgresql://syncd:secret@127.0.0.1/syncd", "holds a password"),
        ("mysql://syncd@127.0.0.1/syncd", "--to: not a postgresql:// URL"),
    ):
        result = invoke(config, "state", "migrate", "--to", url)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert said in result.output and "secret" not in result.output and "Traceback" not in result.output

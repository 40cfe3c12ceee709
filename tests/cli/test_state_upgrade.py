"""Upgrading the state store through the command line: only a command that writes upgrades it;
``status``, ``conflicts list`` and ``check`` read an older store as it is, so a newer syncd
never migrates the database under an older daemon; a store from a newer syncd is refused."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.state import StateStore
from syncd.state import migrations as schema
from tests.unit.test_state_migrations import applied, digest, first_schema


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_reading_commands_leave_an_older_store_as_it_is_and_a_sync_upgrades_it(config: Path) -> None:
    state = config.parent / ".syncd" / "state.sqlite"
    state.parent.mkdir()
    first_schema(state)
    was = digest(state)

    status = invoke(config, "status")
    assert status.exit_code == 0, status.output
    assert (
        "ada: failing items: 1 item(s) quarantined; last run 2026-12-01 09:00 UTC; 1 open pairing(s); did 1 create"
        in status.output
    )
    assert "quarantined: UID bad: broken" in status.output and "1 open conflict(s)" in status.output
    listed = invoke(config, "conflicts", "list")
    assert listed.exit_code == 0 and "1: one - due: calendar a, Kizen b (open)" in listed.output
    assert invoke(config, "check").exit_code in (0, 1)  # what it finds is not the point: it writes nothing
    assert digest(state) == was and applied(state) == ["m001_initial"]
    assert not [p for p in state.parent.iterdir() if p.name.startswith("state.sqlite-")]  # no WAL made

    synced = invoke(config, "run", "--once")
    assert synced.exit_code == 0 and "pairings closed (done on one side)       2" in synced.output, synced.output
    assert applied(state) == list(schema.KNOWN)
    store = StateStore(state, read_only=True)
    assert store.pairing_of("act-2") is not None  # the old rows came through
    store.close()


def test_a_store_a_newer_syncd_upgraded_is_refused_by_every_command(config: Path) -> None:
    state = config.parent / ".syncd" / "state.sqlite"
    StateStore(state).close()
    db = sqlite_utils.Database(state)
    db.table("_sqlite_migrations").insert({"migration_set": "syncd", "name": "m099_from_the_future", "applied_at": "x"})
    db.close()
    was = digest(state)
    for command in (
        ["status"],
        ["conflicts", "list"],
        ["run", "--once"],
        ["conflicts", "resolve", "1", "--keep", "crm"],
    ):
        result = invoke(config, *command)
        assert result.exit_code == 2, (command, result.output)
        assert result.output == (
            f"syncd: state store {state}: a newer syncd upgraded it (its migration m099_from_the_future is unknown "
            "to this version); run that version, or restore a copy made before the upgrade\n"
        ), command
    assert digest(state) == was

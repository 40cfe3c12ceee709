"""The PostgreSQL state store on a real server (tests/pg.py): its migrations are SQLite's, applied
by writers only, each in its own transaction; a newer database is refused; a read-only open writes
nothing; a server that is down, a missing database, a refused password and a bad URL are each one
StateError naming the database without its password; the sync lock is the server's, released
when its holder dies."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from syncd.config import load
from syncd.errors import ConfigError, StateError, StateFailed
from syncd.model import Location, OccurrenceId
from syncd.state import Pairing, migrations, open_store, pg_migrations
from syncd.state.postgres import PostgresStore
from tests.pg import Server
from tests.unit.test_state import START

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(pg_server: Server) -> Iterator[str]:
    made = pg_server.database()
    try:
        yield made
    finally:
        pg_server.drop(made)


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [name for (name,) in rows]


def applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return pg_migrations.applied(conn)  # type: ignore[arg-type]


def test_the_migrations_are_sqlites_by_name_and_order() -> None:
    assert pg_migrations.KNOWN == migrations.KNOWN


def test_a_writer_migrates_and_a_read_only_open_writes_nothing(url: str) -> None:
    reader = PostgresStore(url, read_only=True)
    try:  # read through migrations applied in a transaction that is never committed
        assert reader.pairings() == [] and reader.last_runs() == {} and reader.conflicts() == []
    finally:
        reader.close()
    assert tables(url) == [] and applied(url) == []
    writer = PostgresStore(url)
    writer.save_pairing(Pairing(OccurrenceId("a"), "act-a", "t", START, START, locations=(Location("s", "c", "h"),)))
    writer.close()
    assert applied(url) == list(migrations.KNOWN)
    reader = PostgresStore(url, read_only=True)
    try:
        assert [p.activity_id for p in reader.pairings_at("s", "c")] == ["act-a"]
        with pytest.raises(StateError, match="read-only"):  # the server itself refuses a write
            reader.remember("contact", "bo@example.com", "c-1")
    finally:
        reader.close()


def test_a_failing_migration_is_rolled_back_alone_and_named(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    index = pg_migrations.KNOWN.index("m006_pairing_locations")
    name, real = pg_migrations.MIGRATIONS[index]

    def half_way(conn: psycopg.Connection[object]) -> None:
        real(conn)  # its table made, its rows moved, a column dropped: then it fails
        conn.execute("SELECT 1 / 0")

    patched = list(pg_migrations.MIGRATIONS)
    patched[index] = (name, half_way)
    monkeypatch.setattr(pg_migrations, "MIGRATIONS", patched)
    with pytest.raises(StateError) as failed:
        PostgresStore(url)
    assert str(failed.value).startswith(f"state store {url}: migration {name} failed (division by zero")
    assert "it was rolled back, the ones before it stay applied (m001_initial," in str(failed.value)
    assert applied(url) == list(migrations.KNOWN[:index])
    assert "pairing_locations" not in tables(url)
    with psycopg.connect(url) as conn:  # the column it dropped is still there
        conn.execute("SELECT locations FROM pairings")
    monkeypatch.undo()
    PostgresStore(url).close()  # fixed: the next writer finishes the upgrade
    assert applied(url) == list(migrations.KNOWN)


def test_the_upgrade_to_a_lead_source_column_fills_it_from_each_pairings_lead(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = pg_migrations.KNOWN.index("m011_lead_source")
    monkeypatch.setattr(pg_migrations, "MIGRATIONS", pg_migrations.MIGRATIONS[:index])
    PostgresStore(url).close()  # a database as the syncd before it left it
    lead = '{"source": "ada", "collection": "c", "href": "h"}'
    with psycopg.connect(url) as conn:
        for uid, led in (("one", lead), ("two", None), ("three", "")):
            conn.execute(
                "INSERT INTO pairings (uid, slot, activity_id, original_due, due, lead) VALUES (%s, '', %s, %s, %s, %s)",
                [uid, f"act-{uid}", START.isoformat(), START.isoformat(), led],
            )
    monkeypatch.undo()
    store = PostgresStore(url)
    try:
        assert [p.id.uid for p in store.pairings_for({"ada"})] == ["one"]
        assert [p.id.uid for p in store.pairings_for(set(), unled=True)] == ["two", "three"]
    finally:
        store.close()


def test_a_database_a_newer_syncd_upgraded_is_refused_by_every_open(url: str) -> None:
    PostgresStore(url).close()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO syncd_migrations (name) VALUES ('m099_from_the_future')")
    for read_only in (False, True):
        with pytest.raises(StateError) as refused:
            PostgresStore(url, read_only=read_only)
        assert str(refused.value) == (
            f"state store {url}: a newer syncd upgraded it (its migration m099_from_the_future is unknown to "
            "this version); run that version, or restore a copy made before the upgrade"
        )


def test_a_server_that_is_down_a_missing_database_and_a_refused_password_are_each_named(
    pg_server: Server, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE ROLE locked LOGIN PASSWORD 'right'")
        conn.execute("GRANT ALL ON SCHEMA public TO locked")
    try:
        down = f"postgresql://syncd@127.0.0.1:{_closed_port()}/syncd"
        with pytest.raises(StateError, match=r"is the PostgreSQL server running and reachable\?"):
            open_store(down)
        missing = pg_server.url("nowhere")
        with pytest.raises(StateError, match=r'database "nowhere" does not exist: create it \(createdb NAME\)'):
            open_store(missing)
        monkeypatch.setenv("PGPASSWORD", "wrong")
        locked = url.replace("syncd@", "locked@")
        with pytest.raises(StateError) as refused:
            open_store(locked)
        message = str(refused.value)
        assert message.startswith(f"state store {locked}: ") and "password authentication failed" in message
        assert "check the user and password (in the URL, PGPASSWORD or ~/.pgpass)" in message
        assert "wrong" not in message
        monkeypatch.setenv("PGPASSWORD", "right")
        open_store(locked, read_only=True).close()  # the password from the environment, as for psql
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY locked")
        pg_server.admin.execute("DROP ROLE locked")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nobody listens on it once the probe is closed


def test_a_url_with_a_password_or_no_database_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for state, problem in (
        ("postgresql://ada:secret@db.example.com/syncd", "holds a password"),
        ("postgresql://ada@db.example.com/syncd?password=secret", "holds a password"),
        ("postgresql://ada@db.example.com:port/syncd", "port is not a number"),
        ("postgresql://ada@db.example.com", "names no database"),
    ):
        config.write_text(f'[kizen.sandbox]\n[sync]\nstate = "{state}"\n')
        with pytest.raises(ConfigError) as refused:
            load(config)
        assert problem in str(refused.value) and "secret" not in str(refused.value)
    config.write_text('[kizen.sandbox]\n[sync]\nstate = "postgresql://ada@db.example.com:5433/syncd"\n')
    assert load(config).sync.state == "postgresql://ada@db.example.com:5433/syncd"  # not a path
    with pytest.raises(StateError, match="not a PostgreSQL URL"):
        open_store("postgresql://ada@db.example.com/syncd?no_such_option=1")


def test_the_sync_lock_is_refused_naming_the_holder_and_released_when_it_is_killed(url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            store = PostgresStore(url)
            try:
                with pytest.raises(StateError, match=rf"another sync is running \(pid {holder.pid} on .*run --once"):
                    with store.lock("run --once"):
                        pass
                holder.kill()  # SIGKILL: no cleanup of its own; the server ends its session
                holder.wait(timeout=10)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        with store.lock("run --once"):
                            break
                    except StateError:
                        assert time.monotonic() < deadline, "the dead holder's lock was never released"
                        time.sleep(0.05)
            finally:
                store.close()
        finally:
            holder.kill()


HOLD = """
import sys
from syncd.state.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
with store.lock("run --once"):
    print("held", flush=True)
    sys.stdin.read()  # held until killed
"""


def test_a_sqlite_user_never_loads_psycopg(tmp_path: Path) -> None:
    """psycopg is imported only when [sync] state is a PostgreSQL URL (it is an extra)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[kizen.sandbox]\ndata = "sandbox.sqlite"\n[sync]\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
    )
    script = (
        "import sys\nfrom click.testing import CliRunner\nfrom syncd.cli import cli\n"
        f"for args in (['run', '--once'], ['status']):\n"
        f"    result = CliRunner().invoke(cli, ['--config', {str(config)!r}, *args])\n"
        "    assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_server_gone_mid_run_fails_each_read_and_write_in_one_line_naming_it() -> None:
    """Its own server, stopped under an open store: a read or write is a StateFailed naming the
    database and what to check, within the busy timeout, never psycopg's own error."""
    server = Server()
    try:
        url = server.database()
        store = PostgresStore(url, busy_timeout=1)
        store.remember("contact", "bo@example.com", "c-1")
        server.stop()
        began = time.monotonic()
        for call in (lambda: store.pairings(), lambda: store.remember("contact", "x", "y")):
            with pytest.raises(StateFailed) as failed:
                call()
            assert str(failed.value).startswith(f"state store {url}: ")
            assert "is the PostgreSQL server running and reachable?" in str(failed.value)
        assert time.monotonic() - began < 10
        store.close()
    finally:
        server.stop()

"""``syncd state migrate``: a SQLite state copied into PostgreSQL, row for row.

Both stores keep the same tables, columns and values (:mod:`syncd.state.pg_migrations`), so the
copy is a plain one: every table but the migrations' own, in one PostgreSQL transaction (a
failure leaves the database as it was), the ids kept so the journal, conflicts and runs still
point where they did, and the pairings in the order they were made.

What a careful operator expects, and so the rules: the SQLite file is only read (opened read-only,
migrated in memory if it is old) and kept as it was, a backup; both sync locks are held, so a
daemon still running on either store refuses the copy instead of writing beside it; the target
must hold no state yet (nothing is merged or overwritten); and every table's row count is
compared after the copy, inside its transaction.
"""

from __future__ import annotations

from pathlib import Path

from syncd.errors import StateError
from syncd.state.pg_faults import mapping
from syncd.state.postgres import PostgresStore
from syncd.state.store import StateStore

SKIPPED = ("_sqlite_migrations",)  # each store records its own migrations


def tables(source: StateStore) -> list[str]:
    rows = source.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    return [name for (name,) in rows if name not in SKIPPED and not name.startswith("sqlite_")]


def copy_state(path: Path, url: str) -> dict[str, int]:
    """Copies the SQLite state at ``path`` into the empty PostgreSQL database at ``url``.

    Returns:
        The rows copied, by table.

    Raises:
        StateError: either store cannot be opened or locked, the target already holds a state,
            or the copy failed (nothing of it stays).
    """
    if not path.exists():
        raise StateError(f"state store {path.absolute()}: no such file; nothing to copy")
    source = StateStore(path, read_only=True)
    try:
        target = PostgresStore(url)
        try:
            with source.lock("state migrate"), target.lock("state migrate"):
                return _copy(source, target)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: StateStore, target: PostgresStore) -> dict[str, int]:
    copied: dict[str, int] = {}
    with mapping(target.url, StateError), target.atomic(), target._conn() as conn:
        for table in tables(source):
            found = conn.execute(f"SELECT count(*) AS n FROM {table}".encode()).fetchone()
            if found and found["n"]:
                raise StateError(
                    f"state store {target.where} already holds a state ({found['n']} row(s) in {table}); "
                    "syncd copies only into an empty one: nothing was changed"
                )
        for table in tables(source):
            columns = [row[1] for row in source.db.execute(f"PRAGMA table_info({table})").fetchall()]
            names = ", ".join(columns)
            rows = source.db.execute(f"SELECT {names} FROM {table} ORDER BY rowid")
            with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN".encode()) as copy:
                for row in rows:
                    copy.write_row(row)
            if "id" in columns:  # the next id follows the copied ones
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)".encode()
                )
            (expected,) = source.db.execute(f"SELECT count(*) FROM {table}").fetchone()
            got = conn.execute(f"SELECT count(*) AS n FROM {table}".encode()).fetchone()
            if not got or got["n"] != expected:
                raise StateError(f"state store {target.where}: {table} has a different row count after the copy")
            copied[table] = int(expected)
    return copied

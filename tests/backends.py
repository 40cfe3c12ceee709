"""The state backends a test runs on: ``sqlite`` (``state.sqlite`` in the test's folder) or
``postgresql`` (a fresh database per folder on the session's server, :mod:`tests.pg`).

The engine tests (``tests/engine/conftest.py``) and the state-store tests run once per backend;
a test names its state by its folder (:func:`state_of`), opens it with :func:`open_state`, and
loses it (a lost state store) with :func:`lose_state`, whatever the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncd.state import Pairing, Store, open_store
from tests.pg import Server


class Backend:
    """Where the states of one test live; :meth:`close` drops its PostgreSQL databases."""

    def __init__(self, name: str, server: Server | None = None) -> None:
        self.name = name
        self.server = server
        self.urls: dict[Path, str] = {}

    def state(self, folder: Path) -> str:
        if self.server is None:
            return str(folder / "state.sqlite")
        if folder not in self.urls:
            self.urls[folder] = self.server.database(migrated=True)  # the engine's tests: no schema to wait for
        return self.urls[folder]

    def exists(self, folder: Path) -> bool:
        return folder in self.urls if self.server is not None else (folder / "state.sqlite").exists()

    def lose(self, folder: Path) -> None:
        """The state is gone (a lost disk, a restored empty database): the next open starts empty."""
        if self.server is None:
            for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
                (folder / name).unlink(missing_ok=True)
            return
        url = self.urls.pop(folder, None)
        if url is not None:
            self.server.drop(url)
            self.server.admin.execute(f"CREATE DATABASE {url.rsplit('/', 1)[1]} TEMPLATE template0".encode())
            self.urls[folder] = url

    def count(self, folder: Path, table: str) -> int:
        """Rows committed to a table of the state so far, read beside whoever writes it (0 if none yet)."""
        if self.server is None:
            import sqlite3

            try:
                with sqlite3.connect(folder / "state.sqlite", timeout=1) as db:
                    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
        import psycopg

        with psycopg.connect(self.state(folder), autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
            if not found or found[0] is None:
                return 0
            row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
            return int(row[0]) if row else 0

    def rows(self, folder: Path, sql: str) -> list[tuple[Any, ...]]:
        """The rows a query on the state answers, as tuples (SQL both databases read)."""
        if self.server is None:
            import sqlite3

            with sqlite3.connect(folder / "state.sqlite") as db:
                return [tuple(row) for row in db.execute(sql).fetchall()]
        import psycopg

        with psycopg.connect(self.state(folder), autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(sql.encode()).fetchall()]

    def execute(self, folder: Path, sql: str) -> None:
        """Runs one statement on the state (committed), in SQL both databases read."""
        if self.server is None:
            import sqlite3

            with sqlite3.connect(folder / "state.sqlite") as db:
                db.execute(sql)
            return
        import psycopg

        with psycopg.connect(self.state(folder), autocommit=True) as conn:
            conn.execute(sql.encode())

    def store_class(self) -> type[Any]:
        if self.server is None:
            from syncd.state import StateStore

            return StateStore
        from syncd.state.postgres import PostgresStore

        return PostgresStore

    def close(self) -> None:
        if self.server is not None:
            for url in self.urls.values():
                self.server.recycle(url)
        self.urls.clear()


CURRENT = Backend("sqlite")


def state_of(folder: Path) -> str:
    """The ``[sync] state`` of a test's folder on the current backend."""
    return CURRENT.state(folder)


def open_state(folder: Path, **options: Any) -> Store:
    return open_store(state_of(folder), **options)


def pairings_in(folder: Path) -> list[Pairing]:
    """Every pairing the state of a test's folder holds, read and closed again."""
    state = open_state(folder)
    try:
        return state.pairings()
    finally:
        state.close()


def lose_state(folder: Path) -> None:
    CURRENT.lose(folder)


def state_exists(folder: Path) -> bool:
    return CURRENT.exists(folder)

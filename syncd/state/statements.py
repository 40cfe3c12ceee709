"""The SQL of the writes both stores send: an insert and an upsert of one row, built from the
row's columns; only the placeholder differs (SQLite's ``?``, psycopg's ``%s``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def insert(table: str, row: Mapping[str, Any], mark: str) -> str:
    """``INSERT INTO "table" ("a", "b") VALUES (?, ?)`` for a row's columns, in its order."""
    names = ", ".join(f'"{name}"' for name in row)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join([mark] * len(row))})'


def upsert(table: str, row: Mapping[str, Any], key: Iterable[str], mark: str) -> str:
    """The insert of a row that, where a row with its ``key`` is there, sets the row's other
    columns instead (the columns it does not give stay as they were)."""
    key = tuple(key)
    changed = ", ".join(f'"{name}" = excluded."{name}"' for name in row if name not in key)
    return f"{insert(table, row, mark)} ON CONFLICT ({', '.join(key)}) DO " + (
        f"UPDATE SET {changed}" if changed else "NOTHING"
    )

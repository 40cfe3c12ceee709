"""The SQL both stores send: an insert and an upsert of one row, built from the row's columns,
and the pairings of a team's cycle; only the placeholders (SQLite's ``?``, psycopg's ``%s``) and the
test of membership of a list differ."""

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


# The pairings a cycle of some sources plans from (``Pairings.pairings_for``), each term by its own
# index: ``{sources}`` and ``{uids}`` test membership of a list, ``{unled}`` is a flag, and
# ``{unindexed}`` keeps SQLite from reading every open pairing by the index on ``settled``.
PAIRINGS_FOR = """(
  (p.uid, p.slot) IN (SELECT uid, slot FROM pairing_locations WHERE source {sources}) AND {unindexed}p.settled IS NULL
  OR p.lead_source {sources} AND p.settled IS NULL
  OR {unled} AND p.lead_source IS NULL AND p.settled IS NULL
  OR p.uid {uids})"""

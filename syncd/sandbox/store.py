"""Where the sandbox keeps its activities: SQLite, in memory or in a file.

A file lets a second run see the first run's activities (the embedded default). Each record is
kept whole as JSON beside the few columns the list filters and orders on. One connection is
shared by the server's threads behind a lock, which also makes every operation of the emulated
API atomic, as a database transaction would in Kizen.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.files import private_database, private_file, private_folder

Record = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduled (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type_id TEXT NOT NULL,
    employee_id TEXT,
    due_us INTEGER NOT NULL,
    completed_us INTEGER,
    note TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scheduled_due ON scheduled (due_us);
CREATE INDEX IF NOT EXISTS scheduled_employee ON scheduled (employee_id, due_us);
CREATE TABLE IF NOT EXISTS logged (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type_id TEXT NOT NULL,
    notes TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logged_type ON logged (type_id);
"""


def micros(value: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch (sortable, exact)."""
    delta = value - datetime(1970, 1, 1, tzinfo=value.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class ScheduledQuery:
    """The list endpoint's filters, already parsed. Bounds are exclusive (see the package doc)."""

    after_us: int | None = None
    before_us: int | None = None
    employee_ids: Sequence[str] | None = None
    completed: bool | None = None
    type_id: str | None = None
    search: str | None = None
    type_ids_named: Sequence[str] = ()
    ordering: str = "due_datetime"


_ORDERINGS = {
    "due_datetime": "due_us ASC, seq ASC",
    "-due_datetime": "due_us DESC, seq DESC",
    "completed_at": "completed_us ASC, seq ASC",
    "-completed_at": "completed_us DESC, seq DESC",
    "created": "seq ASC",
    "-created": "seq DESC",
}
ORDERINGS = frozenset(_ORDERINGS)


class Store:
    """The sandbox's activities. Thread-safe; every method is one transaction."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":  # 0600 in a 0700 folder, like the state store
            private_folder(Path(self.path).parent)
            private_file(Path(self.path))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            private_database(Path(self.path))
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Holds the lock and one SQLite transaction; nested uses join the outer one."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # scheduled activities

    def put_scheduled(self, record: Record, *, due: datetime, completed: datetime | None) -> None:
        """Inserts or replaces one scheduled activity (keeping its place in creation order)."""
        row = (
            record["activity_object_id"],
            record["employee_id"],
            micros(due),
            micros(completed) if completed else None,
            record["note"],
            json.dumps(record, separators=(",", ":")),
            record["id"],
        )
        with self.transaction():
            updated = self._db.execute(
                "UPDATE scheduled SET type_id=?, employee_id=?, due_us=?, completed_us=?, note=?, data=? WHERE id=?",
                row,
            ).rowcount
            if not updated:
                self._db.execute(
                    "INSERT INTO scheduled (type_id, employee_id, due_us, completed_us, note, data, id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )

    def scheduled(self, activity_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM scheduled WHERE id=?", (activity_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_scheduled(self, activity_id: str) -> bool:
        with self.transaction():
            return self._db.execute("DELETE FROM scheduled WHERE id=?", (activity_id,)).rowcount > 0

    def list_scheduled(self, query: ScheduledQuery, offset: int, limit: int) -> tuple[int, list[Record]]:
        """The matching count and one page of records, in the query's order."""
        where: list[str] = []
        args: list[Any] = []
        if query.after_us is not None:
            where.append("due_us > ?")
            args.append(query.after_us)
        if query.before_us is not None:
            where.append("due_us < ?")
            args.append(query.before_us)
        if query.employee_ids is not None:
            where.append(f"employee_id IN ({','.join('?' * len(query.employee_ids))})")
            args.extend(query.employee_ids)
        if query.completed is not None:
            where.append("completed_us IS NOT NULL" if query.completed else "completed_us IS NULL")
        if query.type_id is not None:
            where.append("type_id = ?")
            args.append(query.type_id)
        if query.search:
            named = ",".join("?" * len(query.type_ids_named))
            where.append(f"(instr(lower(note), lower(?)) > 0 OR type_id IN ({named}))")
            args.append(query.search)
            args.extend(query.type_ids_named)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            (count,) = self._db.execute(f"SELECT COUNT(*) FROM scheduled{clause}", args).fetchone()
            rows = self._db.execute(
                f"SELECT data FROM scheduled{clause} ORDER BY {_ORDERINGS[query.ordering]} LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return count, [json.loads(data) for (data,) in rows]

    # logged activities

    def add_logged(self, record: Record) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO logged (id, type_id, notes, data) VALUES (?, ?, ?, ?)",
                (record["id"], record["activity_object_id"], record["notes"], json.dumps(record)),
            )

    def logged(self, logged_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM logged WHERE id=?", (logged_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_logged(
        self, type_id: str, search: str | None, custom_object_id: str | None, offset: int, limit: int
    ) -> tuple[int, list[Record]]:
        """One type's logged activities, oldest first, optionally with a record of one object."""
        clause = "WHERE type_id = ?"
        args: list[Any] = [type_id]
        if search:
            clause += " AND instr(lower(notes), lower(?)) > 0"
            args.append(search)
        if custom_object_id:
            clause += (
                " AND EXISTS (SELECT 1 FROM json_each(data, '$.related_objects')"
                " WHERE json_extract(value, '$.custom_object') = ?)"
            )
            args.append(custom_object_id)
        with self._lock:
            (count,) = self._db.execute(f"SELECT COUNT(*) FROM logged {clause}", args).fetchone()
            rows = self._db.execute(
                f"SELECT data FROM logged {clause} ORDER BY seq LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return count, [json.loads(data) for (data,) in rows]

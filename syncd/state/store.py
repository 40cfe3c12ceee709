"""The state store: what syncd knows between runs, in one SQLite file (DESIGN section 6).

It holds the pairings (occurrence identity, activity id, the locations of its copies, per-field
hashes of what each side last showed, settled state), the calendar resources as last fetched,
cursors per collection, conflicts, a journal of intents (written before every remote write,
settled after it), failed and quarantined items, and runs. WAL lets ``status`` and ``conflicts``
read while a sync writes. The schema and its migrations are in :mod:`syncd.state.migrations`;
what the sync core needs of this store is :class:`syncd.state.protocol.SyncState`.

One sync process at a time holds :meth:`StateStore.lock` (an OS file lock, released even when
the holder is killed); a second is refused with a message naming the holder.

SQLite's own errors and the OS's never leave this module raw: opening, migrating and locking fail
with :class:`StateError`, any read or write after that with :class:`StateFailed`, each naming the
file and saying what to do (:mod:`syncd.state.faults`). A writer waits up to the busy timeout for
another (``conflicts resolve`` beside a sync) instead of failing at once.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from syncd.errors import StateError
from syncd.files import private_database, private_file, private_folder
from syncd.model import Cursor, Location, OccurrenceId, Policy
from syncd.state import migrations, pruning, statements
from syncd.state.faults import BUGS, failure, mapping, maps_errors
from syncd.state.lock import sync_lock
from syncd.state.protocol import (
    ComponentStatus,
    Conflict,
    Discovery,
    Failure,
    JournalEntry,
    Pairing,
    RenderedFeed,
    Settled,
)
from syncd.state.records import (
    LAST_SUCCESSES,
    component_of,
    conflict_of,
    failure_of,
    feed_of,
    feed_row,
    instant,
    iso_text,
    journal_entry_of,
    location_of,
    pairing_row,
    stamp_now,
    successes_of,
)


def _could_make(path: Path) -> None:
    """Raises the OSError making ``path`` would meet (a file in its folder's way, a folder this
    user cannot write), without making anything."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's write to finish
KEEP_RUNS = 100  # runs kept per source, however old
KEEP_DAYS = 30  # days runs and settled journal rows are kept

_MEMBER = "IN (SELECT value FROM json_each(:{}))"  # a list, given as JSON
_PAIRINGS_FOR = statements.PAIRINGS_FOR.format(
    sources=_MEMBER.format("sources"), uids=_MEMBER.format("uids"), unled=":unled", unindexed="+"
)


@maps_errors
class StateStore:
    """The state of one business, in one SQLite file (``:memory:`` for tests).

    Its one connection may be used from other threads than the one that opened it, one at a
    time: the workers applying a plan share it through :func:`syncd.state.shared.shared`.

    Args:
        path: the SQLite file (its folder is made if need be), or ``":memory:"``.
        busy_timeout: seconds a write waits for another process's write transaction to end
            before it fails with :class:`StateFailed`.

    Raises:
        StateError: the file cannot be made, opened or migrated (its folder is read-only, it is
            not a database, another process kept it locked past the busy timeout).
    """

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT, *, read_only: bool = False) -> None:
        """Opens the store: a writer (the default) makes the file and applies pending migrations.

        ``read_only`` (``status``, ``conflicts list``, ``check``) never writes the file, so a newer
        syncd's ``status`` cannot upgrade the database under an older daemon still running on it:
        a missing file reads as an empty store, and one with pending migrations is read through
        a migrated copy in memory. Both refuse a database a newer syncd upgraded.
        """
        self.path = Path(path) if str(path) != ":memory:" else None
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        with mapping(self.path, busy_timeout, StateError):
            self.db = self._connect()
        try:
            self._migrate()
        except StateError as exc:  # a StateFailed of atomic() is a failure to open here
            self.db.close()
            raise StateError(str(exc)) from exc.__cause__
        except BUGS:
            self.db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            self.db.close()
            raise failure(StateError, self.path, exc, busy_timeout) from exc

    def _connect(self) -> sqlite_utils.Database:
        # the busy timeout set at connect time covers the first statements too (WAL, migrations)
        if self.read_only and self.path is not None and self.path.exists():
            uri = self.path.absolute().as_uri() + "?mode=ro"
            return self._database(sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, check_same_thread=False))
        if self.read_only and self.path is not None:
            _could_make(self.path)  # a path a sync could not use is said now, not at the first run
        if self.read_only or self.path is None:
            return self._database(sqlite3.connect(":memory:", check_same_thread=False))  # nothing on disk yet
        private_folder(self.path.parent)
        private_file(self.path)  # 0600 before SQLite writes: its -wal and -shm take the same mode
        return self._database(sqlite3.connect(str(self.path), timeout=self.busy_timeout, check_same_thread=False))

    @staticmethod
    def _database(conn: sqlite3.Connection) -> sqlite_utils.Database:
        db = sqlite_utils.Database(conn)
        # sqlite-utils finds out whether SQLite has ON CONFLICT upserts by a trial write at the
        # first upsert, and remembers "no" when that write fails (locked, full): every later
        # upsert of a new row would then be an INSERT OR IGNORE that NOT NULL columns make a
        # silent no-op. Python's SQLite has had them since 3.24; say so before any write.
        setattr(db, "_supports_on_conflict", sqlite3.sqlite_version_info >= (3, 24))  # noqa: B010
        return db

    def _migrate(self) -> None:
        """Refuses a database from a newer syncd; applies the pending migrations in one transaction.

        A failing migration rolls back with every other one: the file is as it was, and the error
        names the migration. Read-only, the migrations are applied to a copy in memory.
        """
        where = str(self.path.absolute()) if self.path is not None else ":memory:"
        if self.path is not None and not self.read_only:
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")  # and FULL for intents: see _durable
            private_database(self.path)
        migrations.refuse_newer(self.db, where)
        if not migrations.pending(self.db):
            return
        if self.read_only and self.path is not None and self.path.exists():
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            self.db.conn.backup(copy)
            self.db.close()
            self.db = self._database(copy)
        with self.atomic():  # two processes opening a new file: the second waits, then finds it done
            migrations.upgrade(self.db, where, self.busy_timeout)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:
        """One transaction: an action's remote effect is recorded with all its rows or none.

        ``durable`` commits it with a full sync (:meth:`_durable`), as an intent's batch must be.

        It begins IMMEDIATE, taking the write lock first and waiting up to the busy timeout for
        it. A deferred BEGIN (sqlite-utils' ``atomic``) reads before it writes, and SQLite answers
        a read transaction's wish to write while another process writes with "database is
        locked" at once, whatever the timeout. Nested, it is a savepoint of the outer one.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with mapping(self.path, self.busy_timeout), self.db.atomic():
                yield
            return
        with self._durable() if durable else nullcontext():
            with mapping(self.path, self.busy_timeout):
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    with mapping(self.path, self.busy_timeout):
                        conn.execute("ROLLBACK")
                raise
            try:
                with mapping(self.path, self.busy_timeout):
                    conn.execute("COMMIT")
            finally:
                if conn.in_transaction:  # COMMIT failed (a full disk): nothing of it stays
                    conn.execute("ROLLBACK")

    # Writes are plain SQL, not sqlite-utils' insert, upsert and update: those look at the table's
    # shape on every call, which cost a first sync more than its commits (a write per action).

    def _insert(self, table: str, row: Mapping[str, Any]) -> int:
        """Inserts a row into a table keyed by an integer id; returns the id."""
        key = self.db.execute(statements.insert(table, row, "?"), list(row.values())).lastrowid
        assert isinstance(key, int)
        return key

    def _upsert(self, table: str, row: Mapping[str, Any], key: tuple[str, ...]) -> None:
        """Inserts a row, or sets the given columns of the row with its ``key`` (the others stay)."""
        self.db.execute(statements.upsert(table, row, key, "?"), list(row.values()))

    def _update(self, table: str, row_id: int, values: Mapping[str, Any]) -> None:
        """Sets columns of the row with this integer id."""
        changed = ", ".join(f'"{name}" = ?' for name in values)
        self.db.execute(f'UPDATE "{table}" SET {changed} WHERE id = ?', [*values.values(), row_id])

    # --- the lock -----------------------------------------------------------------------------

    def lock(self, command: str) -> AbstractContextManager[None]:
        """Holds the sync lock for the duration; a second holder is refused, naming the first.

        Raises:
            StateError: another sync holds it, or its file (``<state>.lock``) cannot be written.
        """
        return sync_lock(self.path, command, self.busy_timeout)

    # --- cursors and resources ------------------------------------------------------------------

    def cursor(self, source: str, collection: str) -> Cursor:
        rows = list(self.db.table("cursors").rows_where("source = ? and collection = ?", [source, collection]))
        if not rows:
            return Cursor()
        return Cursor(**json.loads(rows[0]["cursor"]))

    def save_cursor(self, source: str, collection: str, cursor: Cursor, zone: str | None = None) -> None:
        data = asdict(cursor)
        data["digests"] = dict(cursor.digests)
        self._upsert(
            "cursors",
            {
                "source": source,
                "collection": collection,
                "cursor": json.dumps(data),
                "zone": zone,
                "updated_at": iso_text(stamp_now()),
            },
            ("source", "collection"),
        )

    def collections(self, source: str) -> dict[str, str | None]:
        """The collections a source was read from before (URL -> its zone): no rediscovery needed."""
        return {row["collection"]: row["zone"] for row in self.db.table("cursors").rows_where("source = ?", [source])}

    def discovery(self, source: str) -> Discovery | None:
        """The source's last discovery (None if none was made, or the store predates them)."""
        found = "discoveries" in self.db.table_names()
        rows = list(self.db.table("discoveries").rows_where("source = ?", [source])) if found else []
        if not rows:
            return None
        return Discovery(rows[0]["settings"], json.loads(rows[0]["collections"]), rows[0]["import_collection"])

    def save_discovery(self, source: str, discovery: Discovery) -> None:
        row = {**asdict(discovery), "collections": json.dumps(discovery.collections, sort_keys=True)}
        self._upsert("discoveries", {"source": source, **row, "discovered_at": iso_text(stamp_now())}, ("source",))

    def forget_collection(self, source: str, collection: str) -> None:
        """Drops a collection's cursor and stored copies (its pairings stay as they are)."""
        with self.db.atomic():
            self.db.execute("DELETE FROM cursors WHERE source = ? AND collection = ?", [source, collection])
            self.db.execute("DELETE FROM resources WHERE source = ? AND collection = ?", [source, collection])
            self.db.execute("DELETE FROM expansions WHERE source = ? AND collection = ?", [source, collection])

    def cursor_times(self, source: str) -> dict[str, datetime | None]:
        """When each collection of a source was last read (its cursor saved)."""
        rows = self.db.table("cursors").rows_where("source = ?", [source])
        return {row["collection"]: instant(row["updated_at"]) for row in rows}

    def lookup(self, kind: str, key: str) -> str | None:
        """A remembered Kizen look-up (``""`` means "known not to exist"), or None if never made."""
        rows = list(self.db.table("lookups").rows_where("kind = ? AND key = ?", [kind, key]))
        return rows[0]["value"] if rows else None

    def remember(self, kind: str, key: str, value: str) -> None:
        self._upsert(
            "lookups", {"kind": kind, "key": key, "value": value, "checked_at": iso_text(stamp_now())}, ("kind", "key")
        )

    def forget(self, kind: str, key: str | None = None) -> None:
        """Drops a remembered look-up, or every one of its kind."""
        if key is None:
            self.db.execute("DELETE FROM lookups WHERE kind = ?", [kind])
        else:
            self.db.execute("DELETE FROM lookups WHERE kind = ? AND key = ?", [kind, key])

    def resources(self, source: str, collection: str) -> dict[str, tuple[str | None, str]]:
        """href -> (etag, iCalendar text) of every resource of a collection as last fetched."""
        rows = self.db.table("resources").rows_where("source = ? and collection = ?", [source, collection])
        return {row["href"]: (row["etag"], row["ical"]) for row in rows}

    def save_resource(self, location: Location, etag: str | None, ical: str) -> None:
        self._upsert(
            "resources",
            {
                "source": location.source,
                "collection": location.collection,
                "href": location.href,
                "etag": etag,
                "ical": ical,
            },
            ("source", "collection", "href"),
        )

    def delete_resource(self, location: Location) -> None:
        self.db.execute(
            "DELETE FROM resources WHERE source = ? AND collection = ? AND href = ?",
            [location.source, location.collection, location.href],
        )

    def expansions(self, source: str, collection: str) -> dict[str, str]:
        """href -> remembered expansion (JSON); none in a store older than them (a dry run does not upgrade)."""
        if "expansions" not in self.db.table_names():
            return {}
        rows = self.db.execute(
            "SELECT href, entry FROM expansions WHERE source = ? AND collection = ?", [source, collection]
        ).fetchall()
        return dict(rows)

    def save_expansions(self, source: str, collection: str, changed: Mapping[str, str], dropped: Iterable[str]) -> None:
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO expansions (source, collection, href, entry) VALUES (?, ?, ?, ?)",
                [(source, collection, href, entry) for href, entry in changed.items()],
            )
            self.db.conn.executemany(
                "DELETE FROM expansions WHERE source = ? AND collection = ? AND href = ?",
                [(source, collection, href) for href in dropped],
            )

    # --- pairings -------------------------------------------------------------------------------

    def pairings(self, *, open_only: bool = False) -> list[Pairing]:
        return self._pairings("p.settled IS NULL" if open_only else "1")

    def pairing(self, occurrence: OccurrenceId) -> Pairing | None:
        found = self._pairings("p.uid = ? AND p.slot = ?", [occurrence.uid, occurrence.slot])
        return found[0] if found else None

    def pairing_of(self, activity_id: str) -> Pairing | None:
        found = self._pairings("p.activity_id = ?", [activity_id])
        return found[0] if found else None

    def pairings_at(self, source: str, collection: str, *, open_only: bool = False) -> list[Pairing]:
        """The pairings with a copy in a collection (by its index: no pass over every pairing)."""
        where = "(p.uid, p.slot) IN (SELECT uid, slot FROM pairing_locations WHERE source = ? AND collection = ?)"
        # "+": the collection's index leads; the one on settled would read every open pairing
        return self._pairings(where + (" AND +p.settled IS NULL" if open_only else ""), [source, collection])

    def pairings_for(
        self, sources: Collection[str], uids: Collection[str] = (), *, unled: bool = False
    ) -> list[Pairing]:
        """What a cycle of some sources plans from (by the indexes on a copy's collection, the
        lead's source and the identity: no pass over every pairing)."""
        chosen = {"sources": json.dumps(sorted(sources)), "uids": json.dumps(sorted(set(uids))), "unled": unled}
        return self._pairings(_PAIRINGS_FOR, chosen)

    def paired_activities(self, activity_ids: Collection[str]) -> set[str]:
        rows = self.db.execute(
            "SELECT activity_id FROM pairings WHERE activity_id IN (SELECT value FROM json_each(?))",
            [json.dumps(sorted(set(activity_ids)))],
        )
        return {activity_id for (activity_id,) in rows.fetchall()}

    def save_pairing(self, pairing: Pairing) -> None:
        """Saves a pairing with its copies' locations (replacing the ones it had), in one transaction."""
        with self.atomic():
            self._upsert("pairings", pairing_row(pairing), ("uid", "slot"))
            key = [pairing.id.uid, pairing.id.slot]
            self.db.execute("DELETE FROM pairing_locations WHERE uid = ? AND slot = ?", key)
            for position, location in enumerate(pairing.locations):
                self.db.execute(
                    "INSERT INTO pairing_locations (uid, slot, position, source, collection, href) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [*key, position, location.source, location.collection, location.href],
                )

    def rekey(self, old: OccurrenceId, pairing: Pairing) -> None:
        """Moves a pairing to another identity (a series whose slots moved), in one transaction."""
        with self.atomic():
            self.db.execute("DELETE FROM pairings WHERE uid = ? AND slot = ?", [old.uid, old.slot])
            self.db.execute("DELETE FROM pairing_locations WHERE uid = ? AND slot = ?", [old.uid, old.slot])
            self.save_pairing(pairing)

    def settle(self, pairing: Pairing, settled: Settled, reason: str) -> Pairing:
        done = replace(pairing, settled=settled, settled_reason=reason)
        self.save_pairing(done)
        return done

    def _pairings(self, where: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Pairing]:
        """The pairings ``where`` picks (on ``p``, the pairings table), with their locations."""
        located: dict[tuple[str, str], list[Location]] = {}
        with self.db.atomic():  # one snapshot for both reads (a deferred read, a read-only file too)
            rows = list(self.db.query(f"SELECT p.* FROM pairings p WHERE {where} ORDER BY p.rowid", params))
            copies = self.db.query(
                "SELECT l.uid, l.slot, l.source, l.collection, l.href FROM pairing_locations l "
                f"JOIN pairings p ON p.uid = l.uid AND p.slot = l.slot WHERE {where} ORDER BY l.position",
                params,
            )
            for copy in copies:
                located.setdefault((copy["uid"], copy["slot"]), []).append(
                    Location(copy["source"], copy["collection"], copy["href"])
                )
        return [self._pairing(row, tuple(located.get((row["uid"], row["slot"]), ()))) for row in rows]

    @staticmethod
    def _pairing(row: dict[str, Any], locations: tuple[Location, ...]) -> Pairing:
        return Pairing(
            id=OccurrenceId(row["uid"], row["slot"]),
            activity_id=row["activity_id"],
            activity_type_id=row["activity_type_id"],
            original_due=datetime.fromisoformat(row["original_due"]),
            due=datetime.fromisoformat(row["due"]),
            created_by_syncd=bool(row["created_by_syncd"]),
            lead=location_of(json.loads(row["lead"])) if row["lead"] else None,
            locations=locations,
            calendar_seen=json.loads(row["calendar_seen"] or "{}"),
            kizen_seen=json.loads(row["kizen_seen"] or "{}"),
            hands_off=tuple(json.loads(row["hands_off"] or "[]")),
            settled=Settled(row["settled"]) if row["settled"] else None,
            settled_reason=row["settled_reason"] or "",
            logged_activity_id=row["logged_activity_id"],
            written_back=bool(row["written_back"]),
            changes=row["changes"] or 0,
            changed_at=instant(row["changed_at"]),
        )

    def prune(self, now: datetime, keep: timedelta, *, runs: int = KEEP_RUNS, days: int = KEEP_DAYS) -> pruning.Pruned:
        """Forgets settled pairings whose identity cannot come back into the window (their times
        older than ``keep``), runs older than ``days`` beyond each source's last ``runs``, and
        journal rows settled over ``days`` ago; :mod:`syncd.state.pruning` says what stays, and why."""
        with self.atomic():
            return pruning.prune(self.db, now, keep, runs, days)

    # --- the journal ----------------------------------------------------------------------------

    def intend(
        self, kind: str, occurrence: OccurrenceId, payload: dict[str, Any], activity_id: str | None = None
    ) -> int:
        """Writes an intent before its remote write; returns its id for :meth:`settle_intent`."""
        row = {
            "kind": kind,
            "uid": occurrence.uid,
            "slot": occurrence.slot,
            "activity_id": activity_id,
            "payload": json.dumps(payload, sort_keys=True),
            "status": "pending",
            "created_at": iso_text(stamp_now()),
        }
        with self._durable():
            return self._insert("journal", row)

    @contextmanager
    def _durable(self) -> Iterator[None]:
        """A write that must outlive a power loss, not only a crash: an intent, read back before
        anything is sent again. The store commits with ``synchronous=NORMAL`` (in WAL, a commit
        outlives the process but a power loss may take the last ones back: a lost outcome only
        leaves its intent pending, which the journal settles); an intent is committed with FULL,
        so it is on disk before its request leaves. Inside a transaction the outer commit decides."""
        conn = self.db.conn
        if conn.in_transaction or self.read_only:
            yield
            return
        conn.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")

    def settle_intent(
        self, intent: int, status: Literal["done", "failed", "abandoned"], outcome: dict[str, Any]
    ) -> None:
        self._update(
            "journal", intent, {"status": status, "outcome": json.dumps(outcome), "settled_at": iso_text(stamp_now())}
        )

    def pending_intents(self) -> list[JournalEntry]:
        return [
            journal_entry_of(row) for row in self.db.table("journal").rows_where("status = 'pending'", order_by="id")
        ]

    # --- rebuilding and safety rails -----------------------------------------------------------

    def rebuilt(self) -> set[str]:
        """The sources whose activities made before this state store have all been looked for."""
        return {row["source"] for row in self.db.table("rebuilds").rows}

    def mark_rebuilt(self, sources: set[str]) -> None:
        now = iso_text(stamp_now())
        self.db.table("rebuilds").upsert_all(
            [{"source": name, "completed_at": now} for name in sorted(sources)], pk="source"
        )

    def rails(self) -> dict[str, str]:
        """Source -> why a safety rail stopped its deletions (held until cleared)."""
        return {row["source"]: row["reason"] for row in self.db.table("rails").rows}

    def stop(self, source: str, reason: str) -> None:
        if source not in self.rails():
            self._insert("rails", {"source": source, "reason": reason, "since": iso_text(stamp_now())})

    def clear_rail(self, source: str) -> None:
        self.db.execute("DELETE FROM rails WHERE source = ?", [source])

    # --- conflicts ------------------------------------------------------------------------------

    def record_conflict(
        self, pairing: Pairing, field_name: str, calendar_value: str, kizen_value: str, policy: Policy
    ) -> int:
        status = "open" if policy == Policy.MANUAL else "applied"
        existing = list(
            self.db.table("conflicts").rows_where(
                "uid = ? AND slot = ? AND field = ? AND status = 'open'", [pairing.id.uid, pairing.id.slot, field_name]
            )
        )
        if existing and status == "open":
            return int(existing[0]["id"])
        row = {
            "uid": pairing.id.uid,
            "slot": pairing.id.slot,
            "activity_id": pairing.activity_id,
            "field": field_name,
            "calendar_value": calendar_value,
            "kizen_value": kizen_value,
            "policy": policy,
            "status": status,
            "keep": None if policy == Policy.MANUAL else policy,
            "created_at": iso_text(stamp_now()),
        }
        return self._insert("conflicts", row)

    def conflicts(self, *, open_only: bool = False) -> list[Conflict]:
        where = "status != 'applied' OR keep IS NULL" if open_only else None
        return [conflict_of(row) for row in self.db.table("conflicts").rows_where(where, order_by="id")]

    def resolve_conflict(self, conflict_id: int, keep: Policy) -> None:
        """Records a decision for the next sync to apply (safe while a sync runs: WAL)."""
        if keep == Policy.MANUAL:
            raise StateError(f"conflict {conflict_id}: keep the calendar or the crm value, not manual")
        rows = list(self.db.table("conflicts").rows_where("id = ?", [conflict_id]))
        if not rows:
            raise StateError(f"no conflict {conflict_id}")
        if rows[0]["status"] != "open":
            raise StateError(f"conflict {conflict_id} is already settled ({rows[0]['status']}, kept {rows[0]['keep']})")
        self._update(
            "conflicts", conflict_id, {"status": "resolved", "keep": keep, "resolved_at": iso_text(stamp_now())}
        )

    def mark_conflict_applied(self, conflict_id: int) -> None:
        self._update("conflicts", conflict_id, {"status": "applied"})

    # --- failures and runs ----------------------------------------------------------------------

    def record_failure(
        self, source: str, occurrence: OccurrenceId, kind: Literal["failed", "quarantined"], reason: str
    ) -> None:
        now = iso_text(stamp_now())
        key = [source, occurrence.uid, occurrence.slot]
        existing = list(self.db.table("failures").rows_where("source = ? AND uid = ? AND slot = ?", key))
        first = existing[0]["first_seen"] if existing else now
        self._upsert(
            "failures",
            {
                "source": source,
                "uid": occurrence.uid,
                "slot": occurrence.slot,
                "kind": kind,
                "reason": reason,
                "first_seen": first,
                "last_seen": now,
            },
            ("source", "uid", "slot"),
        )

    def clear_failure(self, source: str, occurrence: OccurrenceId) -> None:
        self.db.execute(
            "DELETE FROM failures WHERE source = ? AND uid = ? AND slot = ?", [source, occurrence.uid, occurrence.slot]
        )

    def failures(self, source: str | None = None) -> list[Failure]:
        rows = self.db.table("failures").rows_where(
            "source = ?" if source else None, [source] if source else [], order_by="uid"
        )
        return [failure_of(row) for row in rows]

    def record_component(self, name: str, error: str | None) -> None:
        """Records how this run found a component (``kizen``): reached (``error`` None) or not."""
        now = iso_text(stamp_now())
        row: dict[str, Any] = {"name": name, "checked_at": now, "last_error": error}
        if error is None:
            row["last_success"] = now
        else:
            row["failed_at"] = now
        self._upsert("components", row, ("name",))

    def component(self, name: str) -> ComponentStatus | None:
        """How the last run found a component, or None if no run has recorded it yet."""
        rows = list(self.db.table("components").rows_where("name = ?", [name]))
        if not rows:
            return None
        return component_of(rows[0])

    def save_feed(self, name: str, feed: RenderedFeed) -> None:
        self._upsert("feeds", feed_row(name, feed), ("name",))

    def feed(self, name: str) -> RenderedFeed | None:
        rows = list(self.db.table("feeds").rows_where("name = ?", [name]))
        return feed_of(rows[0]) if rows else None

    def feed_etag(self, name: str) -> str | None:
        rows = list(self.db.query("SELECT etag FROM feeds WHERE name = ?", [name]))
        return str(rows[0]["etag"]) if rows else None

    def last_successes(self) -> dict[str, datetime]:
        return successes_of(self.db.query(LAST_SUCCESSES))

    def start_run(self, source: str) -> int:
        return self._insert("runs", {"source": source, "started_at": iso_text(stamp_now()), "status": "running"})

    def finish_run(self, run: int, status: str, counts: dict[str, int], errors: list[str]) -> None:
        self._update(
            "runs",
            run,
            {
                "finished_at": iso_text(stamp_now()),
                "status": status,
                "counts": json.dumps(counts),
                "errors": json.dumps(errors),
            },
        )

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The latest run of each source (``*`` for the Kizen poll)."""
        rows = self.db.query("SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY source) ORDER BY id")
        return {
            row["source"]: {
                **row,
                "counts": json.loads(row["counts"] or "{}"),
                "errors": json.loads(row["errors"] or "[]"),
            }
            for row in rows
        }

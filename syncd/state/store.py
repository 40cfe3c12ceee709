"""The state store: what syncd knows between runs, in one SQLite file (DESIGN section 6).

It holds the pairings (occurrence identity, activity id, locations, per-field hashes of what each
side last showed, settled state), the calendar resources as last fetched, cursors per collection,
conflicts, a journal of intents (written before every remote write, settled after it), failed and
quarantined items, and runs. sqlite-utils ``Migrations`` evolve the schema; WAL lets ``status``
and ``conflicts`` read while a sync writes.

One sync process at a time holds :meth:`StateStore.lock` (an OS file lock, released even when
the holder is killed); a second is refused with a message naming the holder.

SQLite's own errors and the OS's never leave this module raw: opening, migrating and locking fail
with :class:`StateError`, any read or write after that with :class:`StateFailed`, each naming the
file and saying what to do. A writer waits up to the busy timeout for another (``conflicts
resolve`` beside a sync) instead of failing at once.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import socket
import sqlite3
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from syncd.errors import StateError, StateFailed
from syncd.model import Cursor, Location, OccurrenceId

migrations = Migrations("syncd")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("pairings").create(
        {
            "uid": str,
            "slot": str,
            "activity_id": str,
            "activity_type_id": str,
            "original_due": str,
            "due": str,
            "created_by_syncd": int,
            "lead": str,
            "locations": str,
            "calendar_seen": str,
            "kizen_seen": str,
            "hands_off": str,
            "settled": str,
            "settled_reason": str,
            "logged_activity_id": str,
            "written_back": int,
            "changes": int,
            "changed_at": str,
        },
        pk=("uid", "slot"),
        not_null={"activity_id"},
    )
    db.table("pairings").create_index(["activity_id"], unique=True)
    db.table("resources").create(
        {"source": str, "collection": str, "href": str, "etag": str, "ical": str}, pk=("source", "collection", "href")
    )
    db.table("cursors").create(
        {"source": str, "collection": str, "cursor": str, "zone": str}, pk=("source", "collection")
    )
    db.table("lookups").create({"kind": str, "key": str, "value": str, "checked_at": str}, pk=("kind", "key"))
    db.table("journal").create(
        {
            "id": int,
            "kind": str,
            "uid": str,
            "slot": str,
            "activity_id": str,
            "payload": str,
            "status": str,
            "outcome": str,
            "created_at": str,
            "settled_at": str,
        },
        pk="id",
    )
    db.table("journal").create_index(["status"])
    db.table("conflicts").create(
        {
            "id": int,
            "uid": str,
            "slot": str,
            "activity_id": str,
            "field": str,
            "calendar_value": str,
            "kizen_value": str,
            "policy": str,
            "status": str,
            "keep": str,
            "created_at": str,
            "resolved_at": str,
        },
        pk="id",
    )
    db.table("failures").create(
        {"source": str, "uid": str, "slot": str, "kind": str, "reason": str, "first_seen": str, "last_seen": str},
        pk=("source", "uid", "slot"),
    )
    db.table("runs").create(
        {"id": int, "source": str, "started_at": str, "finished_at": str, "status": str, "counts": str, "errors": str},
        pk="id",
    )


@migrations()
def m002_cursor_times(db: sqlite_utils.Database) -> None:
    db.table("cursors").add_column("updated_at", str)


@migrations()
def m003_rails_and_rebuilds(db: sqlite_utils.Database) -> None:
    """A safety rail that stopped a source holds until someone decides (``rails``); a source is
    ``rebuilt`` once adoption has read every activity its owner has in the window."""
    db.table("rails").create({"source": str, "reason": str, "since": str}, pk="source")
    db.table("rebuilds").create({"source": str, "completed_at": str}, pk="source")


@migrations()
def m004_components(db: sqlite_utils.Database) -> None:
    """How the last run found a component that is not a source (Kizen), for ``syncd status``."""
    db.table("components").create(
        {"name": str, "last_success": str, "last_error": str, "failed_at": str, "checked_at": str}, pk="name"
    )


@migrations()
def m005_discoveries(db: sqlite_utils.Database) -> None:
    """Each source's collections as last found, and the settings they were found under."""
    db.table("discoveries").create(
        {"source": str, "settings": str, "collections": str, "import_collection": str, "discovered_at": str},
        pk="source",
    )


Settled = Literal["logged", "deleted", "gone", "expired"]


@dataclass(frozen=True)
class Pairing:
    """An occurrence paired with its Kizen activity, and what each side last showed.

    ``calendar_seen`` and ``kizen_seen`` map a field (due, note, assignee, contacts,
    notifications) to the value each side last had, as syncd synced it: a side changed a field
    when its value differs from what it last showed. ``hands_off`` names the fields someone
    edited in Kizen, which syncd leaves alone from then on.
    """

    id: OccurrenceId
    activity_id: str
    activity_type_id: str
    original_due: datetime
    due: datetime
    created_by_syncd: bool = True
    lead: Location | None = None
    locations: tuple[Location, ...] = ()
    calendar_seen: dict[str, Any] = field(default_factory=dict)
    kizen_seen: dict[str, Any] = field(default_factory=dict)
    hands_off: tuple[str, ...] = ()
    settled: Settled | None = None
    settled_reason: str = ""
    logged_activity_id: str | None = None
    written_back: bool = False
    changes: int = 0
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Discovery:
    """A source's collections (URL -> zone) and import collection's URL, found under ``settings``."""

    settings: str  # the config that decides them, as JSON
    collections: dict[str, str | None]
    import_collection: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    id: int
    kind: str
    id_: OccurrenceId
    activity_id: str | None
    payload: dict[str, Any]
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Conflict:
    id: int
    occurrence: OccurrenceId
    activity_id: str
    field: str
    calendar_value: str
    kizen_value: str
    policy: str
    status: Literal["open", "resolved", "applied"]
    keep: str | None
    created_at: datetime


@dataclass(frozen=True)
class Failure:
    source: str
    uid: str
    slot: str
    kind: Literal["failed", "quarantined"]
    reason: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class ComponentStatus:
    """Kizen as the last run found it: when it was last reached, and the error if the last run failed."""

    last_success: datetime | None
    last_error: str | None  # None when the last run reached it
    failed_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _location(value: dict[str, str] | None) -> Location | None:
    return Location(**value) if value else None


BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's write to finish

T = TypeVar("T")

# SQLite's own errors (locked, full, read-only, not a database, I/O) and the OS's; a constraint
# violation or a misuse of the API (IntegrityError, ProgrammingError) is a bug and stays itself.
_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def _advice(error: BaseException, timeout: float) -> str:
    """What went wrong with the state file, and what to do about it, in a few words."""
    text = (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return (
            f"{text}: another process kept it busy past the {timeout:g} s busy timeout; "
            "nothing was half-written, try again (or stop the other process)"
        )
    code = getattr(error, "errno", None)
    if "full" in lowered or code == errno.ENOSPC:
        return f"{text}: free space on its file system; nothing was half-written, the next run catches up"
    if "read-only file system" in lowered or code == errno.EROFS:
        return (
            f"{text}: set [sync] state to a file on a writable file system "
            "(under systemd's ProtectSystem, one in the unit's ReadWritePaths)"
        )
    if code in (errno.ENOTDIR, errno.EEXIST):  # EEXIST: mkdir of a folder where a file is
        folder = getattr(error, "filename", None) or "its folder"
        return f"cannot make its folder {folder}: a file is in the way; set [sync] state to another path"
    if "readonly" in lowered or "permission" in lowered or "unable to open" in lowered or code == errno.EACCES:
        return (
            f"{text}: this user cannot write it or its folder; fix the permissions, "
            "or set [sync] state to a writable file"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return f"{text}: it is not a syncd state store, or it is damaged; point [sync] state elsewhere"
    return text


def _failure(kind: type[StateError], path: Path | None, error: BaseException, timeout: float) -> StateError:
    where = str(path.absolute()) if path is not None else ":memory:"
    return kind(f"state store {where}: {_advice(error, timeout)}")


def _mapped(method: Callable[..., T]) -> Callable[..., T]:
    """A store method whose SQLite and OS errors become :class:`StateFailed` naming the file."""

    @functools.wraps(method)
    def mapped(self: StateStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except _BUGS:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise _failure(StateFailed, self.path, exc, self.busy_timeout) from exc

    return mapped


def _maps_errors(cls: type[T]) -> type[T]:
    """Maps the errors of every public method of the store, a method added later included."""
    for name, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and not name.startswith("_") and name not in ("atomic", "lock"):
            setattr(cls, name, _mapped(value))
    return cls


@_maps_errors
class StateStore:
    """The state of one business, in one SQLite file (``:memory:`` for tests).

    Args:
        path: the SQLite file (its folder is made if need be), or ``":memory:"``.
        busy_timeout: seconds a write waits for another process's write transaction to end
            before it fails with :class:`StateFailed`.

    Raises:
        StateError: the file cannot be made, opened or migrated (its folder is read-only, it is
            not a database, another process kept it locked past the busy timeout).
    """

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT, *, read_only: bool = False) -> None:
        """Opens (creating and migrating) the store; ``read_only`` opens an existing file as it is."""
        self.path = Path(path) if str(path) != ":memory:" else None
        self.busy_timeout = busy_timeout
        if read_only:
            try:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=busy_timeout)
                self.db = sqlite_utils.Database(conn)
            except sqlite3.Error as exc:
                raise _failure(StateError, self.path, exc, busy_timeout) from exc
            return
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # the busy timeout set at connect time covers the first statements too (WAL, migrations)
            conn = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=busy_timeout)
            self.db = sqlite_utils.Database(conn)
            # sqlite-utils finds out whether SQLite has ON CONFLICT upserts by a trial write at the
            # first upsert, and remembers "no" when that write fails (locked, full): every later
            # upsert of a new row would then be an INSERT OR IGNORE that NOT NULL columns make a
            # silent no-op. Python's SQLite has had them since 3.24; say so before any write.
            setattr(self.db, "_supports_on_conflict", sqlite3.sqlite_version_info >= (3, 24))  # noqa: B010
        except (sqlite3.Error, OSError) as exc:
            raise _failure(StateError, self.path, exc, busy_timeout) from exc
        try:
            if self.path is not None:
                self.db.enable_wal()
            if migrations.pending(self.db):
                with self.atomic():  # two processes opening a new file: the second waits, then finds it done
                    migrations.apply(self.db)
        except StateError as exc:
            self.db.close()
            raise StateError(str(exc)) from exc.__cause__
        except _BUGS:
            self.db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            self.db.close()
            raise _failure(StateError, self.path, exc, busy_timeout) from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: an action's remote effect is recorded with all its rows or none.

        It begins IMMEDIATE, taking the write lock first and waiting up to the busy timeout for
        it. A deferred BEGIN (sqlite-utils' ``atomic``) reads before it writes, and SQLite answers
        a read transaction's wish to write while another process writes with "database is
        locked" at once, whatever the timeout. Nested, it is a savepoint of the outer one.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self._errors(), self.db.atomic():
                yield
            return
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                with self._errors():
                    conn.execute("ROLLBACK")
            raise
        try:
            with self._errors():
                conn.execute("COMMIT")
        finally:
            if conn.in_transaction:  # COMMIT failed (a full disk): nothing of it stays
                conn.execute("ROLLBACK")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _BUGS:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise _failure(StateFailed, self.path, exc, self.busy_timeout) from exc

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Inserts a row into a table keyed by an integer id; returns the id."""
        key = self.db.table(table).insert(row).last_pk
        assert isinstance(key, int)
        return key

    # --- the lock -----------------------------------------------------------------------------

    @contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Holds the sync lock for the duration; a second holder is refused, naming the first.

        Raises:
            StateError: another sync holds it, or its file (``<state>.lock``) cannot be written.
        """
        if self.path is None:
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = open(lock_path, "a+")  # noqa: SIM115 (held open for as long as the lock)
        except OSError as exc:
            raise _failure(StateError, lock_path, exc, self.busy_timeout) from exc
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StateError(f"another sync is running ({holder}); wait for it, or stop it first") from None
            except OSError as exc:  # a file system without locks (some network mounts)
                raise _failure(StateError, lock_path, exc, self.busy_timeout) from exc
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(
                    f"pid {os.getpid()} on {socket.gethostname()}: syncd {command}, "
                    f"since {_now():%Y-%m-%d %H:%M:%S} UTC"
                )
                handle.flush()
            except OSError as exc:
                raise _failure(StateError, lock_path, exc, self.busy_timeout) from exc
            yield
        finally:
            handle.close()

    # --- cursors and resources ------------------------------------------------------------------

    def cursor(self, source: str, collection: str) -> Cursor:
        rows = list(self.db.table("cursors").rows_where("source = ? and collection = ?", [source, collection]))
        if not rows:
            return Cursor()
        return Cursor(**json.loads(rows[0]["cursor"]))

    def save_cursor(self, source: str, collection: str, cursor: Cursor, zone: str | None = None) -> None:
        data = asdict(cursor)
        data["digests"] = dict(cursor.digests)
        self.db.table("cursors").upsert(
            {
                "source": source,
                "collection": collection,
                "cursor": json.dumps(data),
                "zone": zone,
                "updated_at": _iso(_now()),
            },
            pk=("source", "collection"),
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
        self.db.table("discoveries").upsert({"source": source, **row, "discovered_at": _iso(_now())}, pk="source")

    def forget_collection(self, source: str, collection: str) -> None:
        """Drops a collection's cursor and stored copies (its pairings stay as they are)."""
        with self.db.atomic():
            self.db.execute("DELETE FROM cursors WHERE source = ? AND collection = ?", [source, collection])
            self.db.execute("DELETE FROM resources WHERE source = ? AND collection = ?", [source, collection])

    def cursor_times(self, source: str) -> dict[str, datetime | None]:
        """When each collection of a source was last read (its cursor saved)."""
        rows = self.db.table("cursors").rows_where("source = ?", [source])
        return {row["collection"]: _when(row["updated_at"]) for row in rows}

    def lookup(self, kind: str, key: str) -> str | None:
        """A remembered Kizen look-up (``""`` means "known not to exist"), or None if never made."""
        rows = list(self.db.table("lookups").rows_where("kind = ? AND key = ?", [kind, key]))
        return rows[0]["value"] if rows else None

    def remember(self, kind: str, key: str, value: str) -> None:
        self.db.table("lookups").upsert(
            {"kind": kind, "key": key, "value": value, "checked_at": _iso(_now())}, pk=("kind", "key")
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
        self.db.table("resources").upsert(
            {
                "source": location.source,
                "collection": location.collection,
                "href": location.href,
                "etag": etag,
                "ical": ical,
            },
            pk=("source", "collection", "href"),
        )

    def delete_resource(self, location: Location) -> None:
        self.db.execute(
            "DELETE FROM resources WHERE source = ? AND collection = ? AND href = ?",
            [location.source, location.collection, location.href],
        )

    # --- pairings -------------------------------------------------------------------------------

    def pairings(self, *, open_only: bool = False) -> list[Pairing]:
        where = "settled IS NULL" if open_only else None
        return [self._pairing(row) for row in self.db.table("pairings").rows_where(where)]

    def pairing(self, occurrence: OccurrenceId) -> Pairing | None:
        rows = list(self.db.table("pairings").rows_where("uid = ? AND slot = ?", [occurrence.uid, occurrence.slot]))
        return self._pairing(rows[0]) if rows else None

    def pairing_of(self, activity_id: str) -> Pairing | None:
        rows = list(self.db.table("pairings").rows_where("activity_id = ?", [activity_id]))
        return self._pairing(rows[0]) if rows else None

    def save_pairing(self, pairing: Pairing) -> None:
        self.db.table("pairings").upsert(
            {
                "uid": pairing.id.uid,
                "slot": pairing.id.slot,
                "activity_id": pairing.activity_id,
                "activity_type_id": pairing.activity_type_id,
                "original_due": _iso(pairing.original_due),
                "due": _iso(pairing.due),
                "created_by_syncd": int(pairing.created_by_syncd),
                "lead": json.dumps(asdict(pairing.lead)) if pairing.lead else None,
                "locations": json.dumps([asdict(loc) for loc in pairing.locations]),
                "calendar_seen": json.dumps(pairing.calendar_seen, sort_keys=True),
                "kizen_seen": json.dumps(pairing.kizen_seen, sort_keys=True),
                "hands_off": json.dumps(list(pairing.hands_off)),
                "settled": pairing.settled,
                "settled_reason": pairing.settled_reason,
                "logged_activity_id": pairing.logged_activity_id,
                "written_back": int(pairing.written_back),
                "changes": pairing.changes,
                "changed_at": _iso(pairing.changed_at),
            },
            pk=("uid", "slot"),
        )

    def rekey(self, old: OccurrenceId, pairing: Pairing) -> None:
        """Moves a pairing to another identity (a series whose slots moved), in one transaction."""
        with self.atomic():
            self.db.execute("DELETE FROM pairings WHERE uid = ? AND slot = ?", [old.uid, old.slot])
            self.save_pairing(pairing)

    def settle(self, pairing: Pairing, settled: Settled, reason: str) -> Pairing:
        done = replace(pairing, settled=settled, settled_reason=reason)
        self.save_pairing(done)
        return done

    @staticmethod
    def _pairing(row: dict[str, Any]) -> Pairing:
        return Pairing(
            id=OccurrenceId(row["uid"], row["slot"]),
            activity_id=row["activity_id"],
            activity_type_id=row["activity_type_id"],
            original_due=datetime.fromisoformat(row["original_due"]),
            due=datetime.fromisoformat(row["due"]),
            created_by_syncd=bool(row["created_by_syncd"]),
            lead=_location(json.loads(row["lead"])) if row["lead"] else None,
            locations=tuple(Location(**loc) for loc in json.loads(row["locations"] or "[]")),
            calendar_seen=json.loads(row["calendar_seen"] or "{}"),
            kizen_seen=json.loads(row["kizen_seen"] or "{}"),
            hands_off=tuple(json.loads(row["hands_off"] or "[]")),
            settled=row["settled"],
            settled_reason=row["settled_reason"] or "",
            logged_activity_id=row["logged_activity_id"],
            written_back=bool(row["written_back"]),
            changes=row["changes"] or 0,
            changed_at=_when(row["changed_at"]),
        )

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
            "created_at": _iso(_now()),
        }
        return self._insert("journal", row)

    def settle_intent(
        self, intent: int, status: Literal["done", "failed", "abandoned"], outcome: dict[str, Any]
    ) -> None:
        self.db.table("journal").update(
            intent, {"status": status, "outcome": json.dumps(outcome), "settled_at": _iso(_now())}
        )

    def pending_intents(self) -> list[JournalEntry]:
        return [
            JournalEntry(
                id=row["id"],
                kind=row["kind"],
                id_=OccurrenceId(row["uid"], row["slot"]),
                activity_id=row["activity_id"],
                payload=json.loads(row["payload"]),
                status=row["status"],
                created_at=datetime.fromisoformat(row["created_at"]),
            )
            for row in self.db.table("journal").rows_where("status = 'pending'", order_by="id")
        ]

    # --- rebuilding and safety rails -----------------------------------------------------------

    def rebuilt(self) -> set[str]:
        """The sources whose activities made before this state store have all been looked for."""
        return {row["source"] for row in self.db.table("rebuilds").rows}

    def mark_rebuilt(self, sources: set[str]) -> None:
        now = _iso(_now())
        self.db.table("rebuilds").upsert_all(
            [{"source": name, "completed_at": now} for name in sorted(sources)], pk="source"
        )

    def rails(self) -> dict[str, str]:
        """Source -> why a safety rail stopped its deletions (held until cleared)."""
        return {row["source"]: row["reason"] for row in self.db.table("rails").rows}

    def stop(self, source: str, reason: str) -> None:
        if source not in self.rails():
            self.db.table("rails").insert({"source": source, "reason": reason, "since": _iso(_now())})

    def clear_rail(self, source: str) -> None:
        self.db.execute("DELETE FROM rails WHERE source = ?", [source])

    # --- conflicts ------------------------------------------------------------------------------

    def record_conflict(
        self, pairing: Pairing, field_name: str, calendar_value: str, kizen_value: str, policy: str
    ) -> int:
        status = "open" if policy == "manual" else "applied"
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
            "keep": None if policy == "manual" else policy,
            "created_at": _iso(_now()),
        }
        return self._insert("conflicts", row)

    def conflicts(self, *, open_only: bool = False) -> list[Conflict]:
        where = "status != 'applied' OR keep IS NULL" if open_only else None
        return [
            Conflict(
                id=row["id"],
                occurrence=OccurrenceId(row["uid"], row["slot"]),
                activity_id=row["activity_id"],
                field=row["field"],
                calendar_value=row["calendar_value"],
                kizen_value=row["kizen_value"],
                policy=row["policy"],
                status=row["status"],
                keep=row["keep"],
                created_at=datetime.fromisoformat(row["created_at"]),
            )
            for row in self.db.table("conflicts").rows_where(where, order_by="id")
        ]

    def resolve_conflict(self, conflict_id: int, keep: Literal["calendar", "crm"]) -> None:
        """Records a decision for the next sync to apply (safe while a sync runs: WAL)."""
        rows = list(self.db.table("conflicts").rows_where("id = ?", [conflict_id]))
        if not rows:
            raise StateError(f"no conflict {conflict_id}")
        if rows[0]["status"] != "open":
            raise StateError(f"conflict {conflict_id} is already settled ({rows[0]['status']}, kept {rows[0]['keep']})")
        self.db.table("conflicts").update(
            conflict_id, {"status": "resolved", "keep": keep, "resolved_at": _iso(_now())}
        )

    def mark_conflict_applied(self, conflict_id: int) -> None:
        self.db.table("conflicts").update(conflict_id, {"status": "applied"})

    # --- failures and runs ----------------------------------------------------------------------

    def record_failure(
        self, source: str, occurrence: OccurrenceId, kind: Literal["failed", "quarantined"], reason: str
    ) -> None:
        now = _iso(_now())
        key = [source, occurrence.uid, occurrence.slot]
        existing = list(self.db.table("failures").rows_where("source = ? AND uid = ? AND slot = ?", key))
        first = existing[0]["first_seen"] if existing else now
        self.db.table("failures").upsert(
            {
                "source": source,
                "uid": occurrence.uid,
                "slot": occurrence.slot,
                "kind": kind,
                "reason": reason,
                "first_seen": first,
                "last_seen": now,
            },
            pk=("source", "uid", "slot"),
        )

    def clear_failure(self, source: str, occurrence: OccurrenceId) -> None:
        self.db.execute(
            "DELETE FROM failures WHERE source = ? AND uid = ? AND slot = ?", [source, occurrence.uid, occurrence.slot]
        )

    def failures(self, source: str | None = None) -> list[Failure]:
        rows = self.db.table("failures").rows_where(
            "source = ?" if source else None, [source] if source else [], order_by="uid"
        )
        return [
            Failure(
                source=row["source"],
                uid=row["uid"],
                slot=row["slot"],
                kind=row["kind"],
                reason=row["reason"],
                first_seen=datetime.fromisoformat(row["first_seen"]),
                last_seen=datetime.fromisoformat(row["last_seen"]),
            )
            for row in rows
        ]

    def record_component(self, name: str, error: str | None) -> None:
        """Records how this run found a component (``kizen``): reached (``error`` None) or not."""
        now = _iso(_now())
        row: dict[str, Any] = {"name": name, "checked_at": now, "last_error": error}
        if error is None:
            row["last_success"] = now
        else:
            row["failed_at"] = now
        self.db.table("components").upsert(row, pk="name")

    def component(self, name: str) -> ComponentStatus | None:
        """How the last run found a component, or None if no run has recorded it yet."""
        rows = list(self.db.table("components").rows_where("name = ?", [name]))
        if not rows:
            return None
        row = rows[0]
        return ComponentStatus(_when(row["last_success"]), row["last_error"], _when(row["failed_at"]))

    def start_run(self, source: str) -> int:
        return self._insert("runs", {"source": source, "started_at": _iso(_now()), "status": "running"})

    def finish_run(self, run: int, status: str, counts: dict[str, int], errors: list[str]) -> None:
        self.db.table("runs").update(
            run,
            {"finished_at": _iso(_now()), "status": status, "counts": json.dumps(counts), "errors": json.dumps(errors)},
        )

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The latest run of each source (``*`` for the Kizen poll)."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.db.table("runs").rows_where(order_by="id"):
            latest[row["source"]] = {
                **row,
                "counts": json.loads(row["counts"] or "{}"),
                "errors": json.loads(row["errors"] or "[]"),
            }
        return latest

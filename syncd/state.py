"""The state store: what syncd knows between runs, in one SQLite file (DESIGN section 6).

It holds the pairings (occurrence identity, activity id, locations, per-field hashes of what each
side last showed, settled state), the calendar resources as last fetched, cursors per collection,
conflicts, a journal of intents (written before every remote write, settled after it), failed and
quarantined items, and runs. sqlite-utils ``Migrations`` evolve the schema; WAL lets ``status``
and ``conflicts`` read while a sync writes.

One sync process at a time holds :meth:`StateStore.lock` (an OS file lock, released even when
the holder is killed); a second is refused with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils
from sqlite_utils.migrations import Migrations

from syncd.errors import StateError
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
def m003_discoveries(db: sqlite_utils.Database) -> None:
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


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _location(value: dict[str, str] | None) -> Location | None:
    return Location(**value) if value else None


class StateStore:
    """The state of one business, in one SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """Opens (creating and migrating) the store; ``read_only`` opens an existing file as it is."""
        self.path = Path(path) if str(path) != ":memory:" else None
        if read_only:
            try:
                self.db = sqlite_utils.Database(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True))
            except sqlite3.DatabaseError as exc:
                raise StateError(f"state store {path}: {exc}") from exc
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite_utils.Database(str(path) if self.path else None, memory=self.path is None)
            if self.path is not None:
                self.db.enable_wal()
            self.db.execute("PRAGMA busy_timeout = 10000")
            migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state store {path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: an action's remote effect is recorded with all its rows or none."""
        with self.db.atomic():
            yield

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Inserts a row into a table keyed by an integer id; returns the id."""
        key = self.db.table(table).insert(row).last_pk
        assert isinstance(key, int)
        return key

    # --- the lock -----------------------------------------------------------------------------

    @contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Holds the sync lock for the duration; a second holder is refused, naming the first."""
        if self.path is None:
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 (held open for as long as the lock)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StateError(f"another sync is running ({holder}); wait for it, or stop it first") from None
            handle.seek(0)
            handle.truncate()
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()}: syncd {command}, since {_now():%Y-%m-%d %H:%M:%S} UTC"
            )
            handle.flush()
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
        with self.db.atomic():
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

"""The state store on PostgreSQL: the same state as :class:`syncd.state.store.StateStore`, in a
database that several machines can reach (``[sync] state = "postgresql://..."``).

It keeps SQLite's tables, columns and values (:mod:`syncd.state.pg_migrations`), so both stores
answer every method of :class:`syncd.state.protocol.Store` alike and ``syncd state migrate``
copies one into the other row for row. Connections come from a small psycopg pool, and the store
may be used from several threads: :meth:`PostgresStore.atomic` holds one connection (one
transaction) for its thread until it ends; outside it each statement commits on its own, as in
SQLite.

The sync lock is a session advisory lock on its own connection: the server drops it when its
holder's connection ends, killed or not, and a second sync is refused with the holder's pid, host
and command (its ``application_name``). A read-only open (``status``) sets every transaction read
only on the server; if the database lacks migrations, it applies them inside one transaction that
is rolled back at :meth:`PostgresStore.close`, like SQLite's migrated copy in memory.

psycopg's errors never leave this module raw (:mod:`syncd.state.pg_faults`): opening, migrating
and locking fail with :class:`StateError`, a read or write after that with :class:`StateFailed`,
each naming the database without its password.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from syncd.errors import StateError
from syncd.model import Cursor, Location, OccurrenceId, Policy
from syncd.state import pg_migrations, pruning, statements
from syncd.state.pg_faults import failure, mapping, maps_errors, shown
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
    pairing_row,
    stamp_now,
    successes_of,
)
from syncd.state.store import BUSY_TIMEOUT, KEEP_DAYS, KEEP_RUNS, StateStore

LOCK_KEY = 0x53796E63  # "Sync": the sync lock's advisory key, one per database
TEAM_KEY = 0x5465616D  # "Team": the first half of a team's advisory key (the second: its name's hash)
POOL_SIZE = 4  # connections: the sync's and the feeds' and status page's readers
# the pruning query of SQLite, in PostgreSQL's words: one source of truth for what may go
_OLD_SETTLED = re.sub(r"json_extract\(p\.lead, '\$\.(\w+)'\)", r"(p.lead::jsonb ->> '\1')", pruning._OLD_SETTLED)
_OLD_SETTLED = _OLD_SETTLED.replace(":cutoff", "%(cutoff)s")
# PostgreSQL reads it in one pass over the pairings (its first term is no index's): some 50 ms
# at 100,000 pairings, against decoding every one of them in Python as before
_PAIRINGS_FOR = statements.PAIRINGS_FOR.format(
    sources="= ANY(%(sources)s)", uids="= ANY(%(uids)s)", unled="%(unled)s", unindexed=""
)

Connection = psycopg.Connection[dict[str, Any]]

_HELD = (
    "SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
)
_HOLDER = _HELD + "AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 LIMIT 1"  # a one-key lock
_TEAM_HOLDER = _HELD + "AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 LIMIT 1"  # a two-key lock


def advisory_key(name: str) -> int:
    """A name as an advisory lock's key (a team's, as the second half of its key): a stable 31-bit
    hash. Two teams that happen to share one cannot run at the same moment (the second cycle is
    refused and runs at a later tick); one team never runs twice at once."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


@maps_errors
class PostgresStore:
    """The state of one business in a PostgreSQL database.

    Args:
        url: a libpq URL (``postgresql://user@host:5432/syncd``); a password may also come from
            PGPASSWORD or ~/.pgpass, as for psql.
        busy_timeout: seconds a statement waits for a row or table lock, and for a free
            connection, before it fails with :class:`StateFailed`; also the connect timeout.
        read_only: never writes (``status``, ``conflicts list``, ``check``).

    Raises:
        StateError: the URL is not one, the server cannot be reached, refuses the user, has no
            such database, or the database was upgraded by a newer syncd or fails to migrate.
    """

    def __init__(self, url: str, busy_timeout: float = BUSY_TIMEOUT, *, read_only: bool = False) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self._local = threading.local()
        self._pinned: Connection | None = None
        self.pool: ConnectionPool[Connection] | None = None
        try:
            settings = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StateError(f"state store {shown(url)}: not a PostgreSQL URL ({exc})") from None
        settings.setdefault("connect_timeout", max(1, round(busy_timeout)))
        self._settings: dict[str, Any] = {**settings, "autocommit": True, "row_factory": dict_row}
        with mapping(url, StateError):
            conn = self._connect()
        try:
            with mapping(url, StateError):
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        if self._pinned is None:
            conn.close()
            with mapping(url, StateError):
                self.pool = ConnectionPool(
                    kwargs=self._settings,
                    min_size=1,
                    max_size=POOL_SIZE,
                    configure=self._configure,
                    timeout=busy_timeout,
                    open=True,
                    name="syncd-state",
                )

    @property
    def where(self) -> str:
        return shown(self.url)

    def _connect(self, **extra: Any) -> Connection:
        conn: Connection = psycopg.connect(**{**self._settings, **extra})
        self._configure(conn)
        return conn

    def _configure(self, conn: Connection) -> None:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(self.busy_timeout * 1000)}ms"])
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")

    def _migrate(self, conn: Connection) -> None:
        """Refuses a database from a newer syncd; applies the pending migrations, each in its own
        transaction. Read-only, they are applied in one transaction kept open until :meth:`close`,
        which rolls it back: nothing is ever written."""
        pg_migrations.refuse_newer(conn, self.where)
        if not pg_migrations.pending(conn):
            return
        if self.read_only:
            conn.execute("SET default_transaction_read_only = off")
            conn.autocommit = False
            conn.execute("SELECT 1")  # the transaction begun: each migration is a savepoint of it
            pg_migrations.upgrade(conn, self.where, each=False)
            self._pinned = conn
            return
        pg_migrations.upgrade(conn, self.where)

    def close(self) -> None:
        if self._pinned is not None:
            self._pinned.close()  # its transaction (the migrations of a read-only open) is rolled back
            self._pinned = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        held: Connection | None = getattr(self._local, "conn", None) or self._pinned
        if held is not None:
            yield held
            return
        if self.pool is None:
            raise StateError(f"state store {self.where}: used after it was closed")
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:  # noqa: ARG002
        """One transaction on one connection for this thread; nested, a savepoint of the outer one.

        Every commit is durable here (PostgreSQL's ``synchronous_commit``), so ``durable`` asks nothing more."""
        held = getattr(self._local, "conn", None)
        with self._conn() as conn:
            self._local.conn = conn
            try:
                with mapping(self.url), conn.transaction():
                    yield
            finally:
                self._local.conn = held

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._conn() as conn:
            return conn.execute(sql.encode(), params).rowcount

    def _upsert(self, table: str, row: dict[str, Any], key: Sequence[str]) -> None:
        """Inserts a row, or updates the columns given of the one with its key (sqlite-utils' upsert)."""
        self._run(statements.upsert(table, row, key, "%s"), list(row.values()))

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Inserts a row into a table keyed by an integer id; returns the id."""
        found = self._one(statements.insert(table, row, "%s") + " RETURNING id", list(row.values()))
        assert found is not None
        return int(found["id"])

    # --- the locks ----------------------------------------------------------------------------

    def lock(self, command: str) -> AbstractContextManager[None]:
        """Holds the sync lock for the duration; a second holder is refused, naming the first.

        Raises:
            StateError: another sync holds it (or a worker runs), or the server cannot be reached.
        """
        return self._advisory(command, "pg_try_advisory_lock(%s)", [LOCK_KEY], _HOLDER, [LOCK_KEY])

    def worker_lock(self, command: str) -> AbstractContextManager[None]:
        """Holds the sync lock shared, for as long as a worker runs: any number of workers hold it
        together, and a sync of the whole state (``syncd run``) is refused while one does (and
        a worker while such a sync runs).

        Raises:
            StateError: a sync of the whole state holds it, or the server cannot be reached.
        """
        return self._advisory(command, "pg_try_advisory_lock_shared(%s)", [LOCK_KEY], _HOLDER, [LOCK_KEY])

    def team_lock(self, team: str, command: str) -> AbstractContextManager[None]:
        """Holds one team's lock for one cycle of it: a second cycle of the team, from any worker
        on any machine, is refused naming the first; other teams' cycles run beside it.

        Raises:
            StateError: another cycle of the team holds it, or the server cannot be reached.
        """
        key = [TEAM_KEY, advisory_key(team)]
        return self._advisory(command, "pg_try_advisory_lock(%s, %s)", key, _TEAM_HOLDER, key)

    @contextmanager
    def _advisory(
        self, command: str, take: str, key: Sequence[int], holder_query: str, holder_key: Sequence[int]
    ) -> Iterator[None]:
        """A session advisory lock on a connection of its own, let go when it closes (or dies)."""
        label = f"pid {os.getpid()} on {socket.gethostname()}: syncd {command}"
        with mapping(self.url, StateError):
            conn = self._connect(application_name=label[:63])  # the server keeps 63 bytes of it
        try:
            with mapping(self.url, StateError):
                got = conn.execute(f"SELECT {take} AS got".encode(), key).fetchone()
                holder = None
                if not got or not got["got"]:
                    holder = conn.execute(holder_query.encode(), holder_key).fetchone()
            if holder is not None or not got or not got["got"]:
                name = (holder or {}).get("name") or "another process"
                what = "another sync is running" if len(key) == 1 else "a cycle of this team is running"
                raise StateError(f"{what} ({name}); wait for it, or stop it first")
            yield
        finally:
            conn.close()  # the server lets the lock go with its session

    # --- cursors and resources ------------------------------------------------------------------

    def cursor(self, source: str, collection: str) -> Cursor:
        row = self._one("SELECT cursor FROM cursors WHERE source = %s AND collection = %s", [source, collection])
        return Cursor(**json.loads(row["cursor"])) if row else Cursor()

    def save_cursor(self, source: str, collection: str, cursor: Cursor, zone: str | None = None) -> None:
        data = asdict(cursor)
        data["digests"] = dict(cursor.digests)
        row = {"source": source, "collection": collection, "cursor": json.dumps(data), "zone": zone}
        self._upsert("cursors", {**row, "updated_at": iso_text(stamp_now())}, ("source", "collection"))

    def collections(self, source: str) -> dict[str, str | None]:
        """The collections a source was read from before (URL -> its zone): no rediscovery needed."""
        rows = self._all("SELECT collection, zone FROM cursors WHERE source = %s ORDER BY collection", [source])
        return {row["collection"]: row["zone"] for row in rows}

    def discovery(self, source: str) -> Discovery | None:
        row = self._one("SELECT * FROM discoveries WHERE source = %s", [source])
        if row is None:
            return None
        return Discovery(row["settings"], json.loads(row["collections"]), row["import_collection"])

    def save_discovery(self, source: str, discovery: Discovery) -> None:
        row = {**asdict(discovery), "collections": json.dumps(discovery.collections, sort_keys=True)}
        self._upsert("discoveries", {"source": source, **row, "discovered_at": iso_text(stamp_now())}, ("source",))

    def forget_collection(self, source: str, collection: str) -> None:
        """Drops a collection's cursor and stored copies (its pairings stay as they are)."""
        with self.atomic():
            self._run("DELETE FROM cursors WHERE source = %s AND collection = %s", [source, collection])
            self._run("DELETE FROM resources WHERE source = %s AND collection = %s", [source, collection])
            self._run("DELETE FROM expansions WHERE source = %s AND collection = %s", [source, collection])

    def cursor_times(self, source: str) -> dict[str, datetime | None]:
        rows = self._all("SELECT collection, updated_at FROM cursors WHERE source = %s ORDER BY collection", [source])
        return {row["collection"]: instant(row["updated_at"]) for row in rows}

    def lookup(self, kind: str, key: str) -> str | None:
        row = self._one("SELECT value FROM lookups WHERE kind = %s AND key = %s", [kind, key])
        return row["value"] if row else None

    def remember(self, kind: str, key: str, value: str) -> None:
        self._upsert(
            "lookups", {"kind": kind, "key": key, "value": value, "checked_at": iso_text(stamp_now())}, ("kind", "key")
        )

    def forget(self, kind: str, key: str | None = None) -> None:
        if key is None:
            self._run("DELETE FROM lookups WHERE kind = %s", [kind])
        else:
            self._run("DELETE FROM lookups WHERE kind = %s AND key = %s", [kind, key])

    def resources(self, source: str, collection: str) -> dict[str, tuple[str | None, str]]:
        rows = self._all(
            "SELECT href, etag, ical FROM resources WHERE source = %s AND collection = %s", [source, collection]
        )
        return {row["href"]: (row["etag"], row["ical"]) for row in rows}

    def save_resource(self, location: Location, etag: str | None, ical: str) -> None:
        row = {"source": location.source, "collection": location.collection, "href": location.href}
        self._upsert("resources", {**row, "etag": etag, "ical": ical}, ("source", "collection", "href"))

    def delete_resource(self, location: Location) -> None:
        self._run(
            "DELETE FROM resources WHERE source = %s AND collection = %s AND href = %s",
            [location.source, location.collection, location.href],
        )

    def expansions(self, source: str, collection: str) -> dict[str, str]:
        where = "source = %s AND collection = %s"
        return {
            row["href"]: row["entry"]
            for row in self._all(f"SELECT href, entry FROM expansions WHERE {where}", [source, collection])
        }

    def save_expansions(self, source: str, collection: str, changed: Mapping[str, str], dropped: Iterable[str]) -> None:
        key = {"source": source, "collection": collection}
        with self.atomic():
            for href, entry in changed.items():
                self._upsert("expansions", {**key, "href": href, "entry": entry}, ("source", "collection", "href"))
            for href in dropped:
                self._run(
                    "DELETE FROM expansions WHERE source = %s AND collection = %s AND href = %s", [*key.values(), href]
                )

    # --- pairings -------------------------------------------------------------------------------

    def pairings(self, *, open_only: bool = False) -> list[Pairing]:
        return self._pairings("p.settled IS NULL" if open_only else "TRUE")

    def pairing(self, occurrence: OccurrenceId) -> Pairing | None:
        found = self._pairings("p.uid = %s AND p.slot = %s", [occurrence.uid, occurrence.slot])
        return found[0] if found else None

    def pairing_of(self, activity_id: str) -> Pairing | None:
        found = self._pairings("p.activity_id = %s", [activity_id])
        return found[0] if found else None

    def pairings_at(self, source: str, collection: str, *, open_only: bool = False) -> list[Pairing]:
        where = "(p.uid, p.slot) IN (SELECT uid, slot FROM pairing_locations WHERE source = %s AND collection = %s)"
        return self._pairings(where + (" AND p.settled IS NULL" if open_only else ""), [source, collection])

    def pairings_for(
        self, sources: Collection[str], uids: Collection[str] = (), *, unled: bool = False
    ) -> list[Pairing]:
        chosen = {"sources": sorted(sources), "uids": sorted(set(uids)), "unled": unled}
        return self._pairings(_PAIRINGS_FOR, chosen)

    def paired_activities(self, activity_ids: Collection[str]) -> set[str]:
        rows = self._all("SELECT activity_id FROM pairings WHERE activity_id = ANY(%s)", [sorted(set(activity_ids))])
        return {row["activity_id"] for row in rows}

    def save_pairing(self, pairing: Pairing) -> None:
        """Saves a pairing with its copies' locations (replacing the ones it had), in one transaction."""
        key = [pairing.id.uid, pairing.id.slot]
        with self.atomic():
            self._upsert("pairings", pairing_row(pairing), ("uid", "slot"))
            self._run("DELETE FROM pairing_locations WHERE uid = %s AND slot = %s", key)
            for position, location in enumerate(pairing.locations):
                self._run(
                    "INSERT INTO pairing_locations (uid, slot, position, source, collection, href) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [*key, position, location.source, location.collection, location.href],
                )

    def rekey(self, old: OccurrenceId, pairing: Pairing) -> None:
        with self.atomic():
            self._run("DELETE FROM pairings WHERE uid = %s AND slot = %s", [old.uid, old.slot])
            self._run("DELETE FROM pairing_locations WHERE uid = %s AND slot = %s", [old.uid, old.slot])
            self.save_pairing(pairing)

    def settle(self, pairing: Pairing, settled: Settled, reason: str) -> Pairing:
        done = replace(pairing, settled=settled, settled_reason=reason)
        self.save_pairing(done)
        return done

    def _pairings(self, where: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Pairing]:
        """The pairings ``where`` picks (on ``p``), with their locations, in the order they were
        made; one statement, so one snapshot of both tables."""
        rows = self._all(
            "SELECT p.*, COALESCE((SELECT json_agg(json_build_array(l.source, l.collection, l.href) "
            "ORDER BY l.position) FROM pairing_locations l WHERE l.uid = p.uid AND l.slot = p.slot), '[]') "
            f"AS copies FROM pairings p WHERE {where} ORDER BY p.seq",
            params,
        )
        return [StateStore._pairing(row, tuple(Location(*copy) for copy in row["copies"])) for row in rows]

    def prune(self, now: datetime, keep: timedelta, *, runs: int = KEEP_RUNS, days: int = KEEP_DAYS) -> pruning.Pruned:
        """What :meth:`StateStore.prune` forgets (:mod:`syncd.state.pruning`), in one transaction."""
        cutoff = now - keep
        gone = []
        with self.atomic():
            for row in self._all(_OLD_SETTLED, {"cutoff": cutoff.astimezone(UTC).isoformat()}):
                start = pruning.slot_start(row["slot"])
                if row["slot"] == "" or (start is not None and start < cutoff):
                    gone.append([row["uid"], row["slot"]])
            uids, slots = [uid for uid, _ in gone], [slot for _, slot in gone]
            for table in ("pairings", "pairing_locations", "conflicts"):
                self._run(
                    f"DELETE FROM {table} WHERE (uid, slot) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                    [uids, slots],
                )
            old = (now - timedelta(days=days)).astimezone(UTC).isoformat()
            runs_gone = 0
            for source in self._all("SELECT DISTINCT source FROM runs"):
                kept = self._one(
                    "SELECT id FROM runs WHERE source = %s ORDER BY id DESC LIMIT 1 OFFSET %s",
                    [source["source"], runs - 1],
                )
                if kept is not None:
                    runs_gone += self._run(
                        "DELETE FROM runs WHERE source = %s AND id < %s AND started_at < %s",
                        [source["source"], kept["id"], old],
                    )
            journal = self._run("DELETE FROM journal WHERE settled_at < %s AND status != 'pending'", [old])
        return pruning.Pruned(len(gone), runs_gone, journal)

    # --- the journal ----------------------------------------------------------------------------

    def intend(
        self, kind: str, occurrence: OccurrenceId, payload: dict[str, Any], activity_id: str | None = None
    ) -> int:
        row = {
            "kind": kind,
            "uid": occurrence.uid,
            "slot": occurrence.slot,
            "activity_id": activity_id,
            "payload": json.dumps(payload, sort_keys=True),
            "status": "pending",
            "created_at": iso_text(stamp_now()),
        }
        return self._insert("journal", row)

    def settle_intent(
        self, intent: int, status: Literal["done", "failed", "abandoned"], outcome: dict[str, Any]
    ) -> None:
        self._run(
            "UPDATE journal SET status = %s, outcome = %s, settled_at = %s WHERE id = %s",
            [status, json.dumps(outcome), iso_text(stamp_now()), intent],
        )

    def pending_intents(self) -> list[JournalEntry]:
        return [
            journal_entry_of(row) for row in self._all("SELECT * FROM journal WHERE status = 'pending' ORDER BY id")
        ]

    # --- rebuilding and safety rails -----------------------------------------------------------

    def rebuilt(self) -> set[str]:
        return {row["source"] for row in self._all("SELECT source FROM rebuilds")}

    def mark_rebuilt(self, sources: set[str]) -> None:
        now = iso_text(stamp_now())
        with self.atomic():
            for name in sorted(sources):
                self._upsert("rebuilds", {"source": name, "completed_at": now}, ("source",))

    def rails(self) -> dict[str, str]:
        return {row["source"]: row["reason"] for row in self._all("SELECT source, reason FROM rails ORDER BY since")}

    def stop(self, source: str, reason: str) -> None:
        """Holds a source; a rail already holding it keeps its first reason and time."""
        self._run(
            "INSERT INTO rails (source, reason, since) VALUES (%s, %s, %s) ON CONFLICT (source) DO NOTHING",
            [source, reason, iso_text(stamp_now())],
        )

    def clear_rail(self, source: str) -> None:
        self._run("DELETE FROM rails WHERE source = %s", [source])

    # --- conflicts ------------------------------------------------------------------------------

    def record_conflict(
        self, pairing: Pairing, field_name: str, calendar_value: str, kizen_value: str, policy: Policy
    ) -> int:
        status = "open" if policy == Policy.MANUAL else "applied"
        with self.atomic():
            existing = self._one(
                "SELECT id FROM conflicts WHERE uid = %s AND slot = %s AND field = %s AND status = 'open'",
                [pairing.id.uid, pairing.id.slot, field_name],
            )
            if existing and status == "open":
                return int(existing["id"])
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
        where = "WHERE status != 'applied' OR keep IS NULL" if open_only else ""
        return [conflict_of(row) for row in self._all(f"SELECT * FROM conflicts {where} ORDER BY id")]

    def resolve_conflict(self, conflict_id: int, keep: Policy) -> None:
        if keep == Policy.MANUAL:
            raise StateError(f"conflict {conflict_id}: keep the calendar or the crm value, not manual")
        with self.atomic():
            row = self._one("SELECT status, keep FROM conflicts WHERE id = %s FOR UPDATE", [conflict_id])
            if row is None:
                raise StateError(f"no conflict {conflict_id}")
            if row["status"] != "open":
                raise StateError(f"conflict {conflict_id} is already settled ({row['status']}, kept {row['keep']})")
            self._run(
                "UPDATE conflicts SET status = 'resolved', keep = %s, resolved_at = %s WHERE id = %s",
                [keep, iso_text(stamp_now()), conflict_id],
            )

    def mark_conflict_applied(self, conflict_id: int) -> None:
        self._run("UPDATE conflicts SET status = 'applied' WHERE id = %s", [conflict_id])

    # --- failures and runs ----------------------------------------------------------------------

    def record_failure(
        self, source: str, occurrence: OccurrenceId, kind: Literal["failed", "quarantined"], reason: str
    ) -> None:
        """Records a failed item; one failing again keeps when it was first seen."""
        now = iso_text(stamp_now())
        self._run(
            "INSERT INTO failures (source, uid, slot, kind, reason, first_seen, last_seen) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (source, uid, slot) DO UPDATE SET "
            "kind = EXCLUDED.kind, reason = EXCLUDED.reason, last_seen = EXCLUDED.last_seen",
            [source, occurrence.uid, occurrence.slot, kind, reason, now, now],
        )

    def clear_failure(self, source: str, occurrence: OccurrenceId) -> None:
        self._run(
            "DELETE FROM failures WHERE source = %s AND uid = %s AND slot = %s",
            [source, occurrence.uid, occurrence.slot],
        )

    def failures(self, source: str | None = None) -> list[Failure]:
        rows = self._all(
            "SELECT * FROM failures" + (" WHERE source = %s" if source else "") + " ORDER BY uid",
            [source] if source else [],
        )
        return [failure_of(row) for row in rows]

    def record_component(self, name: str, error: str | None) -> None:
        now = iso_text(stamp_now())
        row: dict[str, Any] = {"name": name, "checked_at": now, "last_error": error}
        if error is None:
            row["last_success"] = now
        else:
            row["failed_at"] = now
        self._upsert("components", row, ("name",))

    def component(self, name: str) -> ComponentStatus | None:
        row = self._one("SELECT * FROM components WHERE name = %s", [name])
        if row is None:
            return None
        return component_of(row)

    def save_feed(self, name: str, feed: RenderedFeed) -> None:
        self._upsert("feeds", feed_row(name, feed), ("name",))

    def feed(self, name: str) -> RenderedFeed | None:
        row = self._one("SELECT * FROM feeds WHERE name = %s", [name])
        return feed_of(row) if row else None

    def feed_etag(self, name: str) -> str | None:
        row = self._one("SELECT etag FROM feeds WHERE name = %s", [name])
        return str(row["etag"]) if row else None

    def last_successes(self) -> dict[str, datetime]:
        return successes_of(self._all(LAST_SUCCESSES))

    def start_run(self, source: str) -> int:
        return self._insert("runs", {"source": source, "started_at": iso_text(stamp_now()), "status": "running"})

    def finish_run(self, run: int, status: str, counts: dict[str, int], errors: list[str]) -> None:
        self._run(
            "UPDATE runs SET finished_at = %s, status = %s, counts = %s, errors = %s WHERE id = %s",
            [iso_text(stamp_now()), status, json.dumps(counts), json.dumps(errors), run],
        )

    def last_runs(self) -> dict[str, dict[str, Any]]:
        rows = self._all("SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY source) ORDER BY id")
        return {
            row["source"]: {
                **row,
                "counts": json.loads(row["counts"] or "{}"),
                "errors": json.loads(row["errors"] or "[]"),
            }
            for row in rows
        }

    # --- Kizen's holds, shared by every worker (syncd.kizen.limiter.HoldStore) -------------------

    def hold_kizen(self, business: str, seconds: float) -> None:
        """No request of ``business`` before ``seconds`` from now on the server's clock (a later
        hold stands). Written on a connection of its own, so a transaction of this thread (held
        open, or rolled back) neither delays nor loses it."""
        with self._own_conn() as conn:
            conn.execute(_HOLD, [business, seconds])

    def kizen_hold(self, business: str) -> float:
        """Seconds left of ``business``'s hold on the server's clock (zero or less: none)."""
        with self._own_conn() as conn:
            row = conn.execute(_HOLD_LEFT, [business]).fetchone()
        return float(row["left_s"]) if row and row["left_s"] is not None else 0.0  # none, or only a pace

    def kizen_slot(self, business: str, interval: float) -> float:
        """Takes ``business``'s next free moment on the server's clock: after its hold, and
        ``interval`` after the one taken before (one statement, so two workers never take one)."""
        with self._own_conn() as conn:
            row = conn.execute(_SLOT, {"business": business, "interval": interval}).fetchone()
        return float(row["left_s"]) if row else 0.0

    @contextmanager
    def _own_conn(self) -> Iterator[Connection]:
        """A pooled connection outside any transaction this thread holds."""
        if self.pool is None:
            raise StateError(f"state store {self.where}: used after it was closed (or opened read-only)")
        with self.pool.connection() as conn:
            yield conn


_UTC_TEXT = """to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""  # ISO, as SQLite's
_HOLD = (
    "INSERT INTO kizen_holds (business, held_until) VALUES (%s, "
    + _UTC_TEXT % "(now() + make_interval(secs => %s))"
    + ") ON CONFLICT (business) DO UPDATE SET held_until = GREATEST(kizen_holds.held_until, EXCLUDED.held_until)"
).encode()
_SLOT = (
    "INSERT INTO kizen_holds (business, next_slot) VALUES (%(business)s, "
    + _UTC_TEXT.replace("%s", "(now() + make_interval(secs => %(interval)s))")
    + ") ON CONFLICT (business) DO UPDATE SET next_slot = "
    + _UTC_TEXT.replace(
        "%s",
        "(GREATEST(now(), kizen_holds.held_until::timestamptz, kizen_holds.next_slot::timestamptz)"
        " + make_interval(secs => %(interval)s))",
    )
    + " RETURNING extract(epoch FROM next_slot::timestamptz - now()) - %(interval)s AS left_s"
).encode()
_HOLD_LEFT = (
    b"SELECT extract(epoch FROM held_until::timestamptz - now()) AS left_s FROM kizen_holds WHERE business = %s"
)


__all__ = ["PostgresStore", "failure"]

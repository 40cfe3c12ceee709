"""The state store's schema, as sqlite-utils migrations, and the rules for applying them.

Only a command that writes (``run``, ``run --once``, ``conflicts resolve``) applies pending
migrations, all of them in one transaction: a failing one leaves the file as it was, and the
error names it. A database that holds migrations this code does not know was upgraded by a newer
syncd; every command refuses it rather than guess at a schema it has never seen.
"""

from __future__ import annotations

import json

import sqlite_utils
from sqlite_utils.migrations import Migrations

from syncd.errors import StateError
from syncd.state.faults import advice

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


@migrations()
def m006_pairing_locations(db: sqlite_utils.Database) -> None:
    """Each pairing's calendar copies as rows, indexed by collection, instead of JSON in the
    pairing: reading a collection asks for its pairings instead of rebuilding an index from every
    pairing each cycle. Also indexes the other look-ups: open and old pairings (``settled, due``),
    a pairing's open conflict on a field, each source's latest runs, and old settled intents
    (the activity id, the journal's status and a failure's source were indexed from the start).
    """
    db.table("pairing_locations").create(
        {"uid": str, "slot": str, "position": int, "source": str, "collection": str, "href": str},
        pk=("uid", "slot", "position"),
        not_null={"source", "collection", "href"},
    )
    db.table("pairing_locations").create_index(["source", "collection"])
    rows = [
        {"uid": uid, "slot": slot, "position": position, **location}
        for uid, slot, text in db.execute("SELECT uid, slot, locations FROM pairings").fetchall()
        for position, location in enumerate(json.loads(text or "[]"))
    ]
    db.table("pairing_locations").insert_all(rows)
    db.execute("ALTER TABLE pairings DROP COLUMN locations")
    db.table("pairings").create_index(["settled", "due"])
    db.table("conflicts").create_index(["uid", "slot", "field", "status"])
    db.table("runs").create_index(["source", "id"])
    db.table("journal").create_index(["settled_at"])


@migrations()
def m007_removed_state(db: sqlite_utils.Database) -> None:
    """A pairing whose activity syncd deleted because its calendar item was gone is settled
    ``removed``; it was ``deleted`` (as for one deleted in Kizen), told apart only by its reason's
    text. Its reason is kept."""
    db.execute(
        "UPDATE pairings SET settled = 'removed' WHERE settled = 'deleted' AND settled_reason LIKE ?",
        ["gone from the calendar%"],
    )


@migrations()
def m008_expansions(db: sqlite_utils.Database) -> None:
    """Each stored calendar object's occurrences as last expanded (JSON), so an unchanged object
    is not parsed again (:mod:`syncd.calendar.remembered`)."""
    db.table("expansions").create(
        {"source": str, "collection": str, "href": str, "entry": str}, pk=("source", "collection", "href")
    )


@migrations()
def m009_kizen_holds(db: sqlite_utils.Database) -> None:
    """Kizen's holds shared by the workers of a PostgreSQL state (:mod:`syncd.kizen.limiter`):
    one process on SQLite keeps its own in memory, and this table stays empty."""
    db.table("kizen_holds").create({"business": str, "held_until": str, "next_slot": str}, pk="business")


@migrations()
def m010_feeds(db: sqlite_utils.Database) -> None:
    """Each served feed as last rendered (:class:`syncd.state.protocol.RenderedFeed`), so any
    process of the state serves the same bytes and ETag, a restart included."""
    db.table("feeds").create({"name": str, "body": bytes, "etag": str, "changed_at": str}, pk="name")


@migrations()
def m011_lead_source(db: sqlite_utils.Database) -> None:
    """The lead's source as a column, indexed with ``settled``: a team's cycle asks for the open
    pairings its sources lead (:meth:`~syncd.state.store.StateStore.pairings_for`) instead of
    loading every pairing of the business."""
    db.execute("ALTER TABLE pairings ADD COLUMN lead_source TEXT")
    db.execute("UPDATE pairings SET lead_source = json_extract(lead, '$.source') WHERE lead != ''")
    db.table("pairings").create_index(["lead_source", "settled"])


# every migration, in the order they apply: those pending on an empty database
KNOWN = tuple(m.name for m in migrations.pending(sqlite_utils.Database(memory=True)))


def applied(db: sqlite_utils.Database) -> list[str]:
    """The names of the migrations the database records as applied (read only)."""
    return [m.name for m in migrations.applied(db)]


def unknown(db: sqlite_utils.Database) -> list[str]:
    """Migrations the database holds that this code does not know: a newer syncd applied them."""
    return [name for name in applied(db) if name not in KNOWN]


def pending(db: sqlite_utils.Database) -> list[str]:
    """The migrations this code knows that the database lacks, in the order they apply."""
    done = set(applied(db))
    return [name for name in KNOWN if name not in done]


def refuse_newer(db: sqlite_utils.Database, where: str) -> None:
    """Raises StateError if a newer syncd upgraded the database: its schema is unknown here."""
    newer = unknown(db)
    if newer:
        raise StateError(
            f"state store {where}: a newer syncd upgraded it (its migration {', '.join(newer)} is "
            "unknown to this version); run that version, or restore a copy made before the upgrade"
        )


def upgrade(db: sqlite_utils.Database, where: str, timeout: float) -> None:
    """Applies every pending migration, in order, inside the caller's transaction.

    Raises:
        StateError: a migration failed; it names it (the caller's rollback undoes them all).
    """
    for name in pending(db):
        try:
            migrations.apply(db, stop_before=KNOWN[KNOWN.index(name) + 1 :])
        except Exception as exc:
            raise StateError(
                f"state store {where}: migration {name} failed ({advice(exc, timeout)}); "
                "no migration was applied, the file is as it was"
            ) from exc

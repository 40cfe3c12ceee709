"""The state store's schema over time: a store from the first schema upgrades with every row
readable, a failing migration leaves the file as it was, a newer store is refused, and a
read-only open never upgrades."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from syncd.errors import StateError, StateFailed
from syncd.model import Cursor, Location, OccurrenceId
from syncd.state import Settled, StateStore
from syncd.state import migrations as schema

WHEN = datetime(2026, 12, 1, 9, tzinfo=UTC)
ADA = {"source": "ada", "collection": "https://dav.example.com/ada/cal/", "href": "one.ics"}
GRACE = {"source": "grace", "collection": "feed.ics", "href": "one"}


def first_schema(path: Path) -> None:
    """A state file as the first syncd left it: only m001 applied, a row in every table."""
    db = sqlite_utils.Database(path)
    first = Migrations("syncd")
    first()(schema.m001_initial)
    first.apply(db)
    seen = json.dumps({"due": WHEN.isoformat()})
    common = {"activity_type_id": "t", "original_due": WHEN.isoformat(), "due": WHEN.isoformat()}
    db.table("pairings").insert_all(
        [
            {"uid": "one", "slot": "", "activity_id": "act-1", **common, "created_by_syncd": 1,
             "lead": json.dumps(ADA), "locations": json.dumps([ADA, GRACE]), "calendar_seen": seen,
             "kizen_seen": seen, "hands_off": json.dumps(["note"]), "settled": None, "changes": 2},
            {"uid": "two", "slot": "20261201T090000Z", "activity_id": "act-2", **common, "created_by_syncd": 0,
             "lead": None, "locations": json.dumps([GRACE]), "calendar_seen": "{}", "kizen_seen": "{}",
             "hands_off": "[]", "settled": "deleted", "settled_reason": "deleted in Kizen"},
            {"uid": "three", "slot": "", "activity_id": "act-3", **common, "locations": None},
        ]
    )  # fmt: skip
    db.table("resources").insert({**ADA, "etag": '"e1"', "ical": "BEGIN:VCALENDAR\nEND:VCALENDAR\n"})
    db.table("cursors").insert(
        {"source": "ada", "collection": ADA["collection"], "cursor": json.dumps({"sync_token": "t1"}), "zone": "UTC"}
    )
    db.table("lookups").insert({"kind": "contact", "key": "bo@example.com", "value": "c-1", "checked_at": "x"})
    db.table("journal").insert(
        {"kind": "log", "uid": "one", "slot": "", "activity_id": "act-1", "status": "pending",
         "payload": json.dumps({"activity_id": "act-1", "reason": "completed in the calendar"}),
         "created_at": WHEN.isoformat()}
    )  # fmt: skip
    db.table("conflicts").insert(
        {"uid": "one", "slot": "", "activity_id": "act-1", "field": "due", "calendar_value": "a",
         "kizen_value": "b", "policy": "manual", "status": "open", "created_at": WHEN.isoformat()}
    )  # fmt: skip
    db.table("failures").insert(
        {"source": "ada", "uid": "bad", "slot": "", "kind": "quarantined", "reason": "broken",
         "first_seen": WHEN.isoformat(), "last_seen": WHEN.isoformat()}
    )  # fmt: skip
    db.table("runs").insert(
        {"source": "ada", "started_at": WHEN.isoformat(), "finished_at": WHEN.isoformat(), "status": "ok",
         "counts": json.dumps({"Create": 1}), "errors": "[]"}
    )  # fmt: skip
    db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def applied(path: Path) -> list[str]:
    db = sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    try:
        return schema.applied(db)
    finally:
        db.close()


def test_a_store_from_the_first_schema_upgrades_with_every_row_readable(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first_schema(path)
    store = StateStore(path)
    try:
        assert applied(path) == list(schema.KNOWN)
        one, two, three = store.pairings()
        ada, grace = Location(**ADA), Location(**GRACE)
        assert (one.id, one.activity_id, one.lead, one.locations) == (OccurrenceId("one"), "act-1", ada, (ada, grace))
        assert one.hands_off == ("note",) and one.changes == 2 and one.calendar_seen == {"due": WHEN.isoformat()}
        assert (two.id.slot, two.settled, two.locations, two.created_by_syncd) == (
            "20261201T090000Z", "deleted", (grace,), False
        )  # fmt: skip
        assert three.locations == ()
        assert [p.id.uid for p in store.pairings_at("grace", "feed.ics")] == ["one", "two"]
        assert [p.id.uid for p in store.pairings_at("grace", "feed.ics", open_only=True)] == ["one"]
        assert store.pairing_of("act-2") == two
        assert "locations" not in store.db.table("pairings").columns_dict  # one place for them, not two
        assert [p.id.uid for p in store.pairings_for({"ada"})] == ["one"]  # its lead's source, as a column
        assert [p.id.uid for p in store.pairings_for(set(), unled=True)] == ["three"]
        assert store.resources("ada", ADA["collection"]) == {"one.ics": ('"e1"', "BEGIN:VCALENDAR\nEND:VCALENDAR\n")}
        assert store.cursor("ada", ADA["collection"]) == Cursor(sync_token="t1")
        assert store.cursor_times("ada") == {ADA["collection"]: None}
        assert store.collections("ada") == {ADA["collection"]: "UTC"}
        assert store.lookup("contact", "bo@example.com") == "c-1"
        assert [(i.kind, i.id_, i.activity_id) for i in store.pending_intents()] == [
            ("log", OccurrenceId("one"), "act-1")
        ]
        assert [(c.field, c.status) for c in store.conflicts(open_only=True)] == [("due", "open")]
        assert [(f.uid, f.kind) for f in store.failures("ada")] == [("bad", "quarantined")]
        assert store.last_runs()["ada"]["counts"] == {"Create": 1}
        assert store.rails() == {} and store.rebuilt() == set() and store.discovery("ada") is None
        store.save_pairing(one)  # and it takes writes in the new schema
        assert store.pairing(one.id) == one
    finally:
        store.close()


def test_a_pairing_syncd_deleted_for_its_gone_calendar_item_is_settled_removed_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """Before m007 such a pairing was ``deleted``, told from one deleted in Kizen by its reason's text."""
    path = tmp_path / "state.sqlite"
    first_schema(path)
    db = sqlite_utils.Database(path)
    common = {"activity_type_id": "t", "original_due": WHEN.isoformat(), "due": WHEN.isoformat(), "locations": None}
    db.table("pairings").insert_all(
        [
            {"uid": "four", "slot": "", "activity_id": "act-4", **common, "settled": "deleted",
             "settled_reason": "gone from the calendar"},
            {"uid": "five", "slot": "", "activity_id": "act-5", **common, "settled": "gone",
             "settled_reason": "gone from the calendar; not created by syncd, so left in Kizen"},
        ]
    )  # fmt: skip
    db.close()
    store = StateStore(path)
    try:
        settled = {p.id.uid: (p.settled, p.settled_reason) for p in store.pairings()}
        assert settled["four"] == (Settled.REMOVED, "gone from the calendar")
        assert settled["five"][0] is Settled.GONE
        assert settled["two"] == (Settled.DELETED, "deleted in Kizen")  # deleted in Kizen: as it was
        assert settled["one"][0] is None
    finally:
        store.close()


def test_a_settled_state_this_code_does_not_know_is_read_as_it_is_and_still_settled(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    try:
        store.db.table("pairings").insert(
            {"uid": "x", "slot": "", "activity_id": "act-x", "activity_type_id": "t", "original_due": WHEN.isoformat(),
             "due": WHEN.isoformat(), "settled": "archived", "settled_reason": "by another tool"}
        )  # fmt: skip
        (pairing,) = store.pairings()
        assert pairing.settled == "archived" and isinstance(pairing.settled, Settled)
        assert store.pairings(open_only=True) == []
        store.save_pairing(pairing)  # written back unchanged
        assert store.db.execute("SELECT settled FROM pairings").fetchone()[0] == "archived"
    finally:
        store.close()


def test_a_failing_migration_leaves_the_file_as_it_was_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.sqlite"
    first_schema(path)
    before = sqlite3.connect(path)
    dump = list(before.iterdump())
    before.close()
    name = "m006_pairing_locations"  # the one that moves rows and drops a column
    (last,) = [m for m in schema.migrations.pending(sqlite_utils.Database(memory=True)) if m.name == name]
    real = last.fn

    def half_way(db: sqlite_utils.Database) -> None:
        real(db)  # its tables made, its rows moved, a column dropped: then it fails
        raise ValueError("a location without an href")

    monkeypatch.setattr(last, "fn", half_way)
    with pytest.raises(StateError) as failed:
        StateStore(path)
    assert not isinstance(failed.value, StateFailed)
    assert str(failed.value) == (
        f"state store {path}: migration {name} failed (a location without an href); "
        "no migration was applied, the file is as it was"
    )
    after = sqlite3.connect(path)
    assert list(after.iterdump()) == dump  # m002 to the failing one: none of them stayed
    after.close()
    monkeypatch.setattr(last, "fn", real)
    StateStore(path).close()  # fixed: the next open upgrades it
    assert applied(path) == list(schema.KNOWN)


def test_a_store_a_newer_syncd_upgraded_is_refused_by_every_open(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    db = sqlite_utils.Database(path)
    db.table("_sqlite_migrations").insert({"migration_set": "syncd", "name": "m099_from_the_future", "applied_at": "x"})
    db.close()
    was = digest(path)
    for read_only in (False, True):
        with pytest.raises(StateError) as refused:
            StateStore(path, read_only=read_only)
        assert str(refused.value) == (
            f"state store {path}: a newer syncd upgraded it (its migration m099_from_the_future is unknown to "
            "this version); run that version, or restore a copy made before the upgrade"
        )
    assert digest(path) == was


def test_a_read_only_open_never_upgrades_nor_makes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first_schema(path)
    was = digest(path)
    store = StateStore(path, read_only=True)
    try:  # read through a migrated copy: the current code's reads work
        assert [p.locations for p in store.pairings_at("ada", ADA["collection"])] == [
            (Location(**ADA), Location(**GRACE))
        ]
        assert store.last_runs()["ada"]["status"] == "ok"
    finally:
        store.close()
    assert digest(path) == was and applied(path) == ["m001_initial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite"]

    missing = tmp_path / "not" / "yet" / "state.sqlite"
    empty = StateStore(missing, read_only=True)
    assert empty.pairings() == [] and empty.last_runs() == {}
    empty.close()
    assert not (tmp_path / "not").exists()

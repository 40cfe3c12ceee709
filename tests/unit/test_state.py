"""The state store on a real SQLite file: waiting for another writer, a full database, paths
that cannot hold a state store. Each failure is a StateError naming the file, never a raw one.
What a store keeps and prunes is checked on both backends (``backend``: SQLite, PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import syncd.state.store as store_module
from syncd.errors import StateError, StateFailed
from syncd.model import Location, OccurrenceId
from syncd.state import Pairing, RenderedFeed, Settled, StateStore
from tests.backends import Backend, open_state

START = datetime(2026, 12, 1, 9, tzinfo=UTC)


@contextmanager
def writing(path: Path, release_after: float | None = None) -> Iterator[sqlite3.Connection]:
    """Another connection holding a write transaction on ``path`` (for ``release_after`` s, or
    until the block ends), as a second process's write would."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO lookups (kind, key, value) VALUES ('other', 'writer', 'x')")
    timer = threading.Timer(release_after, lambda: other.execute("COMMIT")) if release_after else None
    if timer is not None:
        timer.start()
    try:
        yield other
    finally:
        if timer is not None:
            timer.join()
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def pairing(uid: str) -> Pairing:
    return Pairing(OccurrenceId(uid), f"act-{uid}", "type-1", START, START)


def test_a_transaction_that_reads_then_writes_waits_for_another_writer(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    try:
        with writing(store.path, release_after=0.5):  # type: ignore[arg-type]
            began = time.monotonic()
            with store.atomic():  # an action's rows: read, then write, in one transaction
                assert store.pairing(OccurrenceId("a")) is None
                store.save_pairing(pairing("a"))
            waited = time.monotonic() - began
        assert waited >= 0.4  # it waited for the other writer instead of failing at once
        assert store.pairing(OccurrenceId("a")) is not None
    finally:
        store.close()


def test_a_write_locked_past_the_busy_timeout_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = StateStore(path, busy_timeout=0.3)
    try:
        with writing(path):
            for write in (
                lambda: store.remember("kind", "key", "value"),
                lambda: store.save_pairing(pairing("b")),
            ):
                began = time.monotonic()
                with pytest.raises(StateFailed) as failed:
                    write()
                assert time.monotonic() - began >= 0.25
                assert f"state store {path}: database is locked" in str(failed.value)
                assert "0.3 s busy timeout" in str(failed.value)
            with pytest.raises(StateFailed, match="database is locked"), store.atomic():
                store.save_pairing(pairing("c"))
        assert store.pairings() == [] and store.lookup("kind", "key") is None
        store.save_pairing(pairing("d"))  # the other writer gone, the store works again
        assert [p.id.uid for p in store.pairings()] == ["d"]
    finally:
        store.close()


def test_a_full_database_rolls_the_whole_transaction_back(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    try:
        store.save_pairing(pairing("kept"))
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own SQLITE_FULL, as on a full disk
        big = "X" * 20_000
        with pytest.raises(StateFailed) as failed, store.atomic():
            store.save_pairing(pairing("lost"))
            for n in range(5):
                store.save_resource(Location("ada", "cal", f"{n}.ics"), f'"{n}"', big)
        assert f"state store {path}: database or disk is full: free space" in str(failed.value)
        assert not store.db.conn.in_transaction
        assert [p.id.uid for p in store.pairings()] == ["kept"]  # nothing of the transaction stayed
        assert store.resources("ada", "cal") == {}
        with pytest.raises(StateFailed, match="database or disk is full"):
            store.save_resource(Location("ada", "cal", "alone.ics"), None, big * 3)
        store.db.execute("PRAGMA max_page_count = 1073741823")  # space again
        with store.atomic():
            store.save_pairing(pairing("later"))
            store.save_resource(Location("ada", "cal", "0.ics"), '"0"', big)
        assert sorted(p.id.uid for p in store.pairings()) == ["kept", "later"]
    finally:
        store.close()


def test_a_path_that_cannot_hold_a_state_store_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    inside_a_file = tmp_path / "a-file" / "state.sqlite"
    with pytest.raises(StateError) as refused:
        StateStore(inside_a_file)
    assert not isinstance(refused.value, StateFailed)  # an open: configuration, not mid-run
    assert str(refused.value).startswith(
        f"state store {inside_a_file}: cannot make its folder {tmp_path / 'a-file'}: a file is in the way"
    )

    not_sqlite = tmp_path / "notes.sqlite"
    not_sqlite.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StateError, match=f"state store {not_sqlite}: file is not a database: it is not a syncd"):
        StateStore(not_sqlite)
    assert not_sqlite.read_text().startswith("these are my notes")  # left as it was


def test_a_lock_file_that_cannot_be_written_is_refused_naming_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    (tmp_path / "state.sqlite.lock").mkdir()  # what holds the lock's place is not a file
    try:
        with pytest.raises(StateError, match=f"state store {tmp_path / 'state.sqlite.lock'}: Is a directory"):
            with store.lock("run --once"):
                pass
    finally:
        store.close()


# --- the location index ------------------------------------------------------------------------

ADA, GRACE = Location("ada", "cal", "one.ics"), Location("grace", "work", "one.ics")


def located(uid: str, *locations: Location, slot: str = "") -> Pairing:
    return replace(pairing(uid), id=OccurrenceId(uid, slot), locations=locations)


def ids(pairings: list[Pairing]) -> list[str]:
    return [f"{p.id.uid} {p.id.slot}".strip() for p in pairings]


def test_a_collections_pairings_follow_save_rekey_and_settle(tmp_path: Path, backend: Backend) -> None:
    store = open_state(tmp_path)
    try:
        store.save_pairing(located("a", ADA, GRACE))
        store.save_pairing(located("b", Location("ada", "other", "b.ics")))
        assert ids(store.pairings_at("ada", "cal")) == ["a"] and ids(store.pairings_at("grace", "work")) == ["a"]
        assert store.pairing(OccurrenceId("a")).locations == (ADA, GRACE)  # type: ignore[union-attr]

        moved = Location("ada", "new", "one.ics")
        store.save_pairing(located("a", moved))  # its copies replaced, not added to
        assert store.pairings_at("ada", "cal") == [] and store.pairings_at("grace", "work") == []
        assert [p.locations for p in store.pairings_at("ada", "new")] == [(moved,)]

        store.rekey(OccurrenceId("a"), located("a", moved, GRACE, slot="20261201T090000Z"))
        assert ids(store.pairings_at("ada", "new")) == ["a 20261201T090000Z"]
        assert ids(store.pairings_at("grace", "work")) == ["a 20261201T090000Z"]
        rows = backend.rows(tmp_path, "SELECT uid, slot FROM pairing_locations WHERE slot = ''")
        assert rows == [("b", "")]  # nothing of the old identity is left to find

        (current,) = store.pairings_at("ada", "new")
        store.settle(current, "deleted", "deleted in Kizen")
        assert store.pairings_at("ada", "new", open_only=True) == []
        (settled,) = store.pairings_at("ada", "new")
        assert settled.settled == "deleted" and settled.locations == (moved, GRACE)  # kept, in order
        assert ids(store.pairings(open_only=True)) == ["b"]
    finally:
        store.close()


def test_a_teams_cycle_gets_the_pairings_of_its_sources_and_of_the_items_it_read(
    tmp_path: Path, backend: Backend
) -> None:
    """``pairings_for``: the open pairings with a copy in the team's sources or led by one, the
    open ones no copy leads when asked, and every pairing of the UIDs read (settled ones too, so a
    retired one is never made again); nothing of other teams."""
    store = open_state(tmp_path)
    try:
        bob = Location("bob", "cal", "x.ics")
        store.save_pairing(located("copy", bob, ADA))
        store.save_pairing(replace(located("led", bob), lead=ADA))  # led from ada, no copy of it there
        store.save_pairing(replace(located("retired", ADA), lead=ADA, settled=Settled.LOGGED))
        store.save_pairing(located("unled"))
        store.save_pairing(replace(located("unled-retired"), settled=Settled.GONE))
        store.save_pairing(replace(located("series", bob, slot="20261201T090000Z"), settled=Settled.DELETED))
        store.save_pairing(replace(located("series", bob, slot="20261208T090000Z"), activity_id="act-next", lead=bob))
        store.save_pairing(replace(located("bobs", bob), lead=bob))
        assert ids(store.pairings_for({"ada"})) == ["copy", "led"]
        assert ids(store.pairings_for({"ada"}, unled=True)) == ["copy", "led", "unled"]
        assert ids(store.pairings_for({"grace"}, ["series", "retired", "absent"])) == [
            "retired", "series 20261201T090000Z", "series 20261208T090000Z"
        ]  # fmt: skip
        assert ids(store.pairings_for({"bob"})) == ["copy", "led", "series 20261208T090000Z", "bobs"]
        assert store.pairings_for(set()) == []
        assert store.pairings_for({"ada", "bob"}) == [p for p in store.pairings(open_only=True) if p.locations]
        (led,) = store.pairings_for(set(), ["led"])
        assert led == store.pairing(OccurrenceId("led"))  # read whole, copies and lead
        store.save_pairing(replace(led, lead=bob))  # the lead moved away, and the column with it
        assert ids(store.pairings_for({"ada"})) == ["copy"]
        assert store.paired_activities(["act-copy", "act-retired", "act-absent"]) == {"act-copy", "act-retired"}
        assert store.paired_activities([]) == set()
    finally:
        store.close()


def test_the_stores_look_ups_use_their_indexes(tmp_path: Path) -> None:
    """Every look-up a cycle makes by collection, activity, source, status or age searches an
    index: none reads a whole table of pairings, their locations, failures or the journal."""
    store = StateStore(tmp_path / "state.sqlite")
    for n in range(50):
        store.save_pairing(located(f"p{n}", Location("ada", f"cal{n % 5}", f"{n}.ics")))
        store.record_failure("ada", OccurrenceId(f"p{n}"), "failed", "no")
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        store.pairings_at("ada", "cal1", open_only=True)
        store.pairings_at("ada", "cal1")
        store.pairing_of("act-p3")
        store.pairing(OccurrenceId("p4"))
        store.pairings_for({"ada", "grace"}, ["p1", "p2"], unled=True)
        store.paired_activities(["act-p1", "act-p2"])
        store.failures("ada")
        store.pending_intents()
        store.record_conflict(pairing("p5"), "due", "a", "b", "manual")
        store.prune(START, timedelta(days=91))
    finally:
        store.db.conn.set_trace_callback(None)
    looked = [s for s in statements if s.strip().upper().startswith(("SELECT", "DELETE")) and "sqlite_master" not in s]
    assert len(looked) >= 10
    for statement in looked:
        plan = [row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + statement).fetchall()]
        scans = [
            step
            for step in plan
            if step.startswith("SCAN") and "COVERING INDEX idx_runs" not in step and "VIRTUAL TABLE" not in step
        ]  # a virtual table's scan is of a list the statement was given (json_each), not of a table
        assert scans == [], (statement, plan)
        if "pairing_locations WHERE source" in statement:  # the collection leads, not every open pairing
            assert any("idx_pairing_locations_source_collection" in step for step in plan), plan
            assert not any("idx_pairings_settled_due" in step for step in plan), plan
    store.close()


# --- pruning ---------------------------------------------------------------------------------

NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
KEEP = timedelta(days=91)  # the default lookback (1 day) and watch_days (90)
OLD, RECENT = NOW - timedelta(days=200), NOW - timedelta(days=30)


def dated(uid: str, due: datetime, slot: str = "", settled: Settled | None = "logged", **more: Any) -> Pairing:
    here = Location("ada", "cal", f"{uid}.ics")
    return Pairing(
        OccurrenceId(uid, slot), f"act-{uid}", "t", more.pop("original_due", due), due, lead=here,
        locations=(here,), settled=settled, **more,
    )  # fmt: skip


def slot_of(moment: datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%SZ}"


def test_pruning_keeps_every_pairing_whose_identity_can_come_back(tmp_path: Path, backend: Backend) -> None:
    store = open_state(tmp_path)
    try:
        kept = [
            dated("open-and-old", OLD, settled=None),  # open: followed however old
            dated("single-still-in-calendar", OLD, settled="deleted"),  # movable back into the window
            dated("single-recent", RECENT, settled="deleted"),
            dated("slot-recent", RECENT, slot_of(RECENT)),
            dated("slot-moved-forward", RECENT, slot_of(OLD), original_due=OLD),  # an override moved it
            dated("slot-old-but-due-recent", OLD, slot_of(OLD), original_due=RECENT),
            dated("date-slot-at-the-edge", NOW - KEEP - timedelta(days=1), f"{NOW - KEEP:%Y%m%d}"),
            dated("unknown-settled-state", OLD, slot_of(OLD), settled="someday"),  # type: ignore[arg-type]
        ]
        pruned = [
            dated("slot-old", OLD, slot_of(OLD)),
            dated("slot-expired", OLD, slot_of(OLD), settled="expired"),
            dated("slot-deleted", OLD, slot_of(OLD), settled="deleted"),
            dated("date-slot-old", OLD, f"{OLD:%Y%m%d}"),
            dated("single-gone-from-calendar", OLD, settled="gone"),
        ]
        for each in kept + pruned:
            store.save_pairing(each)
        for each in kept:  # their calendar copies are still stored (what matters for a single item)
            store.save_resource(each.locations[0], '"1"', "BEGIN:VCALENDAR\nEND:VCALENDAR\n")
        store.save_resource(Location("ada", "cal", "slot-old.ics"), '"1"', "BEGIN:VCALENDAR\nEND:VCALENDAR\n")
        lead_only = replace(dated("single-by-its-lead", OLD, settled="deleted"), locations=())
        store.save_pairing(lead_only)
        store.save_resource(lead_only.lead, '"1"', "")  # type: ignore[arg-type]
        store.record_conflict(pruned[0], "due", "a", "b", "manual")
        store.record_conflict(kept[0], "due", "a", "b", "manual")

        done = store.prune(NOW, KEEP)

        left = {p.id.uid for p in store.pairings()}
        assert left == {p.id.uid for p in kept} | {"single-by-its-lead"}
        assert done.pairings == len(pruned)
        assert [c.occurrence.uid for c in store.conflicts()] == ["open-and-old"]  # a pruned one's went with it
        assert backend.rows(tmp_path, "SELECT COUNT(*) FROM pairing_locations") == [(len(kept),)]
        assert store.prune(NOW, KEEP).pairings == 0  # nothing more to do
    finally:
        store.close()


def test_pruning_keeps_each_sources_last_runs_and_every_pending_intent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    store = open_state(tmp_path)
    clock = [OLD]
    monkeypatch.setattr(store_module, "stamp_now", lambda: clock[0])
    if backend.name == "postgresql":
        import syncd.state.postgres as postgres_module

        monkeypatch.setattr(postgres_module, "stamp_now", lambda: clock[0])
    try:
        for _ in range(110):
            store.finish_run(store.start_run("ada"), "ok", {}, [])
            clock[0] += timedelta(hours=1)
        store.finish_run(store.start_run("grace"), "ok", {}, [])  # old, but grace's latest
        store.intend("create", OccurrenceId("waiting"), {})
        done = store.intend("create", OccurrenceId("done"), {})
        store.settle_intent(done, "done", {})
        failed = store.intend("update", OccurrenceId("failed"), {})
        store.settle_intent(failed, "failed", {})
        clock[0] = RECENT
        for _ in range(5):
            store.finish_run(store.start_run("ada"), "ok", {}, [])
        fresh = store.intend("create", OccurrenceId("fresh"), {})
        store.settle_intent(fresh, "done", {})

        result = store.prune(NOW, KEEP)

        runs = backend.rows(tmp_path, "SELECT source, COUNT(*) FROM runs GROUP BY source ORDER BY source")
        assert runs == [("ada", 100), ("grace", 1)]  # 95 old ones and the 5 of the last 30 days
        assert store.last_runs()["ada"]["started_at"] == RECENT.isoformat()
        assert [i.id_.uid for i in store.pending_intents()] == ["waiting"]
        journal = backend.rows(tmp_path, "SELECT uid FROM journal ORDER BY id")
        assert journal == [("waiting",), ("fresh",)]
        assert (result.runs, result.journal) == (15, 2)
    finally:
        store.close()


def test_an_intent_is_committed_with_a_full_sync_and_the_rest_with_a_normal_one(tmp_path: Path) -> None:
    """An intent must be on disk before its request leaves (FULL); the other commits may be taken
    back by a power loss (NORMAL in WAL), which at worst leaves an intent for the journal."""
    state = StateStore(tmp_path / "state.sqlite")
    try:
        assert state.db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        seen: list[str] = []
        state.db.conn.set_trace_callback(seen.append)
        intent = state.intend("create", OccurrenceId("u"), {"source": "ada"})
        order = [s for s in seen if "synchronous" in s or "journal" in s.lower()]
        assert order[0] == "PRAGMA synchronous=FULL" and order[-1] == "PRAGMA synchronous=NORMAL"
        assert any(s.startswith('INSERT INTO "journal"') for s in order[1:-1]), order
        seen.clear()
        state.settle_intent(intent, "done", {})
        assert not any("synchronous" in s for s in seen)
        assert state.db.execute("PRAGMA synchronous").fetchone() == (1,)
    finally:
        state.close()


def test_a_durable_transaction_commits_its_intents_with_one_full_sync(tmp_path: Path) -> None:
    """A batch of intents (a plan's creates, written ahead) waits for the disk once, not once each."""
    state = StateStore(tmp_path / "state.sqlite")
    try:
        seen: list[str] = []
        state.db.conn.set_trace_callback(seen.append)
        with state.atomic(durable=True):
            first = state.intend("create", OccurrenceId("u1"), {"source": "ada"})
            second = state.intend("create", OccurrenceId("u2"), {"source": "ada"})
        kept = ("PRAGMA synchronous", "BEGIN", "COMMIT", 'INSERT INTO "journal"')
        order = [s.split(" (")[0] for s in seen if s.startswith(kept)]
        assert order == [
            "PRAGMA synchronous=FULL",
            "BEGIN IMMEDIATE",
            'INSERT INTO "journal"',
            'INSERT INTO "journal"',
            "COMMIT",
            "PRAGMA synchronous=NORMAL",
        ], order
        assert [i.id for i in state.pending_intents()] == [first, second]
        seen.clear()
        with state.atomic():
            state.settle_intent(first, "done", {})
        assert not any("synchronous" in s for s in seen)
    finally:
        state.close()


def test_a_saved_feed_is_read_back_whole_and_its_etag_alone(tmp_path: Path, backend: Backend) -> None:
    state = open_state(tmp_path)
    try:
        assert state.feed("team") is None and state.feed_etag("team") is None
        first = RenderedFeed(
            b"BEGIN:VCALENDAR\r\n\xe2\x9c\x93\r\nEND:VCALENDAR\r\n", '"abc"', datetime(2026, 12, 1, 9, tzinfo=UTC)
        )
        state.save_feed("team", first)
        assert state.feed("team") == first and state.feed_etag("team") == '"abc"'
        second = RenderedFeed(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", '"def"', datetime(2026, 12, 1, 10, tzinfo=UTC))
        state.save_feed("team", second)
        assert state.feed("team") == second and state.feed("other") is None
    finally:
        state.close()


def test_each_sources_last_success_is_its_last_run_that_ended_ok(tmp_path: Path, backend: Backend) -> None:
    state = open_state(tmp_path)
    try:
        ok = state.start_run("ada")
        state.finish_run(ok, "ok", {}, [])
        failed = state.start_run("ada")
        state.finish_run(failed, "failed", {}, ["Kizen not reached"])
        state.finish_run(state.start_run("grace"), "failed", {}, ["unreadable"])
        state.start_run("alan")  # still running
        ((finished,),) = backend.rows(tmp_path, f"SELECT finished_at FROM runs WHERE id = {ok}")
        assert state.last_successes() == {"ada": datetime.fromisoformat(finished)}
    finally:
        state.close()

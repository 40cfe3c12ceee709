"""The state store on a real SQLite file: waiting for another writer, a full database, paths
that cannot hold a state store. Each failure is a StateError naming the file, never a raw one."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.errors import StateError, StateFailed
from syncd.model import Location, OccurrenceId
from syncd.state import Pairing, StateStore

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

"""The invariants checker itself: each breach it exists for is seen, and a clean sync has none."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.identifiers import imported_uid, provenance
from syncd.model import OccurrenceId
from tests.faults.harness import Scene, scene
from tests.faults.invariants import check
from tests.faults.scenarios import Calendar


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Scene, Calendar]]:
    with scene(tmp_path, 0) as s:
        cal = Calendar("ada", s.start)
        cal.fill(4)
        s.ics("ada", cal.text())
        assert s.run() is not None
        yield s, cal


def activity(s: Scene, uid: str) -> dict[str, object]:
    found = s.activity_of("ada", OccurrenceId(uid))
    assert found is not None
    return found


def test_a_clean_sync_breaks_nothing(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    result = check(s.kizen_path, s.state_path, cal.expect(), s.snapshot())
    assert result.ok and result.counts() == dict.fromkeys(result.counts(), 0)


def test_a_second_activity_with_the_same_provenance_is_a_duplicate(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    first = activity(s, "e1")
    s.box.user().create("meeting", cal.events["e1"], note=str(first["note"]))
    result = check(s.kizen_path, s.state_path, cal.expect(), s.snapshot())
    assert len(result.duplicates) == 1 and "2 activities carry" in result.duplicates[0]


def test_a_calendar_change_that_did_not_arrive_is_lost(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    cal.events["e2"] += timedelta(hours=1)  # moved in the calendar; no run since
    del cal.events["e3"]  # deleted in the calendar; its activity still open
    cal.events["late"] = cal.start + timedelta(days=3)  # added; never created
    result = check(s.kizen_path, s.state_path, cal.expect(), s.snapshot())
    assert len(result.lost) == 3 and not result.duplicates, result.lost
    assert any("e2 -" in line and "expected" in line for line in result.lost)
    assert any("deleted in the calendar" in line for line in result.lost)
    assert any("late -" in line and "no activity" in line for line in result.lost)


def test_a_logged_activity_changed_is_touched(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    done = activity(s, "e0")
    s.box.user().complete(str(done["id"]))
    before = s.snapshot()
    record = s.box.store.scheduled(str(done["id"]))
    assert record is not None
    s.box.store.put_scheduled({**record, "note": "rewritten"}, due=cal.events["e0"], completed=s.start)
    cal.logged.add("e0")
    result = check(s.kizen_path, s.state_path, cal.expect(), before)
    assert result.touched == [f"scheduled {done['id']}: changed note"]


def test_a_state_that_contradicts_kizen_disagrees(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    gone = activity(s, "e1")
    s.box.user().delete(str(gone["id"]))
    db = sqlite3.connect(s.state_path)
    with db:
        db.execute("INSERT INTO journal (kind, uid, slot, payload, status) VALUES ('create', 'x', '', '{}', 'pending')")
    db.close()
    result = check(s.kizen_path, s.state_path, cal.expect(), s.snapshot())
    assert any("gone from Kizen" in line for line in result.disagreements)
    assert any("still pending" in line for line in result.disagreements)
    assert any("e1 -" in line and "no activity" in line for line in result.lost)


def test_an_item_imported_twice_or_never_is_seen(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    made = s.box.user().create("call", cal.start + timedelta(days=2), note="Made in Kizen")
    imported = {str(made["id"]): cal.start + timedelta(days=2)}
    result = check(s.kizen_path, s.state_path, cal.expect(imported=imported, importer="ada"), s.snapshot())
    assert result.lost == [f"activity {made['id']} made in Kizen was never imported"]
    # a second activity made from the imported calendar copy: a duplicate of the one made in Kizen
    line = provenance("ada", OccurrenceId(imported_uid(str(made["id"]))))
    s.box.user().create("call", cal.start + timedelta(days=2), note=f"Made in Kizen\n\n{line}")
    result = check(s.kizen_path, s.state_path, cal.expect(imported=imported, importer="ada"), s.snapshot())
    assert len(result.duplicates) == 1 and "has 2 activities" in result.duplicates[0], result.duplicates


def test_a_failure_row_of_an_item_in_step_is_a_stale_failure(synced: tuple[Scene, Calendar]) -> None:
    s, cal = synced
    db = sqlite3.connect(s.state_path)
    with db:
        db.execute(
            "INSERT INTO failures (source, uid, slot, kind, reason) VALUES ('ada', 'e0', '', 'failed', ?)",
            (json.dumps("lost answer"),),
        )
    db.close()
    result = check(s.kizen_path, s.state_path, cal.expect(), s.snapshot())
    assert result.ok and len(result.stale_failures) == 1

"""The fault matrix, the CalDAV server's side: Radicale stopped and restarted, a 412 race."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.faults.conftest import invariants_hold, no_run_failed
from tests.faults.harness import Result
from tests.faults.scenarios import CI, radicale_restart

Matrix = Callable[[str], list[Result]]


def test_radicale_stopped_and_restarted_loses_nothing_and_duplicates_nothing(matrix: Matrix) -> None:
    results = matrix("radicale-restart")
    assert all(r.faults["radicale-stopped"] and r.faults["radicale-stopped-mid-run"] for r in results)
    invariants_hold(results)


def test_radicale_stopped_mid_run_fails_its_writes_not_the_run(matrix: Matrix) -> None:
    no_run_failed(matrix("radicale-restart"))


def test_a_kizen_move_meeting_a_calendar_move_kept_unread_by_the_outage_expects_the_calendars(tmp_path: Path) -> None:
    """Seeds 2 and 4 move in Kizen an event whose calendar move Radicale's outage kept unsynced:
    both sides moved, so the calendar's time is expected (the default policy) and a conflict."""
    results = [radicale_restart(tmp_path / f"seed-{seed}", CI, seed) for seed in (2, 4)]
    assert all(r.faults["moved-on-both-sides"] for r in results)
    invariants_hold(results)  # with the conflict recorded for each
    no_run_failed(results)


def test_an_object_edited_between_read_and_write_back_keeps_both_changes(matrix: Matrix) -> None:
    results = matrix("412-race")
    assert all(r.faults["412-race"] >= 2 for r in results)
    invariants_hold(results)  # with the other client's edits kept, and each write-back landed
    no_run_failed(results)

"""The fault matrix: ``syncd run --once`` killed (SIGKILL) part-way, then run again."""

from __future__ import annotations

from collections.abc import Callable

from tests.faults.conftest import invariants_hold, no_run_failed
from tests.faults.harness import Result

Matrix = Callable[[str], list[Result]]


def test_killed_during_a_large_sync_the_next_run_finishes_without_duplicates(matrix: Matrix) -> None:
    results = matrix("sigkill-sync")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)


def test_killed_during_a_rebuild_after_a_lost_state_store_the_next_run_finishes_without_duplicates(
    matrix: Matrix,
) -> None:
    results = matrix("sigkill-rebuild")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)


def test_killed_during_an_import_the_next_run_finishes_without_duplicates(matrix: Matrix) -> None:
    results = matrix("sigkill-import")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)

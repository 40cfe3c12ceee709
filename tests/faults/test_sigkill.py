"""The fault matrix: ``syncd run --once`` killed (SIGKILL) part-way, then run again; on each state backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.conftest import invariants_hold, no_run_failed
from tests.faults.harness import Result

Matrix = Callable[[str], list[Result]]
STATE = pytest.mark.parametrize("on", ["", "@postgresql"], ids=["sqlite", "postgresql"])  # the state's backend


@STATE
def test_killed_during_a_large_sync_the_next_run_finishes_without_duplicates(matrix: Matrix, on: str) -> None:
    results = matrix(f"sigkill-sync{on}")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)


@STATE
def test_killed_during_a_rebuild_after_a_lost_state_store_the_next_run_finishes_without_duplicates(
    matrix: Matrix, on: str
) -> None:
    results = matrix(f"sigkill-rebuild{on}")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)


@STATE
def test_killed_during_an_import_the_next_run_finishes_without_duplicates(matrix: Matrix, on: str) -> None:
    results = matrix(f"sigkill-import{on}")
    assert all(r.faults["sigkill"] >= 1 for r in results)
    invariants_hold(results)
    no_run_failed(results)

"""The fault matrix, the state database: locked by another process, and its file system full."""

from __future__ import annotations

from collections.abc import Callable

from tests.faults.conftest import invariants_hold, no_run_failed
from tests.faults.harness import Result

Matrix = Callable[[str], list[Result]]


def test_after_the_state_database_was_locked_the_runs_converge_without_duplicates(matrix: Matrix) -> None:
    results = matrix("state-locked")
    assert all(r.faults["state-locked"] >= 2 for r in results)
    invariants_hold(results)


def test_a_state_database_locked_for_two_seconds_is_waited_for(matrix: Matrix) -> None:
    no_run_failed(matrix("state-locked"))


def test_after_the_state_database_was_full_the_runs_converge_without_duplicates(matrix: Matrix) -> None:
    results = matrix("state-full")
    assert all(r.faults["state-full"] >= 2 for r in results)
    invariants_hold(results)


def test_a_full_state_database_is_told_in_one_line_not_a_traceback(matrix: Matrix) -> None:
    no_run_failed(matrix("state-full"))

"""The fault matrix, Kizen's side: 429, 5xx, connections dropped before and after the write, timeouts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.model import OccurrenceId
from syncd.sandbox import Fault
from tests.faults.conftest import invariants_hold, no_run_failed
from tests.faults.harness import Result, scene
from tests.faults.scenarios import Calendar

Matrix = Callable[[str], list[Result]]


@pytest.mark.parametrize("transport", ["in-process", "loopback"])
def test_random_kizen_faults_lose_nothing_and_duplicate_nothing(matrix: Matrix, transport: str) -> None:
    results = matrix(f"kizen-faults/{transport}")
    assert all(r.faults["drop-after"] and r.faults["429"] and r.faults["503"] for r in results)
    invariants_hold(results)
    no_run_failed(results)


def test_kizen_answering_after_the_clients_timeout_loses_nothing_and_duplicates_nothing(matrix: Matrix) -> None:
    results = matrix("kizen-timeouts")
    assert all(r.faults["timeout-before-apply"] and r.faults["timeout-after-apply"] for r in results)
    invariants_hold(results)
    no_run_failed(results)


def test_after_kizen_faults_converge_no_item_is_still_listed_as_failed(matrix: Matrix) -> None:
    stale = [line for r in matrix("kizen-faults/in-process") for line in r.verdict.stale_failures]
    assert not stale, stale[:5]


@pytest.mark.parametrize("meanwhile", ["moved", "reassigned"])
def test_a_lost_create_changed_in_kizen_before_the_next_run_is_not_made_again(tmp_path: Path, meanwhile: str) -> None:
    with scene(tmp_path, 0) as s:
        cal = Calendar("ada", s.start)
        cal.fill(3)
        s.ics("ada", cal.text())
        s.box.faults.script(Fault.DROP_AFTER, method="POST", path="/api/activities/scheduled-activity")
        s.run()  # one create reached Kizen; its answer did not reach syncd (which one: the first sent)
        made_of = {uid: s.activity_of("ada", OccurrenceId(uid)) for uid in ("e0", "e1", "e2")}
        (lost,) = [uid for uid, made in made_of.items() if made is not None and made["id"] not in s.paired()]
        made = made_of[lost]
        assert made is not None
        if meanwhile == "moved":  # someone moves it in Kizen meanwhile
            cal.kizen_moved[lost] = cal.events[lost] + timedelta(hours=3)
            s.box.user().reschedule(made["id"], cal.kizen_moved[lost])
        else:  # or hands it to a colleague
            s.box.user().reassign(made["id"], "grace@example.com")
        s.converge()
        assert made["id"] in s.paired()
        invariants_hold([s.result(f"lost-create-{meanwhile}", cal.expect(), s.snapshot())])

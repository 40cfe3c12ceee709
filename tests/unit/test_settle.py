"""A Settle applied: what it notes is added to what the state holds, and only a closing one counts
as a change (the rest is bookkeeping, at DEBUG, not a line of the summary)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox
from syncd.state import Settled, Store
from syncd.sync.actions import Settle
from syncd.sync.apply import Effects
from syncd.wiring import sandbox_client
from tests.backends import Backend, open_state
from tests.plans import LATER, NOW, iso, paired, want
from tests.unit.test_safety import config


@dataclass
class Applying:
    effects: Effects
    state: Store


@pytest.fixture
def applying(tmp_path: Path, backend: Backend) -> Iterator[Applying]:
    with Sandbox() as box:
        state = open_state(tmp_path)
        client = sandbox_client(box, sleep=lambda _: None)
        try:
            yield Applying(Effects(config(), state, client, {}, lambda: NOW), state)
        finally:
            client.http.close()
            state.close()


PAIRING = paired(want(), hands_off=("note",))


def test_a_settle_adds_its_hands_off_fields_to_those_already_left_alone(applying: Applying) -> None:
    applying.state.save_pairing(PAIRING)
    outcome = applying.effects.apply(Settle(PAIRING, "the contacts are Kizen's", hands_off=("contacts",)))
    stored = applying.state.pairing(PAIRING.id)
    assert stored is not None and stored.hands_off == ("contacts", "note")
    assert outcome.ok and not outcome.changed  # bookkeeping


def test_a_settle_adds_what_each_side_showed_and_kizens_time_stands(applying: Applying) -> None:
    applying.state.save_pairing(PAIRING)
    applying.effects.apply(Settle(PAIRING, "seen", calendar_seen={"note": "New"}, kizen_seen={"due": iso(LATER)}))
    stored = applying.state.pairing(PAIRING.id)
    assert stored is not None
    assert stored.calendar_seen == {**PAIRING.calendar_seen, "note": "New"}
    assert stored.kizen_seen == {**PAIRING.kizen_seen, "due": iso(LATER)} and stored.due == LATER
    assert stored.settled is None


def test_a_closing_settle_records_its_reason_and_counts_as_a_change(applying: Applying) -> None:
    applying.state.save_pairing(PAIRING)
    outcome = applying.effects.apply(Settle(PAIRING, "gone from Kizen", settled=Settled.DELETED))
    stored = applying.state.pairing(PAIRING.id)
    assert stored is not None and stored.settled is Settled.DELETED and stored.settled_reason == "gone from Kizen"
    assert outcome.changed and outcome.detail == "gone from Kizen"


def test_a_bookkeeping_settle_keeps_the_reason_the_pairing_had(applying: Applying) -> None:
    closed = replace(PAIRING, settled=Settled.LOGGED, settled_reason="the event happened")
    applying.state.save_pairing(closed)
    applying.effects.apply(Settle(closed, "seen after it was logged", kizen_seen={"note": "x"}))
    stored = applying.state.pairing(PAIRING.id)
    assert stored is not None and stored.settled is Settled.LOGGED and stored.settled_reason == "the event happened"


def test_a_settle_builds_on_the_state_not_on_the_plans_copy(applying: Applying) -> None:
    """An update of the same pairing earlier in the cycle stays recorded."""
    updated = replace(PAIRING, calendar_seen={**PAIRING.calendar_seen, "note": "Updated"}, changes=3)
    applying.state.save_pairing(updated)
    applying.effects.apply(Settle(PAIRING, "seen", kizen_seen={"note": "Kizen's"}))
    stored = applying.state.pairing(PAIRING.id)
    assert stored is not None and stored.calendar_seen["note"] == "Updated" and stored.changes == 3

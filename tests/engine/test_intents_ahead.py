"""A plan's creates journaled ahead: a batch of intents in one durable commit, none left behind.

Each create's intent is on disk before its request leaves, but one durable commit writes the
intents of many creates (``syncd.sync.apply.AHEAD``); a run that stops sending abandons the ones
it did not send, and a create whose request cannot be made fails alone, once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

import syncd.runner
from syncd.errors import StateFailed
from syncd.sandbox import Fault, Sandbox
from syncd.state.protocol import SyncState
from syncd.state.shared import shared
from syncd.sync.actions import Create
from syncd.sync.apply import AHEAD, Effects
from syncd.wiring import sandbox_client
from tests.backends import open_state
from tests.engine.test_cycle import World, calendar, vevent
from tests.engine.test_kizen_failures import SCHEDULED, events
from tests.plans import LATER, NOW, want
from tests.unit.test_payloads import Lookups, lookups  # noqa: F401  (the fixture)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


class Durable:
    """The apply step's store, counting the durable commits it asks for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commits = 0
        monkeypatch.setattr(syncd.runner, "shared", self.shared)

    def shared(self, state: SyncState) -> SyncState:
        inner = shared(state)
        counter = self

        class Counting:
            def atomic(self, *, durable: bool = False) -> AbstractContextManager[None]:
                counter.commits += durable
                return inner.atomic(durable=durable)

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Counting()  # type: ignore[return-value]


def many(count: int) -> str:
    """``count`` single events, an hour apart from 1 December."""
    first = datetime(2026, 12, 1, 9, tzinfo=UTC)
    return calendar(
        *(vevent(f"e{n}", f"{first + timedelta(hours=n):%Y%m%dT%H%M%SZ}", f"Event {n}") for n in range(count))
    )


def pending(world: World) -> int:
    state = open_state(world.folder)
    try:
        return len(state.pending_intents())
    finally:
        state.close()


@pytest.mark.parametrize("workers", [1, 4])
def test_many_intents_go_to_disk_in_one_commit_and_each_create_is_sent_once(
    world: World, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    count = 2 * AHEAD + 10
    world.concurrency = workers
    world.feed(many(count))
    durable = Durable(monkeypatch)
    report = world.run()
    assert report.clean and report.counts() == {"Create": count}
    assert durable.commits == math.ceil(count / AHEAD)  # not one per create
    assert len(world.activities()) == count and pending(world) == 0
    assert world.run().counts() == {}


def test_a_run_that_stops_sending_abandons_the_intents_it_did_not_send(world: World) -> None:
    world.concurrency = 1
    world.feed(events(12))
    world.box.faults.script(Fault.UNAVAILABLE, method="POST", path=SCHEDULED, times=100)
    halted = world.run()
    assert len(halted.failures) == 3 and halted.held == 9
    assert pending(world) <= 3  # the refused ones may wait for the journal; the 9 never sent do not
    world.box.faults.clear()
    assert world.run().counts() == {"Create": 12} and len(world.activities()) == 12
    assert pending(world) == 0


def test_a_create_whose_request_cannot_be_made_fails_alone_once(world: World) -> None:
    """Nobody is no employee Kizen knows: their meeting fails with that reason, whichever create
    wrote its intent's batch, and the others are sent."""
    world.concurrency = 1
    world.feed(events(5))
    world.feed(calendar(vevent("theirs", "20261208T090000Z", "Theirs")), name="nobody")
    report = world.run()
    assert len(report.actions) == 6 and report.counts() == {"Create": 5}
    (failed,) = report.failures
    assert failed.identity.uid == "theirs" and "nobody@example.com is not a Kizen employee" in failed.detail
    assert len(world.activities()) == 5 and pending(world) == 0


class FullAtCommit:
    """A store whose next durable commit fails as a full disk does: its rows are rolled back."""

    def __init__(self, state: SyncState) -> None:
        self.state, self.failures = state, 1

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:
        with self.state.atomic(durable=durable):
            yield
            if durable and self.failures:
                self.failures -= 1
                raise StateFailed("state store: database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)


def test_no_create_of_a_batch_whose_intents_were_rolled_back_is_sent(lookups: Lookups) -> None:
    """The batch is written by the first create of the plan; the second, as another lane would,
    takes its turn after that commit failed: it fails too, nothing was sent, nothing is pending.
    The next run's creates go out, each with its intent."""
    actions = [Create(want("one")), Create(want("two", due=LATER))]
    client = sandbox_client(lookups.box)
    store = FullAtCommit(shared(lookups.state))
    effects = Effects(lookups.config, cast(SyncState, store), client, {}, clock=lambda: NOW)
    effects.expect(actions)
    for action in actions:
        with pytest.raises(StateFailed):
            effects.apply(action)
    assert lookups.box.service.list_scheduled({}, 0, 100)[1] == []
    assert lookups.state.pending_intents() == []
    again = Effects(lookups.config, cast(SyncState, store), client, {}, clock=lambda: NOW)
    again.expect(actions)
    assert all(again.apply(action).ok for action in actions)
    sent = {str(a["id"]) for a in lookups.box.service.list_scheduled({}, 0, 100)[1]}
    paired = {p.activity_id for p in lookups.state.pairings()}
    assert len(sent) == 2 and sent == paired and lookups.state.pending_intents() == []

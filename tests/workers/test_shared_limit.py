"""One rate limit per business across every worker, held in the PostgreSQL state they share: a
hold one worker's client records (its own 429) delays every other's next request, read at most
once a second; a hold that is over delays no one; the state failing never stops a request. A cap
on requests per second spaces the business's requests, in one process and across workers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.config import load
from syncd.kizen import ActivitiesClient, http_client
from syncd.kizen.limiter import READ_EVERY, Limiter, SharedLimiter
from syncd.sandbox import Fault, FaultPlan, Sandbox
from syncd.service.workers import sync_team
from syncd.state.postgres import PostgresStore
from syncd.wiring import kizen_client
from tests.engine.test_cycle import NOW, World, calendar, vevent
from tests.pg import Server
from tests.sandbox.conftest import Recorder, credentials

KEY = "https://kizen.test 7"  # a business: Kizen's base URL and the business id
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(pg_server: Server) -> Iterator[str]:
    made = pg_server.database(migrated=True)
    try:
        yield made
    finally:
        pg_server.recycle(made)


@pytest.fixture
def states(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """The state as two workers hold it: two stores on one database."""
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_a_hold_one_worker_records_delays_the_others_next_request_once_it_reads_it(
    states: tuple[PostgresStore, PostgresStore],
) -> None:
    """The other worker read the shared hold just before (none then): it sends on for up to a
    second of its clock without asking the database again, then reads the hold and waits it out."""
    one, other = (Recorder(), Recorder())
    limiter = SharedLimiter(store=states[0], key=KEY, clock=one.clock)
    seen = SharedLimiter(store=states[1], key=KEY, clock=other.clock)
    seen.wait(other.sleep)  # read: no hold yet
    limiter.hold(30)
    seen.wait(other.sleep)
    assert other.sleeps == []  # read less than a second ago: not read again
    other.now += READ_EVERY
    seen.wait(other.sleep)
    assert len(other.sleeps) == 1 and 25 < other.sleeps[0] <= 30  # the hold, on the database's clock


def test_a_workers_own_hold_reads_the_shared_one_at_once(states: tuple[PostgresStore, PostgresStore]) -> None:
    """Its own 429 makes a worker read the shared hold before its next request, even within the
    second: another worker's longer hold is the one it waits out."""
    recorder = Recorder()
    limiter = SharedLimiter(store=states[0], key=KEY, clock=recorder.clock)
    limiter.wait(recorder.sleep)  # read: no hold yet
    states[1].hold_kizen(KEY, 60)  # another worker's 429 asked for a minute
    limiter.hold(5)
    limiter.wait(recorder.sleep)
    assert len(recorder.sleeps) == 1 and 55 < recorder.sleeps[0] <= 60


def test_a_hold_that_is_over_delays_no_one_and_a_later_one_stands(
    states: tuple[PostgresStore, PostgresStore],
) -> None:
    recorder = Recorder()
    states[0].hold_kizen(KEY, -60)  # a hold that ended a minute ago
    states[0].hold_kizen("https://kizen.test 8", 60)  # another business's
    SharedLimiter(store=states[1], key=KEY, clock=recorder.clock).wait(recorder.sleep)
    assert recorder.sleeps == []
    states[0].hold_kizen(KEY, 40)
    states[0].hold_kizen(KEY, 5)  # shorter than the hold in force: it stands
    SharedLimiter(store=states[1], key=KEY, clock=recorder.clock).wait(recorder.sleep)
    assert len(recorder.sleeps) == 1 and 35 < recorder.sleeps[0] <= 40


def test_a_workers_429_from_kizen_holds_back_another_workers_client(
    states: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two clients over real HTTP, each with the limiter of its own worker: the first gets a 429
    with Retry-After 7 and waits it out; the second, which got none, waits it out too before its
    only request."""
    with Sandbox() as box:
        box.faults.use(FaultPlan(retry_after=7))
        box.faults.script(Fault.RATE_LIMITED, method="GET", times=1)
        server = box.serve()
        recorders = (Recorder(), Recorder())
        sent: list[int] = [0, 0]
        clients = []
        for n, (state, recorder) in enumerate(zip(states, recorders, strict=True)):
            http = http_client(server.url)
            http.event_hooks = {"request": [lambda _request, n=n: sent.__setitem__(n, sent[n] + 1)]}
            limiter = SharedLimiter(store=state, key=f"{server.url} {box.world.business.id}", clock=recorder.clock)
            clients.append(
                ActivitiesClient(http, credentials(box), sleep=recorder.sleep, rng=random.Random(1), limiter=limiter)
            )
        try:
            clients[0].team()
            assert sent[0] == 2 and recorders[0].sleeps == [7.0]  # its own 429, waited out, then sent again
            clients[1].team()
        finally:
            for client in clients:
                client.http.close()
    assert sent[1] == 1 and len(recorders[1].sleeps) == 1 and 5 < recorders[1].sleeps[0] <= 7


def test_the_state_failing_never_stops_a_request(url: str, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    state = PostgresStore(url)
    state.close()  # the shared hold can be neither read nor written: the process's own still holds
    limiter = SharedLimiter(store=state, key=KEY, clock=recorder.clock)
    limiter.hold(3)
    limiter.wait(recorder.sleep)
    assert recorder.sleeps == [3]
    assert "not shared with the other workers" in caplog.text and "not read" in caplog.text


def test_a_workers_kizen_client_shares_its_business_pace(url: str, tmp_path: Path) -> None:
    """What a worker's cycle builds (:func:`syncd.service.workers.sync_team`): the config's Kizen
    client, its limiter on the state, under Kizen's base URL and the business id, spaced by the
    config's cap."""
    (tmp_path / "syncd.toml").write_text(
        '[kizen]\nmax_requests_per_second = 4\n[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "{url}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        'internal_domains = ["example.com"]\n'
        '[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "https://dav.invalid/ada/"\n'
    )
    config = load(tmp_path / "syncd.toml")
    state = PostgresStore(url)
    client, close = kizen_client(config, holds=state)
    try:
        assert isinstance(client.limiter, SharedLimiter) and client.limiter.store is state
        assert client.limiter.key == f"http://sandbox.invalid {client.credentials.business_id}"
        assert client.limiter.interval == 0.25
        alone, close_alone = kizen_client(config)
        close_alone()
        assert not isinstance(alone.limiter, SharedLimiter) and alone.limiter.interval == 0.25
    finally:
        close()
        state.close()


def test_a_team_cycle_gives_its_kizen_client_the_states_shared_hold(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's cycle (:func:`syncd.service.workers.sync_team`) builds its Kizen client with the
    state it shares with the other workers as the holds' store."""
    import syncd.wiring

    world = World(tmp_path, Sandbox(), teams={"ada": "sales"})
    world.feed(calendar(vevent("a0", "20261203T090000Z", "Ada call")), "ada")
    path = tmp_path / "config.toml"
    path.write_text(world.config_text().replace(f'state = "{tmp_path / "state.sqlite"}"', f'state = "{url}"'))
    world.box.close()
    built: list[ActivitiesClient] = []
    real = syncd.wiring.kizen_client

    def recorded(*args: Any, **kwargs: Any) -> tuple[ActivitiesClient, Callable[[], None]]:
        client, close = real(*args, **kwargs)
        built.append(client)
        return client, close

    monkeypatch.setattr(syncd.wiring, "kizen_client", recorded)
    report = sync_team(load(path), "sales", clock=lambda: NOW)
    assert report is not None and report.counts() == {"Create": 1}
    (client,) = built
    assert isinstance(client.limiter, SharedLimiter)
    assert isinstance(client.limiter.store, PostgresStore) and client.limiter.store.url == url  # the cycle's state


def test_a_cap_spaces_one_processs_requests() -> None:
    recorder = Recorder()
    limiter = Limiter(recorder.clock, interval=0.5)
    for _ in range(3):
        limiter.wait(recorder.sleep)
    assert recorder.sleeps == [0.5, 0.5]


def test_a_cap_spaces_every_workers_requests_after_the_hold(states: tuple[PostgresStore, PostgresStore]) -> None:
    """Two workers taking turns at two requests a second: each request takes the business's next
    free moment, half a second after the one before (on the database's clock, which the
    recorders' clocks do not move), and none before a hold is over."""
    recorders = (Recorder(), Recorder())
    limiters = [
        SharedLimiter(store=state, key=KEY, clock=recorder.clock, interval=0.5)
        for state, recorder in zip(states, recorders, strict=True)
    ]
    for _ in range(2):
        for limiter, recorder in zip(limiters, recorders, strict=True):
            limiter.wait(recorder.sleep)
    assert len(recorders[0].sleeps) == 1 and 0.7 < recorders[0].sleeps[0] <= 1.0  # its first went at once
    second, fourth = recorders[1].sleeps
    assert 0.2 < second <= 0.5 and 1.2 < fourth <= 1.5
    states[0].hold_kizen("https://kizen.test 8", 10)
    held = SharedLimiter(store=states[1], key="https://kizen.test 8", clock=recorders[1].clock, interval=0.5)
    held.wait(recorders[1].sleep)
    held.wait(recorders[1].sleep)
    assert 9.5 < recorders[1].sleeps[2] <= 10 and 10 < recorders[1].sleeps[3] <= 10.5

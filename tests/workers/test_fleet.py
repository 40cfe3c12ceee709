"""Two ``syncd worker`` processes over 20 sources in 4 teams, on a real PostgreSQL state and the
sandbox over loopback HTTP: every source synced, no duplicate activity, no team run by two
workers at once (from procrastinate's records and from the runs the cycles record), and a worker
killed with SIGKILL mid-cycle has its team taken over.

Nothing waits a fixed time: every wait polls with a generous deadline.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import FaultPlan, Sandbox
from tests.pg import Server
from tests.workers.fleet import Fleet, overlapping, until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fleet(tmp_path: Path, pg_server: Server, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    faults = getattr(request, "param", None)
    url = pg_server.database()  # empty: the first worker migrates it and applies procrastinate's schema
    with Sandbox(data=tmp_path / "sandbox.sqlite", faults=faults) as box:
        server = box.serve()
        fleet = Fleet(tmp_path, box, server.url, url)
        fleet.write()
        try:
            yield fleet
        finally:
            fleet.close()
            pg_server.drop(url)


def assert_one_of_each(fleet: Fleet) -> None:
    """Every activity expected exists once, nothing else does, and no create was sent twice."""
    assert fleet.notes() == fleet.expected()
    assert fleet.box.app.calls["POST"] == sum(fleet.expected().values())


def assert_no_team_ran_twice_at_once(fleet: Fleet) -> None:
    attempts = fleet.attempts()
    assert attempts, "no team cycle ran"
    for lock in {a.lock for a in attempts}:
        mine = [(a.started, a.ended) for a in attempts if a.lock == lock]
        assert overlapping(mine) == [], lock  # procrastinate's record
    by_source: dict[str, list[tuple[object, object]]] = {}
    for source, _status, started, finished in fleet.runs():
        by_source.setdefault(source, []).append((started, finished))
    for source, runs in by_source.items():
        assert overlapping(runs) == [], source  # the cycles' own record  # type: ignore[arg-type]


def test_two_workers_sync_every_team_once_at_a_time_and_duplicate_nothing(fleet: Fleet) -> None:
    fleet.start("one", "--concurrency", "2")
    fleet.start("two", "--concurrency", "2")
    until(lambda: fleet.synced(times=3), what="every source synced three times")
    for name in ("one", "two"):
        assert fleet.stop(name) == 0, fleet.log(name)
    assert_one_of_each(fleet)
    assert_no_team_ran_twice_at_once(fleet)
    assert fleet.job_statuses()["failed"] == 0, fleet.job_statuses()
    # both workers took part, and each team's cycles ran on whichever was free
    teams_by_worker = {name: set(_teams_in(fleet.log(name))) for name in ("one", "two")}
    assert all(teams_by_worker.values()), teams_by_worker
    assert set().union(*teams_by_worker.values()) == {f"t{n}" for n in range(fleet.teams)}
    locks = {a.lock for a in fleet.attempts()}
    assert locks == {f"team/t{n}" for n in range(fleet.teams)}


def _teams_in(log: str) -> list[str]:
    return [line.split("team ", 1)[1].split(":", 1)[0] for line in log.splitlines() if ": team t" in line]


SLOW = FaultPlan(latency=(0.05, 0.15))  # each request: a cycle lasts long enough to be killed in


@pytest.mark.parametrize("fleet", [SLOW], indirect=True, ids=["slow Kizen"])
def test_a_worker_killed_mid_cycle_has_its_team_taken_over_without_duplicates(fleet: Fleet) -> None:
    fleet.start("one", "--stalled-seconds", "3")
    held = until(fleet.team_lock_holders, what="a team cycle under way")
    team, pid = next(iter(held.items()))
    assert pid == fleet.workers["one"].pid
    fleet.start("two", "--stalled-seconds", "3")
    os.kill(pid, signal.SIGKILL)
    fleet.workers["one"].wait(timeout=30)
    until(lambda: fleet.synced(times=2), deadline=180, what="every source synced twice after the kill")
    assert fleet.stop("two") == 0, fleet.log("two")
    assert_one_of_each(fleet)
    assert_no_team_ran_twice_at_once(fleet)
    killed = [a for a in fleet.attempts() if a.lock == f"team/{team}" and a.outcome != "succeeded"]
    assert killed, fleet.attempts()  # the dead worker's attempt, ended by the takeover
    assert Counter(a.outcome for a in killed) <= Counter({"deferred_for_retry": 1, "failed": 1})
    assert "taken over" in fleet.log("two")

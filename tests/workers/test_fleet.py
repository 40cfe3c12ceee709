"""Two ``syncd worker`` processes over 20 sources in 4 teams, on a real PostgreSQL state and the
sandbox over loopback HTTP: every source synced, no duplicate activity, no team run by two
workers at once (from procrastinate's records and from the runs the cycles record), and a worker
killed with SIGKILL mid-cycle has its team taken over.

Nothing waits a fixed time: every wait polls with a generous deadline.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime
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


def assert_no_team_ran_twice_at_once(fleet: Fleet, killed: str | None = None) -> None:
    """From procrastinate's record of each team's jobs, and from the runs the cycles recorded.

    A run the kill cut short (of ``killed``'s sources, one each at most) never finished: its end
    is unknown, so only the finished runs are compared."""
    attempts = fleet.attempts()
    assert attempts, "no team cycle ran"
    for lock in {a.lock for a in attempts}:
        mine = [(a.started, a.ended) for a in attempts if a.lock == lock]
        assert overlapping(mine) == [], lock
    runs: dict[str, list[tuple[datetime, datetime | None]]] = {}
    cut: list[str] = []
    for source, _status, started, finished in fleet.runs():
        if finished is None:
            cut.append(source)
        else:
            runs.setdefault(source, []).append((started, finished))
    assert all(fleet.sources()[s] == killed for s in cut) and len(cut) == len(set(cut)), cut
    for source, intervals in runs.items():
        assert overlapping(intervals) == [], source


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


SLOW = FaultPlan(latency=(0.1, 0.2))  # each request: a first cycle lasts seconds


@pytest.mark.parametrize("fleet", [SLOW], indirect=True, ids=["slow Kizen"])
def test_a_worker_killed_mid_cycle_has_its_team_taken_over_without_duplicates(fleet: Fleet) -> None:
    fleet.concurrency = 1  # one create at a time: the kill lands between two of them
    fleet.write()
    fleet.start("one", "--stalled-seconds", "3")

    def creating() -> tuple[str, int] | None:
        """A team whose cycle holds its lock and has made some of its activities, not all."""
        for team, pid in fleet.team_lock_holders().items():
            made = sum(
                n for note, n in fleet.notes().items() if note.startswith(f"{team} ") or note.startswith(team + "-")
            )
            if 0 < made < 1 + fleet.per_team * fleet.events:
                return team, pid
        return None

    team, pid = until(creating, what="a team cycle part-way through its creates")
    assert pid == fleet.workers["one"].pid
    os.kill(pid, signal.SIGKILL)
    fleet.workers["one"].wait(timeout=30)
    fleet.start("two", "--stalled-seconds", "3")
    until(lambda: fleet.synced(times=2), deadline=180, what="every source synced twice after the kill")
    assert fleet.stop("two") == 0, fleet.log("two")
    assert_one_of_each(fleet)
    assert_no_team_ran_twice_at_once(fleet, killed=team)
    killed = [a for a in fleet.attempts() if a.lock == f"team/{team}" and a.outcome != "succeeded"]
    assert len(killed) == 1, fleet.attempts()  # the dead worker's attempt, ended by the takeover
    assert killed[0].outcome in ("deferred_for_retry", "failed")
    assert "taken over" in fleet.log("two")


@pytest.mark.parametrize("workers", [2, 4])
def test_200_sources_in_20_teams_are_synced_once_each_with_a_worker_killed(
    tmp_path: Path, pg_server: Server, workers: int
) -> None:
    """Item 5's scale: 200 sources in 20 teams (a shared meeting in each), ``workers`` workers,
    the first killed with SIGKILL while it holds a team's lock; the others take its team over."""
    url = pg_server.database()
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        server = box.serve()
        fleet = Fleet(tmp_path, box, server.url, url, teams=20, per_team=10, events=2)
        fleet.write()
        try:
            names = [f"w{n}" for n in range(workers)]
            for name in names:
                fleet.start(name, "--stalled-seconds", "3")
            doomed = fleet.workers[names[0]].pid
            team = until(
                lambda: next((t for t, pid in fleet.team_lock_holders().items() if pid == doomed), None),
                what="the first worker in a team's cycle",
            )
            os.kill(doomed, signal.SIGKILL)
            fleet.workers[names[0]].wait(timeout=30)
            until(lambda: fleet.synced(times=2), deadline=240, what="every source synced twice after the kill")
            for name in names[1:]:
                assert fleet.stop(name) == 0, fleet.log(name)
            assert_one_of_each(fleet)
            assert_no_team_ran_twice_at_once(fleet, killed=team)
            assert any("taken over" in fleet.log(name) for name in names[1:])
        finally:
            fleet.close()
            pg_server.drop(url)

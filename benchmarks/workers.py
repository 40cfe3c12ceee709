"""Workers on one PostgreSQL state: a first sync and a no-change round of many sources, 1, 2, 4 workers.

Run from the project's root, after the README's test install line (PostgreSQL 15's server from
Debian's packages, as the tests use):

    .venv-test/bin/python benchmarks/workers.py [--sources 1000] [--events 100] [--per-team 10]
        [--workers 1,2,4] [--latency 0.05]

For each number of workers: a PostgreSQL server of its own (the tests' :class:`tests.pg.Server`,
on loopback, durability off), the sandbox's server on loopback with every answer ``--latency``
late and one employee per source (so each team polls its own people, as in a real business),
and ``--sources`` ICS file sources in teams of ``--per-team``, each with ``--events`` events of
its own and its team's shared meeting (:class:`tests.workers.fleet.Fleet`). Then ``syncd worker``
processes (one team at a time each) are started and timed:

- first sync: from the workers' start until every source has finished a run;
- no-change round: from then until every source has finished a run that started after it
  (nothing changed: its Kizen requests are counted at the sandbox, writes apart).

Printed per row: seconds, sources per second, creates per second and per worker, the workers'
CPU seconds (their processes') and the sandbox's (this process: it answers every request, so on
a machine of few cores it is where adding workers stops paying).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the project's helpers

from syncd.sandbox import FaultPlan, Sandbox, load_world  # noqa: E402
from syncd.sandbox.world import Employee, World  # noqa: E402
from tests.pg import Server  # noqa: E402
from tests.workers.fleet import Fleet, until  # noqa: E402


@dataclass
class Row:
    workers: int
    first: float
    round: float
    created: int
    requests_in_round: int  # Kizen requests of the no-change round (each team's poll)
    writes_in_round: int
    worker_cpu: float
    sandbox_cpu: float


def world_of(sources: int) -> World:
    """The default seed with one employee per source (``p0@example.com``, ...)."""
    seed = load_world()
    staff = [
        Employee(
            id=uuid.uuid5(uuid.NAMESPACE_DNS, f"p{n}.example.com"),
            first_name="P",
            last_name=str(n),
            email=f"p{n}@example.com",
        )
        for n in range(sources)
    ]
    return World.model_validate(
        {**seed.model_dump(), "employees": [*seed.model_dump()["employees"], *(e.model_dump() for e in staff)]}
    )


def finished_after(fleet: Fleet, mark: datetime) -> Counter[str]:
    """Each source's runs finished ok that started after ``mark``."""
    return Counter(
        source for source, status, started, finished in fleet.runs() if status == "ok" and finished and started > mark
    )


def measure(workers: int, args: argparse.Namespace) -> Row:
    server = Server()
    try:
        url = server.database()
        latency = (args.latency, args.latency)
        with (
            tempfile.TemporaryDirectory() as tmp,
            Sandbox(world_of(args.sources), data=Path(tmp) / "sandbox.sqlite") as box,
        ):
            http = box.serve()
            fleet = Fleet(
                Path(tmp),
                box,
                http.url,
                url,
                teams=args.sources // args.per_team,
                per_team=args.per_team,
                events=args.events,
                owners=tuple(f"p{n}" for n in range(args.sources)),
            )
            fleet.write()
            box.faults.use(FaultPlan(latency=latency))
            cpu = time.process_time()
            began = time.monotonic()
            try:
                for n in range(workers):
                    fleet.start(f"w{n}")
                until(lambda: fleet.synced(times=1), deadline=4 * 3600, what="every source synced once")
                first = time.monotonic() - began
                mark = datetime.now().astimezone()
                created = len(box.service.list_scheduled({}, 0, 10**7)[1])
                calls = Counter(box.app.calls)
                again = time.monotonic()
                until(
                    lambda: all(finished_after(fleet, mark)[name] for name in fleet.sources()),
                    deadline=3600,
                    what="a no-change round",
                )
                round_seconds = time.monotonic() - again
                during = Counter(box.app.calls) - calls
                requests, writes = sum(during.values()), sum(n for method, n in during.items() if method != "GET")
                for name in list(fleet.workers):
                    fleet.stop(name)
            finally:
                fleet.close()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            return Row(
                workers,
                first,
                round_seconds,
                created,
                requests,
                writes,
                children.ru_utime + children.ru_stime,
                time.process_time() - cpu,
            )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--per-team", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    print(
        f"{args.sources} sources of {args.events} events in teams of {args.per_team}, "
        f"{args.latency * 1000:.0f} ms a Kizen answer, one PostgreSQL state"
    )
    print(
        f"{'workers':<8}{'first s':>9}{'sources/s':>10}{'creates/s':>10}{'per worker':>11}"
        f"{'round s':>9}{'requests':>9}{'writes':>7}{'worker CPU s':>13}{'sandbox CPU s':>14}"
    )
    for workers in (int(n) for n in args.workers.split(",")):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        row = measure(workers, args)
        row.worker_cpu -= before.ru_utime + before.ru_stime
        rate = row.created / row.first
        print(
            f"{row.workers:<8}{row.first:>9.1f}{args.sources / row.first:>10.1f}{rate:>10.1f}{rate / workers:>11.1f}"
            f"{row.round:>9.1f}{row.requests_in_round:>9}{row.writes_in_round:>7}{row.worker_cpu:>13.1f}{row.sandbox_cpu:>14.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Whole sync cycles on a 1,000-event Radicale collection into the sandbox.

Run: PYTHONPATH=. python benchmarks/sync_cycle.py [--events N] [--loopback]

Seeds a collection with N events (default 1,000) in one bulk request, then runs ``syncd``'s cycle
(read, poll, plan, apply) three times: a first sync, a no-op re-sync and a re-sync after 10 events
moved. For each: wall time, CalDAV requests (counted at Radicale) and Kizen requests (counted at
the sandbox, by method). Goal: a no-op re-sync makes no Kizen write and one CalDAV request.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the benchmarks' helpers

from benchmarks.processes import caldav_source, write_config  # noqa: E402
from syncd.config import load  # noqa: E402
from syncd.runner import Cycle  # noqa: E402
from syncd.sandbox import Sandbox  # noqa: E402
from syncd.state import StateStore  # noqa: E402
from syncd.wiring import sandbox_client  # noqa: E402
from tests.connectors.radicale import Radicale, bulk, put, quiet, vcalendar, vevent  # noqa: E402
from tests.secretfiles import write_secret  # noqa: E402

USER = "bench"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def start(n: int) -> str:
    return (NOW + timedelta(hours=2 + n)).strftime("%Y%m%dT%H%M%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--loopback", action="store_true", help="reach the sandbox over loopback HTTP")
    args = parser.parse_args()
    quiet()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Radicale(Path(tmp) / "radicale") as server,
        Sandbox(data=Path(tmp) / "sandbox.sqlite") as box,
    ):
        folder = Path(tmp)
        with server.client(USER) as http:
            bulk(
                http,
                f"/{USER}/desk/",
                (vevent(f"e{n}", f"Event {n}", start=start(n)) for n in range(args.events)),
                name="Work",
            )
        write_secret(folder / "password", "unused\n")
        config = load(write_config(folder, caldav_source(f"{server.url}/{USER}/", USER)))
        base = box.serve().url if args.loopback else None
        print(f"{args.events} events; Kizen {'over loopback HTTP' if base else 'in-process'}")
        print(f"{'cycle':<24}{'seconds':>9}{'CalDAV':>8}  Kizen requests")

        def cycle(label: str) -> None:
            state = StateStore(config.sync.state)
            client = sandbox_client(box, base)
            runner = Cycle(config, state, client, clock=lambda: NOW)
            mark, before = server.mark(), Counter(box.app.calls)
            began = time.perf_counter()
            report = runner.run()
            seconds = time.perf_counter() - began
            runner.close()
            client.http.close()
            state.close()
            kizen = Counter(box.app.calls) - before
            writes = sum(kizen[m] for m in ("POST", "PATCH", "PUT", "DELETE"))
            shown = ", ".join(f"{m} {c}" for m, c in sorted(kizen.items())) or "none"
            print(
                f"{label:<24}{seconds:>9.2f}{len(server.since(mark)):>8}  {shown} ({writes} writes; {len(report.outcomes)} actions)"
            )

        cycle("first sync")
        cycle("no-op re-sync")
        with server.client(USER) as http:
            for n in range(10):
                put(http, f"/{USER}/desk/e{n}.ics", vcalendar(vevent(f"e{n}", f"Event {n}", start=start(n + 2000))))
        cycle("10 events moved")


if __name__ == "__main__":
    main()

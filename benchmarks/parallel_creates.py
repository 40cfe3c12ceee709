"""A first sync's creates against a slow Kizen: the sandbox over loopback with injected latency.

Run: PYTHONPATH=. python benchmarks/parallel_creates.py [--events N] [--latency SECONDS]

An ICS feed of N single events (default 1,000), synced for the first time into a fresh sandbox
whose every answer waits ``--latency`` (default 0.05 s), once per ``[kizen] concurrency`` value
(1, 8, 16). Prints the cycle's wall time and creates per second. In turn, a cycle can make at most
1/latency creates a second (20/s at 50 ms); side by side it is bounded by the workers (8 workers:
160/s), the CPU that syncd and the sandbox (one process here) spend on each create, and the state
store's commits. Aim: at least 150 creates/s at 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the benchmarks' helpers

from benchmarks.processes import SANDBOX, ics_source, write_config  # noqa: E402
from syncd.config import load  # noqa: E402
from syncd.runner import Cycle  # noqa: E402
from syncd.sandbox import FaultPlan, Sandbox  # noqa: E402
from syncd.state import StateStore  # noqa: E402
from syncd.wiring import sandbox_client  # noqa: E402

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def feed(count: int) -> str:
    events = "".join(
        f"BEGIN:VEVENT\nUID:e{n}\nDTSTAMP:20260101T000000Z\n"
        f"DTSTART:{(NOW + timedelta(hours=2 + n)):%Y%m%dT%H%M%SZ}\nSUMMARY:Event {n}\nEND:VEVENT\n"
        for n in range(count)
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bench//EN\n{events}END:VCALENDAR\n"


def first_sync(count: int, latency: float, workers: int | None = None) -> tuple[float, int]:
    """One first sync's wall seconds and creates; ``workers`` is ``[kizen] concurrency`` (None: its default)."""
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as box:
        folder = Path(tmp)
        (folder / "desk.ics").write_text(feed(count))
        kizen = SANDBOX if workers is None else f"[kizen]\nconcurrency = {workers}\n{SANDBOX}"
        config = load(write_config(folder, ics_source("desk.ics"), kizen=kizen, sync="horizon_days = 400\n"))
        box.faults.use(FaultPlan(latency=(latency, latency)))
        state = StateStore(config.sync.state)
        client = sandbox_client(box, box.serve().url)
        cycle = Cycle(config, state, client, clock=lambda: NOW)
        began = time.perf_counter()
        report = cycle.run()
        seconds = time.perf_counter() - began
        cycle.close()
        client.http.close()
        state.close()
        return seconds, report.counts()["Create"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    print(f"{args.events} events, {args.latency * 1000:.0f} ms a request, over loopback HTTP")
    print(f"{'concurrency':<13}{'seconds':>9}{'creates':>9}{'creates/s':>11}")
    for workers in (1, 8, 16):
        seconds, created = first_sync(args.events, args.latency, workers)
        print(f"{workers:<13}{seconds:>9.1f}{created:>9}{created / seconds:>11.1f}")


if __name__ == "__main__":
    main()

"""A no-op ``syncd run --once``, whole processes, on an ICS file of N events into the sandbox.

Run: PYTHONPATH=. python benchmarks/noop_cycle.py [--events N] [--runs R] [--code DIR]

Writes a feed of N items (80% single events spread over the window, 20% weekly series), makes a
first sync, then times R no-op runs (nothing changed; the median is printed) and one run after
one event changed. ``--code`` runs another checkout of syncd (say, the commit before remembered
expansions, from ``git archive``) for a before/after comparison. Prints the wall time and, from
the summary lines, the cycle's and the calendar read's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the benchmarks' helpers

from benchmarks.mix import mixed_calendar  # noqa: E402
from benchmarks.processes import ROOT, ics_source, syncd_once, write_config  # noqa: E402


def feed(count: int, now: datetime, changed: int = -1) -> str:
    return mixed_calendar(count, now, {changed: "moved"})


def run_once(folder: Path, code: Path) -> tuple[float, float, float]:
    """One ``run --once``: wall seconds, and the cycle's and the calendar read's from its summary."""
    done = syncd_once(folder, code)
    return done.process.seconds, done.cycle_seconds, done.read_seconds


def shown(label: str, runs: list[tuple[float, float, float]]) -> str:
    wall, cycle, read = (statistics.median(r[i] for r in runs) for i in range(3))
    return f"{label:<18}{wall:>8.2f}{cycle:>8.2f}{read:>8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", type=Path, default=ROOT, help="the syncd checkout to run (default: this one)")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "events.ics").write_text(feed(args.events, now))
        write_config(folder, ics_source("events.ics"))
        print(f"{args.events} events (80% single, 20% weekly series), ICS file, sandbox in-process; code {args.code}")
        print(f"{'':<18}{'wall s':>8}{'cycle s':>8}{'read s':>8}   (medians; cycle and read from its summary)")
        print(shown("first sync", [run_once(folder, args.code)]))
        print(shown(f"no-op (x{args.runs})", [run_once(folder, args.code) for _ in range(args.runs)]))
        (folder / "events.ics").write_text(feed(args.events, now, changed=1))
        print(shown("1 event changed", [run_once(folder, args.code)]))


if __name__ == "__main__":
    main()

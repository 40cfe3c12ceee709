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
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def feed(count: int, now: datetime, changed: int = -1) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for n in range(count):
        weekly = n % 5 == 0
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=(n * 7) % (24 * 58) - 12)
        if weekly:
            start -= timedelta(days=(n % 30))
        summary = f"Event {n}" + (" (moved)" if n == changed else "")
        lines += ["BEGIN:VEVENT", f"UID:bench-{n}", "DTSTAMP:20260101T000000Z", f"DTSTART:{start:%Y%m%dT%H%M%SZ}"]
        lines += ["DURATION:PT30M", f"SUMMARY:{summary}", "ORGANIZER:mailto:ada@example.com"]
        lines += ["RRULE:FREQ=WEEKLY"] if weekly else []
        lines += ["END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def run_once(folder: Path, code: Path) -> tuple[float, float, float]:
    """One ``run --once``: wall seconds, and the cycle's and the calendar read's from its summary."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(folder / "config.toml"), "run", "--once"],
        check=True,
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    cycle = re.search(r"cycle done in ([0-9.]+) s", done.stderr)
    read = re.search(r"read in ([0-9.]+) s", done.stderr)
    return wall, float(cycle.group(1)) if cycle else -1, float(read.group(1)) if read else -1


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
        (folder / "config.toml").write_text(
            '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
            f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\n'
            '[[sources]]\nname = "bench"\ntype = "ics"\nowner = "ada@example.com"\nurl = "events.ics"\n'
        )
        print(f"{args.events} events (80% single, 20% weekly series), ICS file, sandbox in-process; code {args.code}")
        print(f"{'':<18}{'wall s':>8}{'cycle s':>8}{'read s':>8}   (medians; cycle and read from its summary)")
        print(shown("first sync", [run_once(folder, args.code)]))
        print(shown(f"no-op (x{args.runs})", [run_once(folder, args.code) for _ in range(args.runs)]))
        (folder / "events.ics").write_text(feed(args.events, now, changed=1))
        print(shown("1 event changed", [run_once(folder, args.code)]))


if __name__ == "__main__":
    main()

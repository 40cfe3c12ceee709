"""Runs the fault matrix and prints its totals: ``python -m tests.faults [--soak] [--seed N] [NAME ...]``.

Per scenario and seed: the faults injected (by kind), the runs, and what broke (duplicates, lost
changes, logged activities touched, state disagreements, stale failure rows, runs that failed);
then the totals. Exits 1 when anything broke. ``--keep DIR`` leaves each scenario's folder (its
config, sandbox and state files) there to look into.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.faults.harness import Result
from tests.faults.scenarios import CI, SCENARIOS, SOAK

COLUMNS = ("runs", "duplicates", "lost", "touched", "disagreements", "stale_failures", "errors")


def row(result: Result) -> dict[str, int]:
    return {"runs": result.runs, **result.verdict.counts(), "errors": len(result.errors)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"scenarios to run (all of: {', '.join(SCENARIOS)})")
    parser.add_argument("--soak", action="store_true", help="the soak size: 1,000-item calendars, more kills and runs")
    parser.add_argument("--seed", type=int, action="append", help="a seed (repeatable); the size's seeds by default")
    parser.add_argument("--keep", type=Path, help="keep each scenario's folder under this one")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every breach and error")
    options = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # syncd's own warnings about each injected fault
    size = SOAK if options.soak else CI
    seeds = options.seed or list(size.seeds)
    names = options.names or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}")
    root = options.keep or Path(tempfile.mkdtemp(prefix="syncd-faults-"))
    print(f"fault matrix, {size.name} size, seeds {seeds}, in {root}")
    header = f"{'scenario':<26}{'seed':>5} {'s':>5}  " + " ".join(f"{c[:6]:>6}" for c in COLUMNS) + "  faults"
    print(header)
    totals: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    results: list[Result] = []
    started = time.monotonic()
    for name in names:
        for seed in seeds:
            result = SCENARIOS[name](root / name.replace("/", "-") / f"seed-{seed}", size, seed)
            results.append(result)
            counts = row(result)
            totals.update(counts)
            injected.update(result.faults)
            faults = ", ".join(f"{k}={v}" for k, v in sorted(result.faults.items()))
            cells = " ".join(f"{counts[c]:>6}" for c in COLUMNS)
            print(f"{name:<26}{seed:>5} {result.seconds:>5.0f}  {cells}  {faults}", flush=True)
            if options.verbose and not result.ok:
                print("    " + result.describe().replace("\n", "\n    "))
    print("-" * len(header))
    cells = " ".join(f"{totals[c]:>6}" for c in COLUMNS)
    print(f"{'total':<31} {time.monotonic() - started:>5.0f}  {cells}")
    print("faults injected: " + ", ".join(f"{k}={v}" for k, v in sorted(injected.items())))
    print(f"faults injected in all: {sum(injected.values())}")
    for result in results:
        if not result.ok and not options.verbose:
            first = (result.errors + result.verdict.duplicates + result.verdict.lost + result.verdict.touched)[:1]
            print(f"{result.scenario} seed {result.seed}: {first[0] if first else result.verdict.describe()}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""syncd and vdirsyncer side by side on the same Radicale collections, then syncd's own fast paths.

Run from the project's root, after the README's test install line:

    .venv-test/bin/python benchmarks/run.py [--sizes 1000,10000] [--only S1,S2,...] [--repeat 3]

For each size, Radicale on 127.0.0.1 (a free port, its storage in a temporary folder) holds one
collection of that many events, 80% single and 20% weekly series (``benchmarks/mix.py``). syncd
(``syncd run --once`` into the in-process sandbox of ``[kizen.sandbox]``) and vdirsyncer
(``vdirsyncer sync`` into a folder, its filesystem storage) run as whole processes, in pairs one
after the other (syncd, vdirsyncer, syncd, vdirsyncer, ...), ``--repeat`` pairs a scenario, and
the table shows the medians:

- S1 first sync: each from nothing (a new state and sandbox; vdirsyncer's status and folder
  removed and ``vdirsyncer discover`` run, not timed);
- S2 no-op re-sync;
- S3 10 events changed, S4 250 events changed: before each pair the events' summaries are edited
  at the server (those requests are not counted), so both tools sync the same change;
- peak RSS: the largest of each tool's processes at that size (``os.wait4``'s ``ru_maxrss``).

CalDAV requests are counted at Radicale; Kizen requests and writes come from syncd's summary.
Then, at the largest size:

- S5 an ICS file of that many events (the same mix): ``run --once`` after one event changed
  against the first sync, whole processes (one first sync, ``--repeat`` re-syncs);
- S6 the feed of that many activities: its full render (every component, ``--repeat`` times) and
  the daemon's web app on loopback answering a client whose copy is current (304, 200 requests);
- S7 a first sync of that many single events into the sandbox's server on loopback, every answer
  50 ms late, at ``[kizen] concurrency`` 8 (the default) and 16: creates per second (once each).

vdirsyncer is the one this interpreter imports (the test extra has it), else it is installed into
``benchmarks/.venv-vdirsyncer`` on the first run. syncd runs this checkout's code from
``benchmarks/.venv-syncd``, which holds its dependencies alone, as a user's install does (made
on the first run: :func:`benchmarks.processes.syncd_python`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the benchmarks' helpers

from benchmarks.feed_render import http_answers_ms, items  # noqa: E402
from benchmarks.mix import mixed_calendar, mixed_event, mixed_events, uid  # noqa: E402
from benchmarks.parallel_creates import first_sync  # noqa: E402
from benchmarks.processes import (  # noqa: E402
    ROOT,
    Finished,
    SyncdRun,
    caldav_source,
    ics_source,
    syncd_once,
    write_config,
)
from benchmarks.vdirsyncer_side import Vdirsyncer, vdirsyncer_python, vdirsyncer_version  # noqa: E402
from syncd import __version__  # noqa: E402
from syncd.service.feed import ComponentCache, render_feed  # noqa: E402
from tests.connectors.radicale import Radicale, bulk, put, quiet, vcalendar  # noqa: E402
from tests.secretfiles import write_secret  # noqa: E402

USER = "bench"
COLLECTION = f"/{USER}/desk/"
SIDE_BY_SIDE = {"S1": "first sync", "S2": "no-op re-sync", "S3": "10 events changed", "S4": "250 events changed"}
EDITED = {"S3": 10, "S4": 250}
SCENARIOS = (*SIDE_BY_SIDE, "S5", "S6", "S7")
S7_CONCURRENCY = (8, 16)  # the default, whose ceiling at 50 ms is 160/s, and twice it
LATENCY = 0.05


@dataclass
class Runs:
    """One scenario's pairs at one size, and the CalDAV requests each process made."""

    syncd: list[SyncdRun] = field(default_factory=list)
    vdirsyncer: list[Finished] = field(default_factory=list)
    syncd_caldav: list[int] = field(default_factory=list)
    vdirsyncer_caldav: list[int] = field(default_factory=list)


class SideBySide:
    """One size's collection on Radicale, and syncd and vdirsyncer syncing it."""

    def __init__(self, folder: Path, server: Radicale, size: int, python: Path) -> None:
        self.folder, self.server, self.size = folder, server, size
        self.now = datetime.now(UTC)
        with server.client(USER) as http:
            bulk(http, COLLECTION, mixed_events(size, self.now), name="Work")
        self.vdirsyncer = Vdirsyncer(python, folder / "vdirsyncer", f"{server.url}/{USER}/", USER)
        self.syncd_folder = folder
        self.fresh = self.edits = 0

    def pair(self, runs: Runs, label: str, *, first: bool = False) -> None:
        """syncd, then vdirsyncer; a first sync starts each from nothing."""
        if first:
            self._fresh_syncd()
        mark = self.server.mark()
        runs.syncd.append(syncd_once(self.syncd_folder))
        runs.syncd_caldav.append(len(self.server.since(mark)))
        if first:
            self.vdirsyncer.reset()
        mark = self.server.mark()
        runs.vdirsyncer.append(self.vdirsyncer.sync())
        runs.vdirsyncer_caldav.append(len(self.server.since(mark)))
        syncd, vdirsyncer = runs.syncd[-1], runs.vdirsyncer[-1]
        progress(
            f"{self.size} {label} #{len(runs.syncd)}: syncd {syncd.process.seconds:.2f} s "
            f"(its cycle {syncd.cycle_seconds:.2f} s, {syncd.kizen_writes} Kizen writes, {runs.syncd_caldav[-1]} CalDAV), "
            f"vdirsyncer {vdirsyncer.seconds:.2f} s ({runs.vdirsyncer_caldav[-1]} CalDAV, {self.vdirsyncer.items()} files)"
        )

    def edit(self, count: int) -> None:
        """Changes the first ``count`` events' summaries at the server (series among them: every
        fifth), all of them in a smaller collection."""
        self.edits += 1
        with self.server.client(USER) as http:
            for n in range(min(count, self.size)):
                put(http, f"{COLLECTION}{uid(n)}.ics", vcalendar(mixed_event(n, self.now, f"edit {self.edits}")))

    def _fresh_syncd(self) -> None:
        self.fresh += 1
        self.syncd_folder = self.folder / f"syncd-{self.fresh}"
        self.syncd_folder.mkdir()
        write_secret(self.syncd_folder / "password", "unused\n")
        write_config(self.syncd_folder, caldav_source(f"{self.server.url}/{USER}/", USER))


def side_by_side(size: int, wanted: list[str], repeat: int, python: Path) -> dict[str, Runs]:
    """S1 to S4 at one size (a first sync made, not timed, when S1 is not wanted but a later one is)."""
    found: dict[str, Runs] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp, Radicale(Path(tmp) / "radicale") as server:
        pairs = SideBySide(Path(tmp), server, size, python)
        if "S1" not in wanted:
            pairs.pair(Runs(), "setup (first sync, not counted)", first=True)
        for scenario in [s for s in SIDE_BY_SIDE if s in wanted]:
            runs = found[scenario] = Runs()
            for _ in range(repeat):
                if scenario in EDITED:
                    pairs.edit(EDITED[scenario])
                pairs.pair(runs, scenario, first=scenario == "S1")
    return found


def ics_resync(size: int, repeat: int) -> tuple[SyncdRun, list[SyncdRun]]:
    """S5: one first sync of an ICS file, then ``repeat`` runs each after one event changed."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        folder, now = Path(tmp), datetime.now(UTC)
        (folder / "events.ics").write_text(mixed_calendar(size, now))
        write_config(folder, ics_source("events.ics"))
        first = syncd_once(folder)
        progress(f"S5 first sync {first.process.seconds:.2f} s (its cycle {first.cycle_seconds:.2f} s)")
        again = []
        for n in range(repeat):
            (folder / "events.ics").write_text(mixed_calendar(size, now, {1: f"moved {n}"}))
            again.append(syncd_once(folder))
            progress(
                f"S5 one change #{n + 1}: {again[-1].process.seconds:.2f} s (its cycle {again[-1].cycle_seconds:.2f} s)"
            )
        return first, again


def feed_paths(size: int, repeat: int) -> tuple[float, float, float]:
    """S6: the full render's median seconds, and the served feed's full and 304 answers in ms."""
    data = items(size)
    renders = []
    for _ in range(repeat):
        began = time.perf_counter()
        render_feed("team", data, ComponentCache())
        renders.append(time.perf_counter() - began)
    full, not_modified = http_answers_ms(data)
    return statistics.median(renders), full, not_modified


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


def time_cell(runs: Runs | None) -> str:
    if runs is None:
        return "-"
    ours = statistics.median(r.process.seconds for r in runs.syncd)
    theirs = statistics.median(r.seconds for r in runs.vdirsyncer)
    return f"{seconds(ours)} / {seconds(theirs)} = {ratio(ours / theirs)}"


def requests_cell(runs: Runs | None) -> str:
    if runs is None:
        return "-"
    kizen = statistics.median(r.kizen_requests for r in runs.syncd)
    writes = statistics.median(r.kizen_writes for r in runs.syncd)
    caldav = f"{statistics.median(runs.syncd_caldav):g} / {statistics.median(runs.vdirsyncer_caldav):g}"
    return f"{caldav}; Kizen {kizen:g} ({writes:g} writes)"


def rss_cell(found: dict[str, Runs]) -> str:
    if not found:
        return "-"
    ours = max(r.process.peak_mb for runs in found.values() for r in runs.syncd)
    theirs = max(r.peak_mb for runs in found.values() for r in runs.vdirsyncer)
    return f"{ours:.0f} MB / {theirs:.0f} MB"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = [head, ["---"] * len(head), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def progress(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine(python: Path) -> str:
    import radicale

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"syncd {__version__} ({commit}), vdirsyncer {vdirsyncer_version(python)}, Radicale {radicale.VERSION}, "
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs, load average {load} at the start"
    )


def scenarios(text: str) -> list[str]:
    wanted = [s.strip().upper() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return wanted


def sizes(text: str) -> list[int]:
    try:
        found = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"sizes are whole numbers, comma-separated: {text}") from exc
    if not found or min(found) < 1:
        raise argparse.ArgumentTypeError(f"sizes are positive: {text}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=[1000, 10_000], help="events per collection (1000,10000)")
    parser.add_argument("--only", type=scenarios, default=list(SCENARIOS), help="scenarios, e.g. S1,S2,S6 (all)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs (or runs) per scenario, their median shown (3)")
    args = parser.parse_args()
    quiet()
    python = vdirsyncer_python()
    print(machine(python))
    found = {size: side_by_side(size, args.only, args.repeat, python) for size in args.sizes}
    largest = max(args.sizes)
    extra: list[list[str]] = []
    if "S5" in args.only:
        first, again = ics_resync(largest, args.repeat)
        resync = statistics.median(r.process.seconds for r in again)
        extra.append(
            [
                f"S5 ICS file of {largest:,} events: one change / first sync",
                f"{seconds(resync)} / {seconds(first.process.seconds)} = {resync / first.process.seconds:.3f}"
                f" ({statistics.median(r.kizen_writes for r in again):g} / {first.kizen_writes} Kizen writes)",
            ]
        )
    if "S6" in args.only:
        render, full, not_modified = feed_paths(largest, args.repeat)
        extra.append(
            [
                f"S6 feed of {largest:,} activities: full render; served full / 304",
                f"{render * 1000:.0f} ms; {full:.1f} ms / {not_modified:.2f} ms",
            ]
        )
    if "S7" in args.only:
        for workers in S7_CONCURRENCY:
            spent, created = first_sync(largest, LATENCY, workers)
            extra.append(
                [
                    f"S7 first sync of {largest:,} events, {LATENCY * 1000:.0f} ms a Kizen answer, concurrency {workers}",
                    f"{created / spent:.0f} creates/s ({created} creates in {seconds(spent)})",
                ]
            )
    head = ["scenario", *(f"{size:,} events: syncd / vdirsyncer" for size in args.sizes)]
    wanted = [s for s in SIDE_BY_SIDE if s in args.only]
    if wanted:
        print(f"\nwhole processes, medians of {args.repeat} pair(s) run alternately\n")
        rows = [[f"{s} {SIDE_BY_SIDE[s]}", *(time_cell(found[size].get(s)) for size in args.sizes)] for s in wanted]
        rows.append(["peak RSS", *(rss_cell(found[size]) for size in args.sizes)])
        print(table(head, rows))
        print("\nrequests (medians): CalDAV counted at Radicale, syncd / vdirsyncer; Kizen from syncd's summary\n")
        counts = [
            [f"{s} {SIDE_BY_SIDE[s]}", *(requests_cell(found[size].get(s)) for size in args.sizes)] for s in wanted
        ]
        print(table(["scenario", *(f"{size:,} events" for size in args.sizes)], counts))
    if extra:
        print()
        print(table(["syncd alone", "result"], extra))


if __name__ == "__main__":
    main()

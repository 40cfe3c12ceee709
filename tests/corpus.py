"""The real-world corpus: every .ics file shipped in icalendar and recurring_ical_events, synced.

Run: PYTHONPATH=. python -m tests.corpus [--all | --sample N] [--show]

Each file is one ICS source of ONE config (its path as the source's url) over ten years each way,
into the in-process sandbox. Two ``syncd run --once`` are made through the command line; the
totals (files, items synced, quarantined, skipped, by reason) are printed, and what the second
run changed in Kizen. The CI sample caps series at 25 occurrences to stay within its budget; the
whole set keeps the default cap (500).

Every item (a UID of a file, as the ICS connector splits it) is accounted for: synced (an
activity was made for at least one of its occurrences), quarantined or skipped (each with its
reason), or with no occurrence in the window. A file that is not one VCALENDAR fails its source,
with the reason.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import recurring_ical_events
from click.testing import CliRunner, Result

from syncd.calendar.connectors.ics import IcsSource
from syncd.calendar.mapping import load_rules
from syncd.calendar.reading import desire, read_sources
from syncd.cli import cli
from syncd.config import Config, load
from syncd.sandbox import Sandbox, load_world
from syncd.state import StateStore
from syncd.sync.commit import commit_read

ROOT = Path(__file__).resolve().parents[1]
DAYS = 3650  # ten years each way
CI_SAMPLE = 40
CI_SERIES_CAP = 25  # the CI sample's cap per series (the whole set keeps the default, 500)
# Files that stopped a whole run before items were isolated (18 of 258); always in the sample.
KNOWN_BAD = (
    "icalendar/tests/calendars/america_new_york_forward_reference.ics",  # two DTSTARTs
    "icalendar/tests/calendars/created_calendar_with_unicode_fields.ics",  # no DTSTART
    "icalendar/tests/calendars/issue_1050_multiple_calendars.ics",
    "icalendar/tests/calendars/issue_1050_uid_in_description.ics",
    "icalendar/tests/calendars/issue_1081_with_summary.ics",
    "icalendar/tests/calendars/issue_1549_binary_attachment.ics",
    "icalendar/tests/calendars/issue_1561_image_value.ics",
    "icalendar/tests/calendars/issue_322_expected_calendar.ics",
    "icalendar/tests/calendars/pacific_fiji.ics",  # two DTSTARTs
    "icalendar/tests/calendars/rfc_5545_RDATE_example.ics",  # RDATEs (PERIODs) and no DTSTART: KeyError
    "icalendar/tests/calendars/rfc_6868.ics",
    "icalendar/tests/calendars/rfc_7256_multi_value_parameters.ics",
    "icalendar/tests/calendars/rfc_7986_conferences.ics",
    "icalendar/tests/calendars/rfc_7986_image.ics",
    "icalendar/tests/calendars/rfc_9253_gap.ics",
    "icalendar/tests/calendars/rfc_9253_related_to.ics",
    "recurring_ical_events/test/calendars/duplicated_rrule.ics",  # several RRULEs
    "recurring_ical_events/test/calendars/multiple_rrule.ics",
)


def corpus_files() -> list[Path]:
    """Every .ics file in both packages, in a stable order."""
    found: list[Path] = []
    for package in (icalendar, recurring_ical_events):
        found += sorted(Path(package.__file__).parent.rglob("*.ics"))
    return found


def shown(path: Path) -> str:
    """A file's path from its package's folder (``icalendar/tests/...``)."""
    parts = path.parts
    for package in ("icalendar", "recurring_ical_events"):
        if package in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(package) :])
    return path.name


def sample(files: Sequence[Path], size: int) -> list[Path]:
    """A fixed subset: the files known to crash once, then the others chosen by a digest of their name."""
    bad = [f for f in files if shown(f) in KNOWN_BAD]
    rest = sorted((f for f in files if f not in bad), key=lambda f: hashlib.sha256(shown(f).encode()).hexdigest())
    return bad + rest[: max(0, size - len(bad))]


def config_text(files: Sequence[Path], folder: Path, cap: int | None = None) -> str:
    """One ICS source per file, every one Ada's, over ten years each way (``cap``: series_cap).

    ``watch_days`` spans the lookback, so an activity due years ago is not settled as overdue
    by the second run (the corpus asks whether a second run plans anything).
    """
    sources = "".join(
        f'[[sources]]\nname = "{source_name(i, f)}"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{f}"\n'
        for i, f in enumerate(files)
    )
    return (
        f'[kizen.sandbox]\ndata = "{folder / "sandbox.sqlite"}"\n'
        f'[sync]\nstate = "{folder / "state.sqlite"}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        f'internal_domains = ["example.com"]\nzone = "Europe/Berlin"\n'
        f"lookback_days = {DAYS}\nhorizon_days = {DAYS}\nwatch_days = {DAYS + 10}\n"
        + (f"series_cap = {cap}\n" if cap else "")
        + sources
    )


def source_name(index: int, path: Path) -> str:
    return f"f{index:03d}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40]


@dataclass
class Totals:
    """What one corpus run did, item by item."""

    files: int = 0
    items: int = 0
    activities: int = 0
    synced: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    outside: int = 0  # items with no occurrence in the window
    failed_sources: dict[str, str] = field(default_factory=dict)
    failed_actions: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    first: Result | None = None
    second: Result | None = None
    changed_by_second: list[str] = field(default_factory=list)  # activities the second run touched
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [
            f"files                      {self.files:>7}",
            f"items (UIDs)               {self.items:>7}",
            f"  synced                   {self.synced:>7}  ({self.activities} activities created)",
            f"  quarantined              {sum(self.quarantined.values()):>7}",
            *(f"      {n:>5}  {reason}" for reason, n in self.quarantined.most_common()),
            f"  skipped                  {sum(self.skipped.values()):>7}",
            *(f"      {n:>5}  {reason}" for reason, n in self.skipped.most_common()),
            f"  no occurrence in window  {self.outside:>7}",
            f"  unaccounted              {len(self.unaccounted):>7}",
            *(f"      {line}" for line in self.unaccounted),
            f"sources failed             {len(self.failed_sources):>7}",
            *(f"      {name}: {reason}" for name, reason in sorted(self.failed_sources.items())),
            f"actions failed             {len(self.failed_actions):>7}",
            *(f"      {line}" for line in self.failed_actions),
        ]
        if self.first is not None and self.second is not None:
            out.append(f"exit codes                 {self.first.exit_code}, {self.second.exit_code}")
            out.append(f"second run: activities changed {len(self.changed_by_second)}")
        out.append(f"seconds                    {self.seconds:7.1f}")
        return out


def generalised(reason: str) -> str:
    """A reason without what varies per item (hrefs, values), to count them by kind."""
    reason = re.sub(r"also in .*", "also in ...", reason)
    return reason if len(reason) < 110 else reason[:107] + "..."


def run_corpus(files: Sequence[Path], folder: Path, cap: int | None = None) -> Totals:
    """Two ``run --once`` of the corpus through the command line, then every item accounted for."""
    path = folder / "config.toml"
    path.write_text(config_text(files, folder, cap))
    runner = CliRunner()
    began = time.perf_counter()
    first = runner.invoke(cli, ["--config", str(path), "run", "--once"])
    after_first = activities(folder / "sandbox.sqlite")
    second = runner.invoke(cli, ["--config", str(path), "run", "--once"])
    after_second = activities(folder / "sandbox.sqlite")
    totals = account(load(path), files)
    totals.seconds = time.perf_counter() - began
    totals.first, totals.second = first, second
    totals.changed_by_second = sorted(
        key for key in after_first.keys() | after_second.keys() if after_first.get(key) != after_second.get(key)
    )
    return totals


def activities(data: Path) -> dict[str, str]:
    """Every activity in the sandbox's data file, id -> its listed record as JSON."""
    with Sandbox(load_world(None), data=data) as box:
        total, _ = box.service.list_scheduled({}, 0, 1)
        listed = box.service.list_scheduled({}, 0, max(total, 1))[1]
        return {item["id"]: json.dumps(item, sort_keys=True) for item in listed}


def account(config: Config, files: Sequence[Path]) -> Totals:
    """Sorts every item of the corpus: synced, quarantined, skipped or outside the window.

    Reads the calendars again as a run does (the state's stored copies), into a scratch state
    file, so the accounting sees the very occurrences, quarantines and skips the run saw.
    """
    totals = Totals(files=len(files))
    state = StateStore(config.sync.state)
    try:
        pairings = state.pairings()
        paired = {(loc.source, loc.href) for p in pairings for loc in p.locations}
        totals.activities = len(pairings)
        totals.failed_actions = [
            f"{f.source} {f.uid} {f.slot}: {f.reason}" for f in state.failures() if f.kind == "failed"
        ]
        with tempfile.TemporaryDirectory() as scratch:
            again = StateStore(Path(scratch) / "state.sqlite")
            try:

                def connect(source: object) -> IcsSource:
                    return IcsSource(source.name, source.url)  # type: ignore[attr-defined]

                view = read_sources(config, again, connect, datetime.now(UTC), [])
                commit_read(again, view)
                _, skips = desire(config, load_rules(list(config.sync.mappings)), view, {})
                items = {
                    (s.name, href)
                    for s in config.sources
                    for collection in again.collections(s.name)
                    for href in again.resources(s.name, collection)
                }
            finally:
                again.close()
    finally:
        state.close()
    totals.failed_sources = dict(view.failed)
    totals.items = len(items)
    quarantined = {(s, i.uid): r for s, i, r in view.quarantined}
    skipped = {(s, i.uid): r for s, i, r in view.skipped}
    for _, identity, reason in skips:  # a skip names the lead's source: every copy is skipped with it
        for copy in view.occurrences[identity]:
            skipped.setdefault((copy.location.source, copy.location.href), reason)
    seen = {(o.location.source, o.location.href) for copies in view.occurrences.values() for o in copies}
    open_todos = {
        (o.location.source, o.location.href)
        for copies in view.occurrences.values()
        for o in copies
        if not (o.kind == "VTODO" and o.completed)
    }
    for item in sorted(items):
        if item in quarantined:
            totals.quarantined[generalised(quarantined[item])] += 1
        elif item in paired:
            totals.synced += 1
        elif item in skipped:
            totals.skipped[generalised(skipped[item])] += 1
        elif item in seen and item not in open_todos:
            totals.skipped["a to-do completed before syncd saw it open"] += 1
        elif item in seen:
            totals.unaccounted.append(f"{item[0]} {item[1]}: occurrences in the window but no activity")
        else:
            totals.outside += 1
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every file (the default is the CI sample)")
    parser.add_argument("--sample", type=int, default=CI_SAMPLE, help=f"files in the sample (default {CI_SAMPLE})")
    parser.add_argument("--show", action="store_true", help="print both runs' output too")
    args = parser.parse_args(argv)
    files = corpus_files() if args.all else sample(corpus_files(), args.sample)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # the runs' log to this terminal
    with tempfile.TemporaryDirectory() as folder:
        totals = run_corpus(files, Path(folder), None if args.all else CI_SERIES_CAP)
    if args.show and totals.first and totals.second:
        print(totals.first.output, totals.second.output, sep="\n--- second run ---\n")
    print("\n".join(totals.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

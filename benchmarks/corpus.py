"""The real-world corpus totals: every .ics file shipped in icalendar and recurring_ical_events.

Run: PYTHONPATH=. python benchmarks/corpus.py [--all] [--show]

Each file is one ICS source of one config over ten years each way, into the in-process sandbox;
two ``syncd run --once`` are made. Prints files, items synced (activities created), quarantined
and skipped by reason, items with no occurrence in the window, failed sources and actions, and
what the second run changed (aim: nothing, and nothing unaccounted). Without ``--all``, the CI
sample (40 files, series capped at 25). The same as ``python -m tests.corpus``.
"""

from __future__ import annotations

import sys

from tests.corpus import main

if __name__ == "__main__":
    sys.exit(main())

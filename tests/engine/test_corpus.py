"""The real-world corpus: the .ics files shipped in icalendar and recurring_ical_events, synced.

CI syncs a fixed sample (every file that once stopped a whole run, then others chosen by a digest
of their name) with a small series cap; ``pytest --corpus=all`` syncs every file with the default
cap (about five minutes). ``python -m tests.corpus --all`` prints the totals.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from syncd.cli import _LABELS
from tests.corpus import CI_SAMPLE, CI_SERIES_CAP, KNOWN_BAD, corpus_files, run_corpus, sample, shown


def test_every_item_of_the_corpus_is_synced_or_has_a_reason_and_a_second_run_plans_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    everything = request.config.getoption("--corpus") == "all"
    files = corpus_files() if everything else sample(corpus_files(), CI_SAMPLE)
    assert set(KNOWN_BAD) <= {shown(f) for f in files}
    caplog.set_level(logging.INFO)
    totals = run_corpus(files, tmp_path, None if everything else CI_SERIES_CAP)
    report = "\n".join(totals.lines())
    assert totals.first is not None and totals.second is not None
    for result in (totals.first, totals.second):
        assert result.exit_code in (0, 1), result.output[-3000:]
        assert isinstance(result.exception, SystemExit | None)
        assert "Traceback" not in result.output and "unexpected error" not in result.output
    assert [r.getMessage() for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG] == []
    assert totals.unaccounted == [] and totals.failed_actions == [], report
    assert totals.synced > 0 and totals.quarantined and totals.items > 0, report
    # a file that is not one VCALENDAR fails its source, saying so
    assert all("is not iCalendar" in reason for reason in totals.failed_sources.values()), report
    # the second run plans nothing: no action, nothing in Kizen changed, only the same reasons again
    assert totals.changed_by_second == [], report
    second = totals.second.output.splitlines()
    assert not [line for line in second if any(line.startswith(label) for label in _LABELS.values())], report
    assert all(line.startswith(("quarantined: ", "source ")) for line in second), second[:20]
    first_quarantines = sorted(line for line in totals.first.output.splitlines() if line.startswith("quarantined: "))
    assert sorted(line for line in second if line.startswith("quarantined: ")) == first_quarantines
    print(report)  # the totals, with -s

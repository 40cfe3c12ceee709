"""What a cycle's report makes of its failures: the kind of each, Kizen's own line, cleanliness."""

from __future__ import annotations

import logging

import pytest

from syncd.errors import (
    CreateOutcomeUnknown,
    ItemError,
    KizenAuthFailed,
    KizenNotFound,
    KizenRejected,
    KizenUnavailable,
    PreconditionFailed,
)
from syncd.sync.report import Report, failure_kind

OUTAGE = KizenUnavailable("503 Service Unavailable, still after 5 attempts", status=503)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (KizenAuthFailed(status=401, detail="Invalid token."), "auth"),
        (KizenRejected(status=400, detail="due_datetime is required"), "rejected"),
        (KizenNotFound(status=404), "rejected"),
        (OUTAGE, "unavailable"),
        (CreateOutcomeUnknown("POST: the answer was lost"), "unavailable"),
        (PreconditionFailed("/ada/calendar/item.ics"), "precondition"),
        (ItemError("ada", "item", "no activity type 'Demo' in Kizen"), "invalid"),
        (ValueError("anything else"), "unexpected"),
    ],
)
def test_each_failure_has_the_kind_the_metrics_and_summary_name(error: Exception, kind: str) -> None:
    assert failure_kind(error) == kind


def test_a_step_that_could_not_use_kizen_is_told_once_and_makes_the_cycle_unclean(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="syncd")
    report = Report()
    assert report.clean and report.kizen_error is None
    report.kizen_failed("reading the scheduled activities", OUTAGE)
    report.kizen_failed("reading the scheduled activities", KizenAuthFailed(status=401))
    report.kizen_failed("sending the planned changes", KizenAuthFailed(status=401))
    assert [(f.step, f.kind) for f in report.kizen_failures] == [
        ("reading the scheduled activities", "unavailable"),
        ("sending the planned changes", "auth"),
    ]
    assert not report.clean
    assert report.kizen_error == (
        "Kizen not reached while reading the scheduled activities: 503 Service Unavailable, still after 5 attempts"
    )
    warnings = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "syncd.sync.report"]
    assert warnings == [
        (logging.WARNING, f"Kizen: reading the scheduled activities failed: {OUTAGE}"),
        (logging.WARNING, "Kizen: reading the scheduled activities failed: Kizen: 401"),
        (logging.WARNING, "Kizen: sending the planned changes failed: Kizen: 401"),
    ]

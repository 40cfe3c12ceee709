"""The lanes that apply a plan: when sending stops, what a long plan logs, the order outcomes keep.

What an action does is :class:`syncd.sync.apply.Effects`' business (the engine tests); here a
scripted stand-in answers each action, so the scheduling alone is under test.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from syncd.errors import KizenAuthFailed, KizenRejected, KizenUnavailable
from syncd.sync.actions import Action, Create, identity_of
from syncd.sync.lanes import apply_plan
from syncd.sync.report import Outcome, Report
from tests.plans import want

OUTAGE = KizenUnavailable("503 Service Unavailable, still after 5 attempts", status=503)


@dataclass
class _Contacts:
    unknown_contacts: int = 2


@dataclass
class ScriptedEffects:
    """Answers the nth action applied with the nth scripted error (None: it went through)."""

    script: Iterator[Exception | None]
    applied: list[Action] = field(default_factory=list)
    expected: list[Action] = field(default_factory=list)
    abandoned: int = 0
    quiet: bool = False
    payloads: _Contacts = field(default_factory=_Contacts)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, actions: list[Action]) -> None:
        self.expected = list(actions)

    def abandon_unsent(self) -> None:
        self.abandoned += 1

    def apply(self, action: Action) -> Outcome:
        with self._lock:
            self.applied.append(action)
            error = next(self.script, None)
        identity = identity_of(action)
        return Outcome("Create", identity, "ada", ok=error is None, detail=str(error or ""), error=error)


def creates(count: int) -> list[Action]:
    return [Create(want(f"e{n:02d}")) for n in range(count)]


def applied(script: Sequence[Exception | None], count: int, **options: Any) -> tuple[Report, ScriptedEffects]:
    effects = ScriptedEffects(iter(script))
    report = Report()
    apply_plan(creates(count), effects, report, **options)  # type: ignore[arg-type]
    return report, effects


def test_three_unavailable_in_a_row_stop_sending_and_hold_the_rest() -> None:
    report, effects = applied([OUTAGE, OUTAGE, OUTAGE], 10)
    assert len(effects.applied) == 3 and report.held == 7 and len(report.failures) == 3
    (failure,) = report.kizen_failures
    assert (failure.step, failure.kind) == ("sending the planned changes", "unavailable")


def test_an_action_that_goes_through_starts_the_count_again() -> None:
    report, effects = applied([OUTAGE, OUTAGE, None, OUTAGE, OUTAGE, None], 8)
    assert len(effects.applied) == 8 and report.held == 0 and report.kizen_failures == []
    assert len(report.failures) == 4


def test_failures_of_other_kinds_never_stop_sending() -> None:
    rejected = KizenRejected(status=400, detail="due_datetime is required")
    report, effects = applied([rejected] * 5 + [ValueError("odd item")] * 3, 8)
    assert len(effects.applied) == 8 and report.held == 0 and report.kizen_failures == []


def test_credentials_refused_stop_sending_at_once() -> None:
    report, effects = applied([KizenAuthFailed(status=401, detail="Invalid token.")], 5)
    assert len(effects.applied) == 1 and report.held == 4
    assert [f.kind for f in report.kizen_failures] == ["auth"]


def test_a_stop_asked_for_holds_what_was_not_sent() -> None:
    stop = threading.Event()
    stop.set()
    report, effects = applied([], 4, stop=stop)
    assert effects.applied == [] and report.outcomes == []


def test_outcomes_are_reported_in_plan_order_whatever_lane_finished_first() -> None:
    report, effects = applied([None] * 30, 30, workers=4)
    assert [o.identity.uid for o in report.outcomes] == [f"e{n:02d}" for n in range(30)]
    assert len(effects.expected) == 30 and effects.abandoned == 1
    assert report.unknown_contacts == 2


def test_a_long_plan_logs_progress_every_tenth_and_no_line_per_action(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="syncd")
    report, effects = applied([None] * 9 + [OUTAGE] + [None] * 20, 30)
    assert effects.quiet
    lines = [r.getMessage() for r in caplog.records if r.name == "syncd.sync.lanes"]
    assert lines == [
        "3 of 30 actions applied (3 activities created)",
        "6 of 30 actions applied (6 activities created)",
        "9 of 30 actions applied (9 activities created)",
        "12 of 30 actions applied (11 activities created)",
        "15 of 30 actions applied (14 activities created)",
        "18 of 30 actions applied (17 activities created)",
        "21 of 30 actions applied (20 activities created)",
        "24 of 30 actions applied (23 activities created)",
        "27 of 30 actions applied (26 activities created)",
        "30 of 30 actions applied (29 activities created)",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "syncd.sync.lanes")


def test_a_short_plan_logs_no_progress(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="syncd")
    _, effects = applied([None] * 19, 19)
    assert not effects.quiet
    assert [r for r in caplog.records if r.name == "syncd.sync.lanes"] == []
    _, effects = applied([None] * 20, 20)  # twenty is long
    assert effects.quiet and [r for r in caplog.records if r.name == "syncd.sync.lanes"][-1].getMessage() == (
        "20 of 20 actions applied (20 activities created)"
    )


def test_a_long_plan_on_a_terminal_moves_its_bar_once_per_action() -> None:
    moved: list[int] = []
    sizes: list[int] = []

    class Bar:
        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, steps: int) -> None:
            moved.append(steps)

    def progress(size: int) -> Bar:
        sizes.append(size)
        return Bar()

    applied([None] * 25, 25, progress=progress)
    assert sizes == [25] and moved == [1] * 25
    applied([None] * 5, 5, progress=progress)
    assert sizes == [25]  # a short plan gets no bar

"""The plan applied: its actions in lanes by UID, side by side, each lane in plan order.

Actions of one UID (an item, a series, a shared meeting's copies) form a lane and are applied in
plan order, one at a time; lanes run side by side on a bounded pool (``[kizen] concurrency``).
So no two actions ever touch one pairing at once, a series' slots move in order, and Kizen's
writes overlap their wait for its answers. Each action is performed by
:meth:`syncd.sync.apply.Effects.apply`, which commits its outcome as it arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from syncd.errors import KizenAuthFailed, KizenError
from syncd.sync.actions import Action, identity_of
from syncd.sync.apply import Effects
from syncd.sync.report import Outcome, Report, failure_kind

log = logging.getLogger(__name__)

_IN_A_ROW = 3  # this many actions in a row failing with Kizen unavailable: stop sending
_LONG_PLAN = 20  # a plan this long shows progress instead of a line per action


def apply_plan(
    actions: list[Action],
    effects: Effects,
    report: Report,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[int], Any] | None = None,
    workers: int = 1,
) -> None:
    """Applies the plan into ``report``, up to ``workers`` actions at once.

    Actions of one UID (an item, a series, a shared meeting's copies) form a lane and are
    applied in plan order, one at a time; lanes run side by side. So no two actions ever touch
    one pairing at once, a series' slots move in order, and Kizen's writes overlap their wait
    for its answers. Each outcome is committed as it arrives (each action's own transaction;
    the creates' intents are written ahead, a batch in one durable commit: :class:`syncd.sync.apply.Ahead`);
    the report lists them in plan order. The state is shared under one lock
    (:mod:`syncd.state.shared`) and calendar writes are made one at a time.

    Sending stops once Kizen refuses the credentials or keeps failing (``_IN_A_ROW`` actions in
    a row), so an outage costs a few retries, not one per action, and once ``stop`` is set; the
    actions in flight are finished, and what was not applied is ``report.held``. A state store
    failure, or anything that ends the run, stops every lane and is raised here.

    A long plan (a first sync) logs no line per action at INFO: a terminal's ``progress`` bar
    shows it; elsewhere (the daemon, a pipe) one "N of M actions applied" line every 10 % of the
    plan or every 10 seconds, whichever comes first."""
    long = len(actions) >= _LONG_PLAN
    effects.quiet = long
    with progress(len(actions)) if progress is not None and long else nullcontext() as bar:
        applying = _Applying(len(actions), effects, stop, bar)
        effects.expect(actions)
        numbered = list(enumerate(actions))
        lanes = _lanes(numbered) if workers > 1 else [numbered]
        if len(lanes) == 1:
            applying.lane(lanes[0])
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syncd-apply") as pool:
                running = [pool.submit(applying.lane, lane) for lane in lanes]
                try:
                    for future in as_completed(running):
                        future.result()
                except BaseException:
                    applying.halt.set()  # the lanes finish the action in flight and take no more
                    raise
        effects.abandon_unsent()  # not when the run ends in an exception: the journal settles them
    report.outcomes += [outcome for _, outcome in sorted(applying.outcomes, key=lambda taken: taken[0])]
    if applying.failure is not None:
        report.kizen_failed("sending the planned changes", applying.failure)
        report.held = len(actions) - len(applying.outcomes)
    report.unknown_contacts = effects.payloads.unknown_contacts


def _lanes(numbered: list[tuple[int, Action]]) -> list[list[tuple[int, Action]]]:
    """The plan's actions by UID, each lane in plan order, the lanes in order of their first action."""
    lanes: dict[str, list[tuple[int, Action]]] = {}
    for index, action in numbered:
        lanes.setdefault(identity_of(action).uid, []).append((index, action))
    return list(lanes.values())


@dataclass
class _Applying:
    """What the lanes of one plan share: the outcomes so far, the outage count, the halt."""

    planned: int
    effects: Effects
    stop: threading.Event | None
    bar: Any
    outcomes: list[tuple[int, Outcome]] = field(default_factory=list)
    failure: KizenError | None = None  # why sending stopped, when Kizen failed
    halt: threading.Event = field(default_factory=threading.Event)
    _in_a_row: int = 0
    _shown: int = 0
    _shown_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lane(self, lane: list[tuple[int, Action]]) -> None:
        for index, action in lane:
            if self.halt.is_set() or (self.stop is not None and self.stop.is_set()):
                return
            self._took(index, self.effects.apply(action))

    def _took(self, index: int, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append((index, outcome))
            done = len(self.outcomes)
            if self.bar is not None:
                self.bar.update(1)
            elif self.planned >= _LONG_PLAN and (
                done - self._shown >= self.planned / 10
                or time.monotonic() - self._shown_at >= 10
                or done == self.planned
            ):
                created = sum(1 for _, o in self.outcomes if o.kind == "Create" and o.ok)
                log.info("%d of %d actions applied (%d activities created)", done, self.planned, created)
                self._shown, self._shown_at = done, time.monotonic()
            error = outcome.error
            unavailable = error is not None and failure_kind(error) == "unavailable"
            self._in_a_row = self._in_a_row + 1 if unavailable else 0
            if self.failure is None and (
                isinstance(error, KizenAuthFailed) or (isinstance(error, KizenError) and self._in_a_row >= _IN_A_ROW)
            ):
                self.failure = error
                self.halt.set()

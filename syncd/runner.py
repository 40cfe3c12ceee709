"""One sync cycle, wired: read → poll → plan → apply → commit. What ``syncd run --once`` runs and
what the daemon schedules; this module only puts the steps in order.

1. Recover (:mod:`syncd.sync.recovery`): a create or log whose answer was lost is settled
   before anything is sent again.
2. Read the calendars (:mod:`syncd.calendar.reading`) and map them into what they want; a real
   run records the read (:mod:`syncd.sync.commit`), then pairs the imported items found unpaired
   and adopts what a lost state store had paired.
3. Poll Kizen once (:mod:`syncd.sync.poll`).
4. Plan (:func:`syncd.sync.plan.plan`) and hold back what a safety rail stops.
5. Apply (:mod:`syncd.sync.apply`), and commit what the run found and did.

A dry run does 2 to 4 and writes nothing: not the read, the poll's findings or the rails' stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from syncd.calendar.connectors import Source, connect
from syncd.calendar.mapping import load_rules
from syncd.calendar.reading import CalendarView, desire, discoveries, read_sources
from syncd.config import Config, SourceConfig
from syncd.errors import KizenAuthFailed, KizenError
from syncd.kizen import ActivitiesClient
from syncd.model import OccurrenceId
from syncd.state import Pairing, Store
from syncd.sync.actions import Action, Create, Import, View
from syncd.sync.apply import Effects
from syncd.sync.commit import commit_poll, commit_rails, commit_read, finish
from syncd.sync.plan import plan
from syncd.sync.poll import Poll
from syncd.sync.recovery import Safety
from syncd.sync.report import KizenFailure, Report, failure_kind
from syncd.wiring import feed_client

log = logging.getLogger(__name__)

_IN_A_ROW = 3  # this many actions in a row failing with Kizen unavailable: stop sending
_LONG_PLAN = 20  # a plan this long shows progress instead of a line per action


class _RequestCount:
    """An httpx request hook counting the Kizen requests of one cycle (retries too)."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, _request: httpx.Request) -> None:
        self.requests += 1


@dataclass
class Cycle:
    """One sync cycle over a config, its state store and its Kizen client.

    ``connectors`` are the process's, by source name (built by the registry on first use and
    closed by :meth:`close` unless they were handed in); ``http`` is the process's client for
    ICS feeds (made on first use when none is handed in, and then closed by :meth:`close`).
    """

    config: Config
    state: Store
    kizen: ActivitiesClient
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    connectors: dict[str, Source] = field(default_factory=dict)
    http: httpx.Client | None = None
    progress: Callable[[int], Any] | None = None  # a progress bar of that many steps (a terminal's)
    stop: threading.Event | None = None  # set: finish the action in flight, apply no more
    kizen_failures: list[KizenFailure] = field(default_factory=list)  # this cycle's, into its report
    _opened: set[str] = field(default_factory=set)
    _own_http: bool = False

    def run(
        self, *, only: str | None = None, dry_run: bool = False, force_delete: bool = False, reconcile: bool = False
    ) -> Report:
        """One cycle; ``reconcile`` (the daily reconciliation) also finds every source's calendars anew.

        A cycle in which a step could not use Kizen sends nothing more to Kizen: what it planned
        waits for a cycle that sees Kizen whole (``Report.held`` counts it). A cycle that is not a
        dry run ends with its summary lines at INFO (:meth:`Report.log_summary`)."""
        began = time.perf_counter()
        report = Report()
        hooks = self.kizen.http.event_hooks["request"]
        hooks.append(count := _RequestCount())
        try:
            self._run(report, only, dry_run, force_delete, reconcile)
        finally:
            hooks.remove(count)
            report.kizen_requests = count.requests
        if not dry_run:
            report.log_summary(time.perf_counter() - began, only)
        return report

    def _run(self, report: Report, only: str | None, dry_run: bool, force_delete: bool, reconcile: bool) -> None:
        now = self.clock()
        self.kizen_failures = report.kizen_failures
        rules = load_rules(list(self.config.sync.mappings))
        safety = Safety(self.config, self.state, self.kizen, self.clock, self._kizen_failed)
        unsettled = set() if dry_run else safety.settle_journal()
        every = self.state.pairings()  # settled ones too: a retired pairing is never re-created
        pairings = [p for p in every if p.settled is None]
        # read
        calendars = read_sources(self.config, self.state, self._connector, now, only, rediscover=reconcile)
        report.failed_sources, report.notices = dict(calendars.failed), calendars.notices
        report.calendar_requests, report.calendar_seconds = calendars.requests, dict(calendars.seconds)
        report.source_requests = dict(calendars.source_requests)
        desired, skips = desire(self.config, rules, calendars, {p.id: p for p in pairings})  # may quarantine more
        report.quarantined, report.capped = calendars.quarantined, calendars.capped
        if not dry_run:
            commit_read(self.state, calendars, skips)
        # an item syncd imported is its activity's; one made before a lost state store is looked for
        paired, uncreated = safety.pair_imported(desired, every, dry_run=dry_run)
        uncreated |= unsettled
        if not dry_run:
            try:
                paired += safety.adopt(desired, every, now)
            except KizenError as error:  # creating now could duplicate what a lost state store made
                self._kizen_failed("looking for the activities made before the state store was lost", error)
                uncreated |= set(desired)
            safety.settle_imports(calendars)
        if paired:
            every = self.state.pairings()
            pairings = [p for p in every if p.settled is None]
        # poll
        poll = Poll(self.config, self.state, self.kizen, self._kizen_failed)
        importers = poll.importers(discoveries(self.config, self.state, calendars), report.failed_sources)
        kizen = poll.activities(pairings, now, importers, frozenset(p.activity_id for p in every))
        report.outcomes += poll.unread
        if not dry_run:
            commit_poll(self.state, poll)
        # plan
        view = View(
            desired,
            frozenset(calendars.gone),
            kizen,
            every,
            self.state.conflicts(open_only=True),
            now,
            now + self.config.sync.horizon,
            tuple(poll.foreign),
            timedelta(days=self.config.sync.watch_days),
            frozenset(calendars.held),
        )
        actions = [a for a in plan(view) if _planned(a, uncreated, unsettled, calendars, only)]
        rails = safety.rails(actions, pairings, calendars, force=force_delete)
        report.stopped, actions = rails.stopped, rails.actions
        if report.kizen_failures:
            report.held, actions = len(actions), []
        report.actions = actions
        if dry_run:
            return
        # apply, and commit
        commit_rails(self.state, rails)
        runs = {name: self.state.start_run(name) for name in sorted(calendars.read | set(report.failed_sources))}
        writable = {name: c for name, c in self.connectors.items() if not c.read_only}
        effects = Effects(self.config, self.state, self.kizen, writable, self.clock)
        with self.progress(len(actions)) if self.progress and len(actions) >= _LONG_PLAN else nullcontext() as bar:
            self._apply(actions, effects, report, bar)
        report.unknown_contacts = effects.unknown_contacts
        finish(self.state, report, calendars, unsettled, runs)
        self.state.prune(now, self.config.sync.lookback + timedelta(days=self.config.sync.watch_days))

    def _apply(self, actions: list[Action], effects: Effects, report: Report, bar: Any) -> None:
        """Applies the plan in order; stops sending once Kizen refuses the credentials or keeps
        failing (``_IN_A_ROW`` actions in a row), so an outage costs a few retries, not one per action.

        A long plan (a first sync) logs no line per action at INFO: a terminal shows its progress
        bar; elsewhere (the daemon, a pipe) one "N of M actions applied" line every 10 % of the plan
        or every 10 seconds, whichever comes first."""
        in_a_row = 0
        long = len(actions) >= _LONG_PLAN
        effects.quiet = long
        shown, shown_at = 0, time.monotonic()
        for done, action in enumerate(actions, start=1):
            if self.stop is not None and self.stop.is_set():
                break
            outcome = effects.apply(action)
            report.outcomes.append(outcome)
            if bar is not None:
                bar.update(1)
            elif long and (
                done - shown >= len(actions) / 10 or time.monotonic() - shown_at >= 10 or done == len(actions)
            ):
                created = sum(1 for o in report.outcomes if o.kind == "Create" and o.ok)
                log.info("%d of %d actions applied (%d activities created)", done, len(actions), created)
                shown, shown_at = done, time.monotonic()
            error = outcome.error
            in_a_row = in_a_row + 1 if error is not None and failure_kind(error) == "unavailable" else 0
            if isinstance(error, KizenAuthFailed) or (isinstance(error, KizenError) and in_a_row >= _IN_A_ROW):
                self._kizen_failed("sending the planned changes", error)
                report.held = len(actions) - done
                break

    def _kizen_failed(self, step: str, error: KizenError) -> None:
        """Notes a step of this cycle that could not use Kizen (once per step)."""
        log.warning("Kizen: %s failed: %s", step, error)
        if all(f.step != step for f in self.kizen_failures):
            self.kizen_failures.append(KizenFailure(step, failure_kind(error), str(error)))

    def _connector(self, source: SourceConfig) -> Source:
        if source.name not in self.connectors:
            if self.http is None:
                self.http, self._own_http = feed_client(), True
            self.connectors[source.name] = connect(source, self.http)
            self._opened.add(source.name)
        return self.connectors[source.name]

    def close(self) -> None:
        """Closes what this cycle opened (connectors and a client it was handed stay open for their owner)."""
        for name in self._opened:
            self.connectors[name].close()
        if self.http is not None and self._own_http:
            self.http.close()


def _planned(
    action: Action,
    uncreated: set[OccurrenceId],
    unsettled: set[OccurrenceId],
    calendars: CalendarView,
    only: str | None,
) -> bool:
    """An action the cycle may take: no create whose activity may exist already (an unsettled
    intent, adoption not done), nothing for a pairing whose intent is unsettled or whose lead
    source was not read (or ``--source`` names another)."""
    if isinstance(action, Import):
        return True
    if isinstance(action, Create):
        return action.desired.id not in uncreated
    return action.pairing.id not in unsettled and _in_scope(action.pairing, calendars, only)


def _in_scope(pairing: Pairing, calendars: CalendarView, only: str | None) -> bool:
    """A pairing is planned only when its lead source was read (or ``--source`` names it)."""
    if pairing.lead is None:
        return True
    if only is not None and pairing.lead.source != only:
        return False
    return pairing.lead.source not in calendars.failed

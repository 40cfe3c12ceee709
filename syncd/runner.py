"""One sync cycle, wired: read → poll → plan → apply → commit. What ``syncd run --once`` runs and
what the daemon schedules; this module only puts the steps in order.

1. Recover (:mod:`syncd.sync.recovery`): a create or log whose answer was lost is settled
   before anything is sent again.
2. Read the calendars (:mod:`syncd.calendar.reading`) and map them into what they want; a real
   run records the read (:mod:`syncd.sync.commit`), then pairs the imported items found unpaired
   and adopts what a lost state store had paired.
3. Poll Kizen once (:mod:`syncd.sync.poll`).
4. Plan (:func:`syncd.sync.plan.plan`): every decision, the safety rails and what this cycle
   may not touch (an unsettled intent, an unread source, a Kizen that failed) included.
5. Apply (:mod:`syncd.sync.apply`), and commit what the run found and did.

A dry run does 2 to 4 and writes nothing: not the read, the poll's findings or the rails' stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from syncd.calendar.connectors import Source, connect
from syncd.calendar.mapping import load_rules
from syncd.calendar.reading import CalendarView, desire, discoveries, read_sources
from syncd.config import Config, SourceConfig
from syncd.kizen import ActivitiesClient
from syncd.state import Pairing, Store
from syncd.state.shared import shared
from syncd.sync.actions import Guard, View, covered
from syncd.sync.apply import Effects
from syncd.sync.commit import commit_poll, commit_rails, commit_read, finish
from syncd.sync.lanes import apply_plan
from syncd.sync.plan import plan
from syncd.sync.poll import Poll
from syncd.sync.recovery import Recovery
from syncd.sync.report import Report
from syncd.wiring import feed_client

log = logging.getLogger(__name__)


class _RequestCount:
    """An httpx request hook counting the Kizen requests of one cycle (retries too, from every worker)."""

    def __init__(self) -> None:
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, _request: httpx.Request) -> None:
        with self._lock:
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
    skip: frozenset[str] = frozenset()  # sources not read this cycle (the daemon backs off from them)
    team: str | None = None  # a worker's team cycle: its marks kept apart from other teams' (see :class:`Recovery`)
    common: bool = True  # also keeps what belongs to no source: pairings without a lead, pruning
    _opened: set[str] = field(default_factory=set)
    _own_http: bool = False

    def run(
        self,
        *,
        only: str | Collection[str] | None = None,
        dry_run: bool = False,
        force_delete: bool = False,
        reconcile: bool = False,
    ) -> Report:
        """One cycle; ``reconcile`` (the daily reconciliation) also finds every source's calendars anew.

        ``only`` names one source (``--source``) or a team's sources: the cycle reads, settles,
        polls and plans only what they lead, so cycles of other sources may run beside it (a
        worker's team, :mod:`syncd.service.workers`). Whatever no source leads any more (a
        pairing whose calendar copies are all gone) and pruning are left to the cycles that
        ``common`` says keep them.

        A cycle in which a step could not use Kizen sends nothing more to Kizen: what it planned
        waits for a cycle that sees Kizen whole (``Report.held`` counts it). A cycle that is not a
        dry run ends with its summary lines at INFO (:meth:`Report.log_summary`)."""
        began = time.perf_counter()
        report = Report()
        scope = None if only is None else frozenset([only] if isinstance(only, str) else only)
        hooks = self.kizen.http.event_hooks["request"]
        hooks.append(count := _RequestCount())
        try:
            self._run(report, scope, dry_run, force_delete, reconcile)
        finally:
            hooks.remove(count)
            report.kizen_requests = count.requests
        if not dry_run:
            report.log_summary(time.perf_counter() - began, scope)
        return report

    def _run(
        self, report: Report, only: frozenset[str] | None, dry_run: bool, force_delete: bool, reconcile: bool
    ) -> None:
        now, sync = self.clock(), self.config.sync
        recovery = Recovery(
            self.config, self.state, self.kizen, self.clock, report.kizen_failed, only, self.common, self.team
        )
        unsettled = set() if dry_run else recovery.settle_journal()
        located = self._pairings(only)
        recovery.warn_split_meetings(located)
        # read
        calendars = read_sources(
            self.config,
            self.state,
            self._connector,
            now,
            [p for p in located if p.settled is None],
            only,
            rediscover=reconcile,
            skip=self.skip,
        )
        report.read(calendars)
        every = located if only is None else self._pairings(only, calendars)
        rules = load_rules(list(sync.mappings))
        open_pairings = {p.id: p for p in every if p.settled is None}
        desired, skips = desire(self.config, rules, calendars, open_pairings)  # may quarantine more
        if not dry_run:
            commit_read(self.state, calendars, skips)
        paired, uncreated = recovery.pair_found(desired, every, calendars, now, dry_run=dry_run)
        if paired:
            every = self._pairings(only, calendars)
        # poll
        poll = Poll(self.config, self.state, self.kizen, report.kizen_failed)
        found = discoveries(self.config, self.state, calendars)
        importers = poll.importers({n: d for n, d in found.items() if only is None or n in only}, report.failed_sources)
        opened = [p for p in every if p.settled is None and covered(p.lead_source, only, self.common)]
        kizen = poll.activities(opened, now, importers)
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
            now + sync.horizon,
            tuple(poll.foreign),
            timedelta(days=sync.watch_days),
            frozenset(calendars.held),
            uncreated=frozenset(uncreated | unsettled),
            unsettled=frozenset(unsettled),
            unread=frozenset(calendars.failed) | self.skip,
            only=only,
            unled=self.common,
            guard=Guard.of(self.config, self.state.rails(), calendars.read, calendars.emptied, force=force_delete),
            kizen_failed=bool(report.kizen_failures),
        )
        decided = plan(view)
        report.actions, report.stopped, report.held = decided.actions, decided.stopped, decided.held
        if dry_run:
            return
        # apply, and commit
        commit_rails(self.state, decided)
        runs = {name: self.state.start_run(name) for name in sorted(calendars.read | set(report.failed_sources))}
        writable = {name: c for name, c in self.connectors.items() if not c.read_only}
        effects = Effects(self.config, shared(self.state), self.kizen, writable, self.clock)
        workers = self.config.kizen.concurrency
        apply_plan(decided.actions, effects, report, stop=self.stop, progress=self.progress, workers=workers)
        finish(self.state, report, calendars, unsettled, runs)
        if self.common:
            self.state.prune(now, sync.lookback + timedelta(days=sync.watch_days))

    def _pairings(self, only: frozenset[str] | None, calendars: CalendarView | None = None) -> list[Pairing]:
        """The pairings this cycle plans from, settled ones too (a retired pairing is never made
        again). A whole cycle takes every one; a cycle of some sources takes theirs, and once
        read, every pairing of the items it read (:meth:`~syncd.state.protocol.Pairings.pairings_for`),
        so a team's cycle costs what the team holds, not what the business holds."""
        if only is None:
            return self.state.pairings()
        uids = {identity.uid for identity in calendars.occurrences} if calendars is not None else set()
        return self.state.pairings_for(only, uids, unled=self.common)

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

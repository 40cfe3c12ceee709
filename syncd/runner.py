"""One sync cycle, wired: what ``syncd run --once`` runs and what the daemon schedules.

1. Settle the journal (:mod:`syncd.safety`): a create or log whose answer was lost is looked for
   in Kizen (the owner's activities around that due time, same type, then each candidate's
   provenance line) before anything is sent again.
2. Read the calendars (:mod:`syncd.calendars`) and map them into what they want.
3. Poll Kizen once: the open scheduled activities of the employees syncd watches, over the span
   its open pairings cover; a paired activity missing from the list is read with one GET.
4. Plan (:func:`syncd.engine.plan`), hold back what a safety rail stops, apply the rest.

Between 2 and 3, imported items found unpaired are paired and a source not yet rebuilt after
a lost state store is adopted (:mod:`syncd.safety`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from syncd.activities import ActivitiesClient, Credentials, http_client
from syncd.calendars import CalendarView, Connector, current_discovery, desire, read_sources
from syncd.config import CalDAVSourceConfig, Config, FeedConfig, SourceConfig
from syncd.connectors import WritableSource
from syncd.connectors.caldav import CalDAVSource
from syncd.connectors.ics import IcsSource
from syncd.effects import PROVENANCE, Effects, Outcome, imported_uid
from syncd.engine import Action, Create, Foreign, Import, KizenActivity, View, plan
from syncd.errors import KizenAuthFailed, KizenError, KizenNotFound
from syncd.feed import FeedItem
from syncd.mapping import load_rules
from syncd.model import OccurrenceId
from syncd.report import KizenFailure, failure_kind
from syncd.report import Report as Report  # where callers have always found it
from syncd.safety import Safety
from syncd.state import Pairing, StateStore
from syncd.status import SKIPPED

if TYPE_CHECKING:
    from syncd.sandbox import Sandbox

log = logging.getLogger(__name__)

_SLACK = timedelta(seconds=1)  # Kizen's list bounds may be exclusive: widen them
_MANY_GETS = 3  # this many failed reads of paired activities is Kizen failing, not those activities
_IN_A_ROW = 3  # this many actions in a row failing with Kizen unavailable: stop sending
_LONG_PLAN = 20  # a plan this long shows progress instead of a line per action


class _RequestCount:
    """An httpx request hook counting the Kizen requests of one cycle (retries too)."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, _request: httpx.Request) -> None:
        self.requests += 1


def kizen_client(config: Config) -> tuple[ActivitiesClient, Callable[[], None]]:
    """The Kizen client of this config, and how to close it: the real service, or the sandbox."""
    settings = config.kizen
    if settings.sandbox is not None:
        from syncd.sandbox import Sandbox, load_world

        settings.sandbox.data.parent.mkdir(parents=True, exist_ok=True)
        box = Sandbox(load_world(settings.sandbox.seed), data=settings.sandbox.data)
        client = sandbox_client(box)

        def close_sandbox() -> None:
            client.http.close()
            box.close()

        return client, close_sandbox
    http = http_client(settings.base_url.rstrip("/"))
    assert settings.business_id and settings.user_id  # checked on load
    return ActivitiesClient(http, Credentials(settings.api_key(), settings.business_id, settings.user_id)), http.close


def sandbox_client(box: Sandbox, url: str | None = None, **options: Any) -> ActivitiesClient:
    """A client of the sandbox: in-process, or over loopback HTTP at ``url``; the caller closes it."""
    http = http_client(url) if url else http_client("http://sandbox.invalid", transport=box.transport())
    world = box.world
    credentials = Credentials(SecretStr(world.business.api_key), str(world.business.id), str(world.api_user.id))
    return ActivitiesClient(http, credentials, **options)


def connect(source: SourceConfig, http: httpx.Client) -> Connector:
    """The connector of one configured source."""
    if isinstance(source, CalDAVSourceConfig):
        return CalDAVSource(
            source.name,
            source.url,
            username=source.username,
            password=source.password(),
            collections=source.collections,
        )
    return IcsSource(source.name, source.url, http=http, max_bytes=source.max_bytes)


@dataclass
class Cycle:
    """One sync cycle over a config, its state store and its Kizen client."""

    config: Config
    state: StateStore
    kizen: ActivitiesClient
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    connectors: dict[str, Connector] = field(default_factory=dict)
    feeds: httpx.Client | None = None  # the one client ICS feeds are fetched with
    foreign: list[Foreign] = field(default_factory=list)
    _opened: set[str] = field(default_factory=set)
    progress: Callable[[int], Any] | None = None  # a progress bar of that many steps (a terminal's)
    stop: threading.Event | None = None  # set: finish the action in flight, apply no more
    kizen_failures: list[KizenFailure] = field(default_factory=list)  # this cycle's, into its report

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
        unsettled: set[OccurrenceId] = set()
        safety = Safety(self.config, self.state, self.kizen, self.clock, self._kizen_failed)
        if not dry_run:
            unsettled = safety.settle_journal()
        every = self.state.pairings()  # settled ones too: a retired pairing is never re-created
        pairings = [p for p in every if p.settled is None]
        calendars = read_sources(self.config, self.state, self._connector, pairings, now, only, rediscover=reconcile)
        report.failed_sources, report.notices = dict(calendars.failed), calendars.notices
        report.calendar_requests = calendars.requests
        report.source_requests = dict(calendars.source_requests)
        report.calendar_seconds = dict(calendars.seconds)
        by_id = {p.id: p for p in pairings}
        desired, skips = desire(self.config, rules, calendars, by_id)  # may quarantine more
        if not dry_run:
            self._record_skips(calendars, skips)
        report.quarantined, report.capped = calendars.quarantined, calendars.capped
        self._record_items(calendars)
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
        importers = self.importers(report.failed_sources)
        kizen = self.poll(pairings, now, importers, frozenset(p.activity_id for p in every), report.outcomes)
        conflicts = self.state.conflicts(open_only=True)
        window_end = now + self.config.sync.horizon
        watch = timedelta(days=self.config.sync.watch_days)
        view = View(
            desired,
            frozenset(calendars.gone),
            kizen,
            every,
            conflicts,
            now,
            window_end,
            tuple(self.foreign),
            watch,
            frozenset(calendars.held),
        )
        actions = plan(view)
        actions = [
            a
            for a in actions
            if isinstance(a, Import)
            or (
                a.desired.id not in uncreated
                if isinstance(a, Create)
                else a.pairing.id not in unsettled and _in_scope(a.pairing, calendars, only)
            )
        ]
        actions = safety.rails(
            actions, pairings, calendars, force=force_delete, dry_run=dry_run, stopped=report.stopped
        )
        if report.kizen_failures:
            report.held, actions = len(actions), []
        report.actions = actions
        if dry_run:
            return
        runs = {name: self.state.start_run(name) for name in sorted(calendars.read | set(report.failed_sources))}
        effects = Effects(self.config, self.state, self.kizen, self._caldav(), self.clock)
        with self.progress(len(actions)) if self.progress and len(actions) >= _LONG_PLAN else nullcontext() as bar:
            self._apply(actions, effects, report, bar)
        report.unknown_contacts = effects.unknown_contacts
        self.state.record_component("kizen", report.kizen_error)
        if not report.kizen_failures:
            self._clear_settled_failures(report, calendars, unsettled)
        for name, run in runs.items():
            mine = [o for o in report.outcomes if o.source == name]
            errors = [f"{o.identity.uid} {o.identity.slot}: {o.detail}".strip() for o in mine if not o.ok]
            if name in report.failed_sources:
                errors.insert(0, report.failed_sources[name])
            if report.kizen_error:
                errors.insert(0, report.kizen_error)
            failed = name in report.failed_sources or report.kizen_failures
            status = "failed" if failed else "stopped" if name in report.stopped else "ok"
            self.state.finish_run(run, status, dict(Counter(o.kind for o in mine if o.ok and o.changed)), errors)

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

    def _record_skips(self, calendars: CalendarView, skips: list[tuple[str, OccurrenceId, str]]) -> None:
        """Remembers, for each source read in full, how many items its mapping rules skipped and
        why (``syncd status`` shows them)."""
        for name in calendars.read:
            counts = Counter(reason for source, _identity, reason in skips if source == name)
            self.state.remember(SKIPPED, name, json.dumps(dict(sorted(counts.items()))))

    def _kizen_failed(self, step: str, error: KizenError) -> None:
        """Notes a step of this cycle that could not use Kizen (once per step)."""
        log.warning("Kizen: %s failed: %s", step, error)
        if all(f.step != step for f in self.kizen_failures):
            self.kizen_failures.append(KizenFailure(step, failure_kind(error), str(error)))

    def _clear_settled_failures(self, report: Report, calendars: CalendarView, unsettled: set[OccurrenceId]) -> None:
        """Forgets the failed items this cycle left in step: a failure is kept only while an action
        for it still fails or waits (or its create is unsettled); its source must have been read."""
        waiting = {o.identity for o in report.failures} | unsettled
        applied = {o.identity for o in report.outcomes}
        waiting |= {_identity(a) for a in report.actions if _identity(a) not in applied}
        for failure in self.state.failures():
            identity = OccurrenceId(failure.uid, failure.slot)
            if failure.kind == "failed" and failure.source in calendars.read and identity not in waiting:
                self.state.clear_failure(failure.source, identity)

    # --- reading ---------------------------------------------------------------------------------

    def _connector(self, source: SourceConfig) -> Connector:
        if source.name not in self.connectors:
            if self.feeds is None:
                self.feeds = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
            self.connectors[source.name] = connect(source, self.feeds)
            self._opened.add(source.name)
        return self.connectors[source.name]

    def close(self) -> None:
        """Closes what this cycle opened (connectors it was handed stay open for their owner)."""
        for name, connector in self.connectors.items():
            if name in self._opened and not isinstance(connector, IcsSource):
                connector.close()
        if self.feeds is not None:
            self.feeds.close()

    def _caldav(self) -> dict[str, WritableSource]:
        return {name: c for name, c in self.connectors.items() if not isinstance(c, IcsSource)}

    def _record_items(self, calendars: CalendarView) -> None:
        """Records this cycle's quarantined items, and forgets those of a source read in full that
        are no longer quarantined (fixed, or gone from the calendar)."""
        now = {(source, identity) for source, identity, _ in calendars.quarantined}
        for failure in self.state.failures():
            identity = OccurrenceId(failure.uid, failure.slot)
            if (
                failure.kind == "quarantined"
                and failure.source in calendars.read
                and (failure.source, identity) not in now
            ):
                self.state.clear_failure(failure.source, identity)
        for source, identity, reason in calendars.quarantined:
            self.state.record_failure(source, identity, "quarantined", reason)

    def poll(
        self,
        pairings: Iterable[Pairing],
        now: datetime,
        importers: dict[str, tuple[str, str]],
        paired: frozenset[str] = frozenset(),
        outcomes: list[Outcome] | None = None,
    ) -> dict[str, KizenActivity]:
        """Kizen's side of every open pairing: one paged list, and a GET for each one missing.

        ``importers`` maps the employee id of each importing source's owner to (source,
        collection): their activities are listed too, and those not in ``paired`` (every
        activity syncd ever paired, settled ones included) are kept in :attr:`foreign`.

        A failed list is a Kizen failure of the cycle (nothing is returned: the plan decides
        nothing on half a view). A failed GET fails its item alone (an outcome in ``outcomes``);
        ``_MANY_GETS`` of them, or refused credentials, are a Kizen failure instead. A 404 means
        deleted in Kizen, not a failure.
        """
        pairings = list(pairings)
        self.foreign = []
        if not pairings and not importers:
            return {}
        watched = sorted(
            {p.kizen_seen["employee_id"] for p in pairings if p.kizen_seen.get("employee_id")} | set(importers)
        )
        start = min([p.due for p in pairings] + [now - self.config.sync.lookback]) - _SLACK
        end = max([now + self.config.sync.horizon] + [p.due for p in pairings]) + _SLACK
        seen: dict[str, KizenActivity] = {}
        try:
            for item in self.kizen.list_scheduled(completed=False, employee_ids=watched, from_date=start, to_date=end):
                employee = str(item.employee.id) if item.employee else None
                seen[str(item.id)] = KizenActivity(str(item.id), item.due_datetime, employee, item.completed)
                if (
                    employee in importers
                    and str(item.id) not in paired
                    and item.due_datetime <= now + self.config.sync.horizon
                ):
                    self._consider_import(str(item.id), *importers[employee])
        except KizenError as error:
            self._kizen_failed("reading the scheduled activities", error)
            self.foreign = []
            return {}
        unread: list[tuple[Pairing, KizenError]] = []
        for pairing in pairings:
            if pairing.activity_id in seen:
                continue
            try:
                activity = self.kizen.get(pairing.activity_id)
            except KizenNotFound:
                seen[pairing.activity_id] = KizenActivity(pairing.activity_id, pairing.due, None, deleted=True)
                continue
            except KizenError as error:
                log.warning("Kizen: cannot read activity %s: %s", pairing.activity_id, error)
                unread.append((pairing, error))
                if isinstance(error, KizenAuthFailed) or len(unread) >= _MANY_GETS:
                    self._kizen_failed(f"reading the paired activities ({len(unread)} failed)", error)
                    return {}
                continue
            seen[pairing.activity_id] = KizenActivity(
                pairing.activity_id,
                activity.due_datetime,
                str(activity.employee.id) if activity.employee else None,
                completed=activity.completed,
                logged_activity_id=str(activity.logged_activity_id) if activity.logged_activity_id else None,
            )
        for pairing, failure in unread:
            source = pairing.lead.source if pairing.lead else ""
            detail = f"cannot read activity {pairing.activity_id}: {failure}"
            self.state.record_failure(source, pairing.id, "failed", detail)
            if outcomes is not None:
                outcomes.append(Outcome("Read", pairing.id, source, ok=False, detail=detail, error=failure))
        return seen

    def _consider_import(self, activity_id: str, source: str, collection: str) -> None:
        """Reads an unpaired activity once; one syncd did not make is imported into the calendar."""
        try:
            activity = self.kizen.get(activity_id)
        except KizenNotFound:
            return  # deleted between the list and this read: nothing to import
        if activity.note.rstrip().rsplit("\n", 1)[-1].startswith(PROVENANCE):
            return  # syncd made it; its pairing is settled or lost, and adoption owns that case
        lines = activity.note.strip().splitlines()
        self.foreign.append(
            Foreign(
                activity_id=activity_id,
                due=activity.due_datetime,
                summary=lines[0] if lines else activity.activity_object.name,
                description="\n".join(lines[1:]).strip(),
                minutes=activity.activity_object.calendar_sync_duration or 30,
                source=source,
                collection=collection,
            )
        )

    def importers(self, failed: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
        """Employee id of each importing CalDAV source's owner -> (source, collection URL).

        The collection is the one its read found under its present config: a source whose
        config changed imports again once a read has found its calendars anew. A source whose
        import collection matches none of its calendars fails (into ``failed``) alone; Kizen
        failing to list the team is a Kizen failure of the cycle.
        """
        found: dict[str, tuple[str, str]] = {}
        for source in self.config.sources:
            if not (isinstance(source, CalDAVSourceConfig) and source.import_from_crm and source.import_collection):
                continue
            discovery = current_discovery(self.state, source)
            if discovery is None:
                continue  # not found under its present config yet: its next read finds it
            url = discovery.import_collection
            if not url:
                wanted = source.import_collection
                reason = f"cannot import from Kizen: import_collection {wanted!r} matches none of its calendars"
                log.warning("source %s: %s", source.name, reason)
                if failed is not None:
                    failed.setdefault(source.name, reason)
                continue
            try:
                employee = self._employee_of(source.owner)
            except KizenError as error:
                self._kizen_failed("looking up the owners of the sources that import", error)
                break
            if employee:
                found[employee] = (source.name, url)
        return found

    def _employee_of(self, email: str) -> str | None:
        """The employee id of an email, from the state or (once) Kizen's team."""
        employee = self.state.lookup("employee", email.lower())
        if employee is None:
            for person in self.kizen.team():
                self.state.remember("employee", person.email.lower(), str(person.id))
            employee = self.state.lookup("employee", email.lower())
        return employee or None

    # --- the feed -------------------------------------------------------------------------------

    def _all_day(self, feed: FeedConfig, pairing: Pairing | None, due: datetime) -> tuple[date | None, int, int | None]:
        """An activity's all-day day, span in days and length in minutes, for the feed.

        A timed item: no day, its own length. An all-day one: its day in its source's zone (Kizen
        may have moved the due time: the day follows it) and its span, or, with ``all_day =
        "timed"``, no day and no length of its own (its type's, at the due time)."""
        seen = pairing.calendar_seen if pairing else {}
        if not seen.get("all_day") or pairing is None:
            return None, 1, seen.get("minutes")
        if feed.all_day == "timed":
            return None, 1, None
        names = {s.name: s for s in self.config.sources}
        source = names.get(pairing.lead.source) if pairing.lead else None
        zone = self.config.source_zone(source) if source else ZoneInfo(self.config.sync.zone)
        return due.astimezone(zone).date(), max(1, (seen.get("minutes") or 0) // (24 * 60)), None

    def feed_items(self, feed: FeedConfig) -> list[FeedItem]:
        """The activities a feed shows: its employees' scheduled ones in the window, the logged
        ones from the lookback, and (if the feed asks) those logged directly in Kizen."""
        now = self.clock()
        emails = {e.lower() for e in feed.employees} or {s.owner.lower() for s in self.config.sources}
        team = {p.email.lower(): str(p.id) for p in self.kizen.team()}
        employees = sorted(team[e] for e in emails if e in team)
        types = {str(t.id): t for t in self.kizen.activity_types()}
        wanted = {w.lower() for w in feed.activity_types}
        shown = {i for i, t in types.items() if not wanted or t.name.lower() in wanted or t.api_name.lower() in wanted}
        start, end = now - self.config.sync.lookback - _SLACK, now + self.config.sync.horizon + _SLACK
        items: list[FeedItem] = []
        for completed in (False, True):
            if not employees:
                break
            for activity in self.kizen.list_scheduled(
                completed=completed, employee_ids=employees, from_date=start, to_date=end
            ):
                type_id = str(activity.activity_object.id)
                if type_id not in shown:
                    continue
                pairing = self.state.pairing_of(str(activity.id))
                seen = pairing.calendar_seen if pairing else {}
                note = seen.get("note") or ("" if seen.get("summary") else self.kizen.get(activity.id).note)
                day, days, minutes = self._all_day(feed, pairing, activity.due_datetime)
                items.append(
                    FeedItem(
                        activity_id=str(activity.id),
                        type_name=types[type_id].name,
                        due=activity.due_datetime,
                        note=note,
                        title=seen.get("summary") or None,
                        minutes=minutes,
                        type_minutes=types[type_id].calendar_sync_duration,
                        logged=activity.completed,
                        logged_at=activity.completed_at,
                        sequence=pairing.changes if pairing else 0,
                        changed_at=pairing.changed_at if pairing else activity.created,
                        day=day,
                        days=days,
                    )
                )
        if feed.include_direct_logs:
            for type_id in sorted(shown):
                for logged in self.kizen.list_logged(type_id):
                    if logged.scheduled_activity_id is None and start <= logged.logged_at <= end:
                        items.append(
                            FeedItem(
                                activity_id=str(logged.id),
                                type_name=types[type_id].name,
                                due=logged.logged_at,
                                note=logged.notes or "",
                                type_minutes=types[type_id].calendar_sync_duration,
                                logged=True,
                                logged_at=logged.logged_at,
                                changed_at=logged.logged_at,
                            )
                        )
        return items


def _identity(action: Action) -> OccurrenceId:
    if isinstance(action, Create):
        return action.desired.id
    if isinstance(action, Import):
        return OccurrenceId(imported_uid(action.foreign.activity_id))
    return action.pairing.id


def _in_scope(pairing: Pairing, calendars: CalendarView, only: str | None) -> bool:
    """A pairing is planned only when its lead source was read (or ``--source`` names it)."""
    if pairing.lead is None:
        return True
    if only is not None and pairing.lead.source != only:
        return False
    return pairing.lead.source not in calendars.failed

"""One sync cycle, wired: what ``syncd run --once`` runs and what the daemon schedules.

1. Settle the journal: a create or log whose answer was lost is looked for in Kizen (the owner's
   activities around that due time, same type, then each candidate's provenance line) before
   anything is sent again.
2. Read the calendars (:mod:`syncd.calendars`) and map them into what they want.
3. Poll Kizen once: the open scheduled activities of the employees syncd watches, over the span
   its open pairings cover; a paired activity missing from the list is read with one GET.
4. Plan (:func:`syncd.engine.plan`), hold back what a safety rail stops, apply the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from syncd.activities import ActivitiesClient, Credentials, http_client
from syncd.calendars import CalendarView, Connector, desire, read_sources
from syncd.config import CalDAVSourceConfig, Config, FeedConfig, SourceConfig
from syncd.connectors import WritableSource
from syncd.connectors.caldav import CalDAVSource
from syncd.connectors.ics import IcsSource
from syncd.effects import PROVENANCE, Effects, Outcome, kizen_seen, provenance, utc_text
from syncd.engine import Action, Create, Delete, Desired, Foreign, Import, KizenActivity, View, plan
from syncd.errors import KizenError, KizenNotFound, SourceError
from syncd.feed import FeedItem
from syncd.mapping import load_rules
from syncd.model import Location, OccurrenceId
from syncd.state import Pairing, StateStore

if TYPE_CHECKING:
    from syncd.sandbox import Sandbox

log = logging.getLogger(__name__)

_SLACK = timedelta(seconds=1)  # Kizen's list bounds may be exclusive: widen them


@dataclass
class Report:
    """What one cycle did, per source, for the summary and the exit code."""

    actions: list[Action] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    failed_sources: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    quarantined: list[tuple[str, OccurrenceId, str]] = field(default_factory=list)
    capped: list[tuple[str, str, datetime]] = field(default_factory=list)
    calendar_requests: int = 0
    calendar_seconds: dict[str, float] = field(default_factory=dict)
    unknown_contacts: int = 0

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def clean(self) -> bool:
        return not (self.failures or self.failed_sources or self.stopped)

    def counts(self) -> Counter[str]:
        return Counter(o.kind for o in self.outcomes if o.ok)


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

    def run(self, *, only: str | None = None, dry_run: bool = False, force_delete: bool = False) -> Report:
        now = self.clock()
        report = Report()
        rules = load_rules(list(self.config.sync.mappings))
        unsettled: set[OccurrenceId] = set()
        if not dry_run:
            unsettled = self.settle_journal()
        every = self.state.pairings()  # settled ones too: a retired pairing is never re-created
        pairings = [p for p in every if p.settled is None]
        calendars = read_sources(self.config, self.state, self._connector, pairings, now, only)
        report.failed_sources = dict(calendars.failed)
        report.calendar_requests = calendars.requests
        report.calendar_seconds = dict(calendars.seconds)
        by_id = {p.id: p for p in pairings}
        desired, _skips = desire(self.config, rules, calendars, by_id)  # may quarantine more
        report.quarantined, report.capped = calendars.quarantined, calendars.capped
        self._record_items(calendars)
        if not every and desired and not dry_run:
            try:
                if self.adopt(desired, now):
                    every = self.state.pairings()
                    pairings = [p for p in every if p.settled is None]
            except KizenError as error:  # creating now could duplicate what a lost state store made
                report.failed_sources["kizen"] = f"cannot look for activities made before: {error}; nothing created"
                unsettled |= set(desired)
        try:
            importers = self.importers()
        except (KizenError, SourceError) as error:
            log.warning("cannot look for activities to import: %s", error)
            importers = {}
        kizen = self.poll(pairings, now, importers, frozenset(p.activity_id for p in every))
        conflicts = self.state.conflicts(open_only=True)
        window_end = now + self.config.sync.horizon
        watch = timedelta(days=self.config.sync.watch_days)
        view = View(
            desired, frozenset(calendars.gone), kizen, every, conflicts, now, window_end, tuple(self.foreign), watch
        )
        actions = plan(view)
        actions = [
            a
            for a in actions
            if isinstance(a, Import)
            or (a.desired.id not in unsettled if isinstance(a, Create) else _in_scope(a.pairing, calendars, only))
        ]
        actions = self._rails(actions, pairings, calendars, force_delete, report)
        report.actions = actions
        if dry_run:
            return report
        runs = {name: self.state.start_run(name) for name in sorted(calendars.read | set(calendars.failed))}
        effects = Effects(self.config, self.state, self.kizen, self._caldav(), self.clock)
        with self.progress(len(actions)) if self.progress and len(actions) >= 20 else nullcontext() as bar:
            for action in actions:
                if self.stop is not None and self.stop.is_set():
                    break
                report.outcomes.append(effects.apply(action))
                if bar is not None:
                    bar.update(1)
        report.unknown_contacts = effects.unknown_contacts
        for name, run in runs.items():
            mine = [o for o in report.outcomes if o.source == name]
            errors = [f"{o.identity.uid} {o.identity.slot}: {o.detail}".strip() for o in mine if not o.ok]
            if name in calendars.failed:
                errors.insert(0, calendars.failed[name])
            status = "failed" if name in calendars.failed else "stopped" if name in report.stopped else "ok"
            self.state.finish_run(run, status, dict(Counter(o.kind for o in mine if o.ok)), errors)
        return report

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
        for source, identity, reason in calendars.quarantined:
            self.state.record_failure(source, identity, "quarantined", reason)

    def poll(
        self,
        pairings: Iterable[Pairing],
        now: datetime,
        importers: dict[str, tuple[str, str]],
        paired: frozenset[str] = frozenset(),
    ) -> dict[str, KizenActivity]:
        """Kizen's side of every open pairing: one paged list, and a GET for each one missing.

        ``importers`` maps the employee id of each importing source's owner to (source,
        collection): their activities are listed too, and those not in ``paired`` (every
        activity syncd ever paired, settled ones included) are kept in :attr:`foreign`.
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
            log.warning("Kizen poll failed: %s", error)
            return {}
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
                continue
            seen[pairing.activity_id] = KizenActivity(
                pairing.activity_id,
                activity.due_datetime,
                str(activity.employee.id) if activity.employee else None,
                completed=activity.completed,
                logged_activity_id=str(activity.logged_activity_id) if activity.logged_activity_id else None,
            )
        return seen

    def adopt(self, desired: dict[OccurrenceId, Desired], now: datetime) -> int:
        """On a fresh state store, re-pairs the activities syncd made before, by their provenance.

        Reads each watched employee's activities in the window once (one GET each, for the
        note), pairs those whose provenance line names an occurrence the calendars show, and
        leaves the others alone. A lost state store so costs one GET per activity, never a
        duplicate. Returns how many were re-paired.
        """
        lines = {provenance(d.source.name, d.id): d for d in desired.values()}
        owners = {d.source.owner.lower() for d in desired.values()}
        employees = [str(e.id) for e in self.kizen.team() if e.email.lower() in owners]
        if not employees:
            return 0
        start = now - self.config.sync.lookback - _SLACK
        end = now + self.config.sync.horizon + _SLACK
        adopted = 0
        for completed in (False, True):
            for item in self.kizen.list_scheduled(
                completed=completed, employee_ids=employees, from_date=start, to_date=end
            ):
                activity = self.kizen.get(item.id)
                line = activity.note.rstrip().rsplit("\n", 1)[-1].strip()
                match = lines.pop(line, None)
                if match is None:
                    continue
                pairing = Effects(self.config, self.state, self.kizen, {}, self.clock).new_pairing(match, activity)
                self.state.save_pairing(pairing)
                adopted += 1
        log.info("adopted %d activities made before the state store was lost", adopted)
        return adopted

    def _consider_import(self, activity_id: str, source: str, collection: str) -> None:
        """Reads an unpaired activity once; one syncd did not make is imported into the calendar."""
        activity = self.kizen.get(activity_id)
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

    def importers(self) -> dict[str, tuple[str, str]]:
        """Employee id of each importing CalDAV source's owner -> (source, collection URL)."""
        found: dict[str, tuple[str, str]] = {}
        for source in self.config.sources:
            if not (isinstance(source, CalDAVSourceConfig) and source.import_from_crm and source.import_collection):
                continue
            employee = self.state.lookup("employee", source.owner.lower())
            if employee is None:
                for person in self.kizen.team():
                    self.state.remember("employee", person.email.lower(), str(person.id))
                employee = self.state.lookup("employee", source.owner.lower())
            url = self.state.lookup("import-collection", source.name)
            if not url:
                connector = self._connector(source)
                assert not isinstance(connector, IcsSource)
                wanted = source.import_collection
                names = {c.url: (c.name, c.url, c.url.rstrip("/").rsplit("/", 1)[-1]) for c in connector.discover()}
                urls = [u for u, known in names.items() if wanted in known]
                if not urls:
                    raise SourceError(source.name, f"import_collection {wanted!r} matches none of its calendars")
                url = urls[0]
                self.state.remember("import-collection", source.name, url)
            if employee:
                found[employee] = (source.name, url)
        return found

    # --- the feed -------------------------------------------------------------------------------

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
                items.append(
                    FeedItem(
                        activity_id=str(activity.id),
                        type_name=types[type_id].name,
                        due=activity.due_datetime,
                        note=note,
                        title=seen.get("summary") or None,
                        minutes=seen.get("minutes"),
                        type_minutes=types[type_id].calendar_sync_duration,
                        logged=activity.completed,
                        logged_at=activity.completed_at,
                        sequence=pairing.changes if pairing else 0,
                        changed_at=pairing.changed_at if pairing else activity.created,
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

    # --- crash safety -----------------------------------------------------------------------------

    def settle_journal(self) -> set[OccurrenceId]:
        """Settles intents whose outcome is unknown, before anything is sent again.

        Returns the identities whose intent could not be settled (Kizen unreachable): nothing is
        created for them this cycle, since it might already exist.
        """
        unsettled: set[OccurrenceId] = set()
        for intent in self.state.pending_intents():
            if intent.kind != "create":
                self.state.settle_intent(intent.id, "abandoned", {"replanned": True})
                continue
            try:
                found = self._find_created(intent.payload)
                if found is not None:
                    self._pair_found(intent.id_, intent.payload, found)
            except KizenError as error:
                log.warning("cannot settle the create of %s %s yet: %s", intent.id_.uid, intent.id_.slot, error)
                unsettled.add(intent.id_)
                continue
            if found is not None:
                self.state.settle_intent(intent.id, "done", {"activity_id": found, "found": True})
            else:
                self.state.settle_intent(intent.id, "abandoned", {"found": False})
        return unsettled

    def _find_created(self, payload: dict[str, Any]) -> str | None:
        due = datetime.fromisoformat(payload["due"])
        employees = [payload["employee_id"]] if payload.get("employee_id") else None
        for completed in (False, True):
            for item in self.kizen.list_scheduled(
                completed=completed, employee_ids=employees, from_date=due - _SLACK, to_date=due + _SLACK
            ):
                if item.due_datetime != due or str(item.activity_object.id) != payload["activity_type_id"]:
                    continue
                if self.state.pairing_of(str(item.id)) is not None:
                    continue
                if self.kizen.get(item.id).note.rstrip().endswith(payload["provenance"]):
                    return str(item.id)
        return None

    def _pair_found(self, identity: OccurrenceId, payload: dict[str, Any], activity_id: str) -> None:
        activity = self.kizen.get(activity_id)
        desired = payload["desired"]
        lead = desired["lead"]
        self.state.save_pairing(
            Pairing(
                id=identity,
                activity_id=activity_id,
                activity_type_id=str(activity.activity_object.id),
                original_due=activity.original_due_datetime or activity.due_datetime,
                due=activity.due_datetime,
                lead=Location(**lead),
                locations=(Location(**lead),),
                calendar_seen=desired["fields"],
                kizen_seen=kizen_seen(activity),
                changes=1,
                changed_at=self.clock(),
            )
        )

    # --- safety rails -----------------------------------------------------------------------------

    def _rails(
        self, actions: list[Action], pairings: list[Pairing], calendars: CalendarView, force: bool, report: Report
    ) -> list[Action]:
        """Holds back a source's deletions when it came back empty or would lose too much."""
        per_source = Counter(p.lead.source for p in pairings if p.lead)
        deletes = Counter(a.pairing.lead.source for a in actions if isinstance(a, Delete) and a.pairing.lead)
        stopped: set[str] = set()
        for name, count in deletes.items():
            source = next((s for s in self.config.sources if s.name == name), None)
            allowed = force or (source is not None and source.allow_mass_delete)
            share = count / max(per_source[name], 1)
            if allowed:
                continue
            if name in calendars.emptied:
                stopped.add(name)
                report.stopped[name] = "the calendar came back empty; run with --force-delete if that is right"
            elif per_source[name] > self.config.sync.mass_delete_minimum and share > self.config.sync.mass_delete_share:
                stopped.add(name)
                report.stopped[name] = (
                    f"would delete {count} of {per_source[name]} activities; run with --force-delete if that is right"
                )
        return [
            a for a in actions if not (isinstance(a, Delete) and a.pairing.lead and a.pairing.lead.source in stopped)
        ]


def _in_scope(pairing: Pairing, calendars: CalendarView, only: str | None) -> bool:
    """A pairing is planned only when its lead source was read (or ``--source`` names it)."""
    if pairing.lead is None:
        return True
    if only is not None and pairing.lead.source != only:
        return False
    return pairing.lead.source not in calendars.failed


def describe(action: Action) -> str:
    """One line per planned action, for ``--dry-run``."""
    if isinstance(action, Create):
        d = action.desired
        return (
            f"create  {d.id.uid} {d.id.slot or '-'}  due {utc_text(d.lead.due)}  {d.activity_type_id}: {d.lead.summary}"
        )
    if isinstance(action, Import):
        f = action.foreign
        return f"import  activity {f.activity_id}  due {utc_text(f.due)}  into {f.source}: {f.summary}"
    kind = type(action).__name__.lower()
    pairing = action.pairing
    extra = ""
    if hasattr(action, "changes"):
        extra = ", ".join(sorted(action.changes))
    elif hasattr(action, "reason"):
        extra = action.reason
    return f"{kind:<8}{pairing.id.uid} {pairing.id.slot or '-'}  activity {pairing.activity_id}  {extra}".rstrip()

"""Reading the calendars for one cycle: connectors, stored resources, expansion, mapping.

For each source this fetches what changed (the connector's cost, nothing more), brings the state's
copy of every resource up to date in memory, expands them into occurrences in the window, follows
paired occurrences that left it, and tells which paired identities are certainly gone. An object
whose expansion the state remembers for this window is not parsed again
(:mod:`syncd.calendar.remembered`).

Reading writes nothing: what it found for the state (changed and deleted resources, new cursors,
expansions to remember, discoveries) is in the :class:`CalendarView` it returns, and a real run records it
(:func:`syncd.sync.commit.commit_read`); a dry run does not. The lead copy of
each identity is mapped by the rules into a :class:`~syncd.sync.actions.Desired`. Kizen look-ups wait
for the effects (:mod:`syncd.sync.apply`), so an unchanged cycle makes none.

Nothing read from outside stops more than its own part: any exception reading a source fails that
source alone (reported with its class and message), and any exception expanding, following or
mapping one item quarantines that item alone. The state store's own failures and configuration
errors are not a source's fault and still end the run.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from syncd.calendar.connectors import Source
from syncd.calendar.mapping import Context, Mapped, RuleSet, apply_rules
from syncd.calendar.occurrences import Expansion, Window
from syncd.calendar.remembered import Memo
from syncd.config import CalDAVSourceConfig, Config, SourceConfig
from syncd.errors import ConfigError, SourceError, StateError, unforeseen
from syncd.identifiers import utc_text
from syncd.model import Collection, Cursor, Location, Occurrence, OccurrenceId, Resource
from syncd.state.protocol import Discovery, Pairing, SyncState
from syncd.sync.actions import Desired, Fields, SourceRules

log = logging.getLogger(__name__)

# Not any one source's or item's failure: these end the run (the CLI names them).
_NOT_ISOLATED = (ConfigError, StateError, sqlite3.Error)


@dataclass(frozen=True)
class Collected:
    """What one read of a collection found for the state: to record once a real run applies."""

    source: str
    collection: str
    changed: tuple[Resource, ...]
    deleted: tuple[str, ...]  # hrefs no longer in the collection
    cursor: Cursor
    zone: str | None
    expansions: dict[str, str] = field(default_factory=dict)  # href -> what to remember of its expansion
    unexpanded: tuple[str, ...] = ()  # hrefs whose remembered expansion to drop (no longer in the collection)


@dataclass(frozen=True)
class Found:
    """A discovery made this cycle (a source's collections found anew) and the collections it dropped."""

    discovery: Discovery
    dropped: tuple[str, ...] = ()


@dataclass
class CalendarView:
    """What the calendars hold this cycle, across sources."""

    occurrences: dict[OccurrenceId, list[Occurrence]] = field(default_factory=dict)
    gone: set[OccurrenceId] = field(default_factory=set)
    read: set[str] = field(default_factory=set)  # sources read in full this cycle
    failed: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read
    quarantined: list[tuple[str, OccurrenceId, str]] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # UIDs quarantined this cycle: no copy of them is synced
    skipped: list[tuple[str, OccurrenceId, str]] = field(default_factory=list)
    capped: list[tuple[str, str, datetime]] = field(default_factory=list)
    emptied: set[str] = field(default_factory=set)  # sources whose collection came back empty
    requests: int = 0
    source_requests: dict[str, int] = field(default_factory=dict)  # the requests of each source
    seconds: dict[str, float] = field(default_factory=dict)  # how long each source took to read
    notices: list[str] = field(default_factory=list)  # config edits taking effect, for the report
    collected: list[Collected] = field(default_factory=list)  # for the state, per collection read
    discoveries: dict[str, Found] = field(default_factory=dict)  # source -> its calendars found anew
    parsed: int = 0  # calendar objects expanded anew (the others' expansions were remembered)

    def add(self, occurrence: Occurrence) -> None:
        self.occurrences.setdefault(occurrence.id, []).append(occurrence)


def window(config: Config, source: SourceConfig, now: datetime) -> Window:
    return Window(
        start=now - config.sync.lookback,
        end=now + config.sync.horizon,
        zone=config.source_zone(source),
        all_day_at=config.sync.all_day_time,
        cap=config.sync.series_cap,
    )


def read_sources(
    config: Config,
    state: SyncState,
    connect: Callable[[SourceConfig], Source],
    now: datetime,
    opened: Iterable[Pairing],
    only: Set[str] | None = None,
    rediscover: bool = False,
    skip: Set[str] = frozenset(),
) -> CalendarView:
    """Reads every source (or ``only`` those); a failing source is reported, the others go on.

    ``opened`` are the open pairings, which the cycle has read already: each collection's come
    from them, by location, not from the store again. ``skip``: sources not read this time (the
    daemon's backing off from them); like a source that failed, their pairings wait.
    ``rediscover`` finds every CalDAV source's collections anew (the daily reconciliation).
    """
    view = CalendarView()
    located: dict[tuple[str, str], list[Pairing]] = {}
    for pairing in opened:
        for place in dict.fromkeys((copy.source, copy.collection) for copy in pairing.locations):
            located.setdefault(place, []).append(pairing)
    for source in config.sources:
        if (only is not None and source.name not in only) or source.name in skip:
            continue
        began = time.perf_counter()
        try:
            _read_source(config, state, connect(source), source, now, view, located, rediscover)
        except SourceError as error:
            log.warning("%s", error)
            view.failed[source.name] = error.reason
            continue
        except _NOT_ISOLATED:
            raise
        except Exception as error:  # not foreseen (a library's or a server's surprise): this source alone
            reason = f"cannot be read: {unforeseen(error)}"
            log.error("source %s: %s", source.name, reason)
            log.debug("reading source %s", source.name, exc_info=True)
            view.failed[source.name] = reason
            continue
        finally:
            view.seconds[source.name] = time.perf_counter() - began
        view.read.add(source.name)
    view.gone -= view.occurrences.keys()  # moved to another collection, not gone
    _hold(view)
    return view


def _hold(view: CalendarView) -> None:
    """Leaves out every copy of a UID quarantined this cycle, wherever it was seen or followed.

    Following a paired occurrence reads its one resource alone, past the collection's duplicate
    check, and another source's copy says nothing about which of two components is right. So a
    quarantined UID is not created, updated, deleted or settled anywhere until its calendar is
    fixed; the quarantine is reported, and the plan leaves its pairings alone (``View.held``).
    """
    if view.held:
        view.occurrences = {i: c for i, c in view.occurrences.items() if i.uid not in view.held}
        view.gone = {i for i in view.gone if i.uid not in view.held}


def _read_source(
    config: Config,
    state: SyncState,
    connector: Source,
    source: SourceConfig,
    now: datetime,
    view: CalendarView,
    located: Mapping[tuple[str, str], list[Pairing]],
    rediscover: bool = False,
) -> None:
    sync_window = window(config, source, now)
    collections, dropped = _collections(state, connector, source, rediscover, view)
    for collection, zone in collections.items():
        stored = state.resources(source.name, collection)
        known = {href: etag for href, (etag, _) in stored.items()}
        changes = connector.changes(collection, state.cursor(source.name, collection), known)
        view.requests += changes.requests
        view.source_requests[source.name] = view.source_requests.get(source.name, 0) + changes.requests
        resources = _current(stored, changes, source.name, collection)
        if stored and not resources and changes.complete:
            view.emptied.add(source.name)
        gone = tuple(sorted(set(stored) - set(resources)))
        memo = Memo(state.expansions(source.name, collection), sync_window, zone or changes.zone)
        expansion = memo.expand_all(resources.values())
        _collect(view, source, _namespaced(expansion, source))
        quarantined = {q.location.href for q in expansion.quarantined}
        _follow(view, source, resources, quarantined, located.get((source.name, collection), []), memo)
        view.parsed += memo.parsed
        view.collected.append(
            Collected(
                source.name,
                collection,
                changes.changed,
                gone,
                changes.cursor,
                zone or changes.zone,
                memo.changed(),
                memo.forgotten(resources),
            )
        )
    for collection in dropped:
        paired = located.get((source.name, collection), [])
        left = len({p.id for p in paired if p.id not in view.occurrences})
        activities = f"{left} {'activity is' if left == 1 else 'activities are'} left in Kizen unchanged"
        moved = [new for new in collections if urlsplit(new).path == urlsplit(collection).path]
        if connector.read_only:
            notice = f"the feed at its previous url is no longer synced; its {activities}"
        elif moved:  # the same calendar at a new URL: its items re-pair by identity
            notice = f"collection {collection} is now read at {moved[0]}"
            notice += f"; {activities}, not found there" if left else ""
        else:
            notice = f"collection {collection} is no longer synced; its {activities}"
        view.notices.append(f"source {source.name}: {notice}")
        log.warning("%s", view.notices[-1])


def settings_of(source: SourceConfig) -> str:
    """The part of a source's config that decides its collections, as canonical JSON.

    A change in it (url, username, the ``collections`` filter, the import collection) means
    the remembered collections no longer hold: they are discovered anew.
    """
    if isinstance(source, CalDAVSourceConfig):
        decides = {
            "url": source.url,
            "username": source.username,
            "collections": list(source.collections),
            "import_collection": source.import_collection if source.import_from_crm else None,
        }
    else:
        decides = {"url": source.url}
    return json.dumps(decides, sort_keys=True)


def current_discovery(state: SyncState, source: SourceConfig) -> Discovery | None:
    """The discovery made under the source's present config; None if its config changed since."""
    found = state.discovery(source.name)
    return found if found is not None and found.settings == settings_of(source) else None


def discoveries(config: Config, state: SyncState, view: CalendarView) -> dict[str, Discovery | None]:
    """Each source's calendars under its present config: found by this cycle's read, else the state's."""
    return {
        source.name: found.discovery
        if (found := view.discoveries.get(source.name))
        else current_discovery(state, source)
        for source in config.sources
    }


def _collections(
    state: SyncState, connector: Source, source: SourceConfig, rediscover: bool, view: CalendarView
) -> tuple[dict[str, str | None], list[str]]:
    """The collections to read (URL -> zone) under the source's present config, and those dropped.

    Discovery costs requests, so the collections found are remembered with the settings they
    were found under (:func:`settings_of`) and found anew only when those changed, none are
    remembered, or ``rediscover`` asks (the daily reconciliation catches calendars added or
    removed on the server). A feed's one collection is its URL, so a new URL is a new one.

    A collection no longer found is not read again: its cursor and stored copies are
    forgotten (once a real run records ``view.discoveries``), and its open pairings stay open
    and unplanned, neither desired nor gone. So nothing is deleted, updated or created for them
    (no safety rail is tripped, since nothing is read as emptied), Kizen's own completions and
    deletions are still recorded, and configuring the collection again resumes the same
    pairings, with no duplicate. A calendar that moved (a new server URL) is a new collection
    whose items keep their identities (UID, slot), so they re-pair with their activities. The
    cycle says so (``notices``).
    """
    settings = settings_of(source)
    remembered = state.discovery(source.name)
    cursors = state.collections(source.name)
    if remembered is not None and remembered.settings == settings and not rediscover:
        return {url: cursors.get(url) or zone for url, zone in remembered.collections.items()}, []
    listed = connector.discover()
    found = {c.url: c.zone or cursors.get(c.url) for c in listed}
    imported = _import_target(source, listed)
    before = remembered.collections if remembered is not None else cursors
    dropped = sorted(before.keys() - found.keys())
    view.discoveries[source.name] = Found(Discovery(settings, found, imported), tuple(dropped))
    if before and not connector.read_only:
        for collection in sorted(found.keys() - before.keys()):
            log.info("source %s: collection %s is now synced", source.name, collection)
    return found, dropped


def _import_target(source: SourceConfig, listed: Iterable[Collection]) -> str | None:
    """The URL of the collection a CalDAV source imports into: by display name, URL or last segment."""
    if not (isinstance(source, CalDAVSourceConfig) and source.import_from_crm and source.import_collection):
        return None
    wanted = source.import_collection
    urls = [c.url for c in listed if wanted in (c.name, c.url, c.url.rstrip("/").rsplit("/", 1)[-1])]
    return urls[0] if urls else None


def _current(
    stored: Mapping[str, tuple[str | None, str]], changes: Any, source: str, collection: str
) -> dict[str, Resource]:
    """Every resource the collection now holds: the stored ones updated by the changes."""
    resources = {
        href: Resource(Location(source, collection, href), etag, ical) for href, (etag, ical) in stored.items()
    }
    for href in changes.deleted:
        resources.pop(href, None)
    if changes.complete:
        listed = set(changes.unchanged) | {r.location.href for r in changes.changed}
        resources = {href: r for href, r in resources.items() if href in listed}
    for resource in changes.changed:
        resources[resource.location.href] = resource
    return resources


def _namespaced(expansion: Expansion, source: SourceConfig) -> Expansion:
    """A source that opts out of shared identity gets its own UIDs (``source#UID``)."""
    if source.shared_identity:
        return expansion

    def rename(identity: OccurrenceId) -> OccurrenceId:
        return OccurrenceId(f"{source.name}#{identity.uid}", identity.slot)

    expansion.occurrences = [replace(o, id=rename(o.id)) for o in expansion.occurrences]
    expansion.cancelled = [rename(i) for i in expansion.cancelled]
    return expansion


def _collect(view: CalendarView, source: SourceConfig, expansion: Expansion) -> None:
    for occurrence in expansion.occurrences:
        view.add(occurrence)
    view.gone.update(expansion.cancelled)
    for q in expansion.quarantined:
        view.quarantined.append((source.name, OccurrenceId(q.uid), q.reason))
        view.held.add(q.uid if source.shared_identity else f"{source.name}#{q.uid}")
    for s in expansion.skipped:
        view.skipped.append((source.name, OccurrenceId(s.uid), s.reason))
    for uid, first_left_out in expansion.capped.items():
        view.capped.append((source.name, uid, first_left_out))


def _follow(
    view: CalendarView,
    source: SourceConfig,
    resources: Mapping[str, Resource],
    quarantined: set[str],
    pairings: Iterable[Pairing],
    memo: Memo,
) -> None:
    """Paired occurrences of this collection not seen in the window: followed, or gone.

    An item quarantined this cycle (its href in ``quarantined``) is neither followed (that would
    expand it again without the collection's checks) nor gone: its activity is left as it is
    until the item is fixed.
    """
    for pairing in pairings:
        here = [loc for loc in pairing.locations if loc.source == source.name]
        if pairing.settled or pairing.id in view.occurrences or pairing.id in view.gone or pairing.id.uid in view.held:
            continue  # seen, gone, or quarantined in the collection (a duplicate UID): not re-read alone
        resource = next((resources[loc.href] for loc in here if loc.href in resources), None)
        if resource is None:
            if all(loc.source == source.name for loc in pairing.locations):
                view.gone.add(pairing.id)  # its only calendar item is deleted
            continue
        if resource.location.href in quarantined:
            continue
        try:
            found = _namespaced(memo.follow(resource, pairing.id.slot), source)
        except Exception as error:  # a slot the state holds that cannot be read, say: this pairing alone
            reason = f"cannot be followed: {unforeseen(error)}"
            log.error("source %s, UID %s: %s", source.name, pairing.id.uid, reason)
            log.debug("following %s %s", pairing.id.uid, pairing.id.slot, exc_info=True)
            view.quarantined.append((source.name, pairing.id, reason))
            continue
        match = [o for o in found.occurrences if o.id == pairing.id]
        if match:
            view.add(match[0])
        elif not found.quarantined:
            view.gone.add(pairing.id)


def lead_of(
    copies: list[Occurrence], owners: Mapping[str, str], pairing: Pairing | None, read: Set[str] | None = None
) -> Occurrence | None:
    """The copy that leads: the organizer's, else the one paired first, else the first seen.

    The lead moves to the organizer's copy whenever it is seen, and away from the copy paired
    first only once that copy is gone. A lead copy in a source not read this cycle (``read``
    names those that were) is not gone, so no seen copy replaces it: None, the identity waits.
    """
    for copy in copies:
        organizer = copy.organizer.lower()
        if organizer and organizer == owners.get(copy.location.source, "").lower():
            return copy
    if pairing is not None and pairing.lead is not None:
        for copy in copies:
            if copy.location == pairing.lead:
                return copy
        if read is not None and pairing.lead.source not in read:
            return None
    return sorted(copies, key=_place)[0]


def locations_of(copies: list[Occurrence], pairing: Pairing | None, read: Set[str]) -> tuple[Location, ...]:
    """Where an identity lives now: the copies seen in the sources read this cycle, and the
    pairing's locations in sources not read (a per-source cycle must not drop the others)."""
    kept = {loc for loc in pairing.locations if loc.source not in read} if pairing is not None else set()
    return tuple(sorted({c.location for c in copies} | kept, key=lambda loc: (loc.source, loc.collection, loc.href)))


def _place(copy: Occurrence) -> tuple[str, str, str]:
    return copy.location.source, copy.location.collection, copy.location.href


def desire(
    config: Config,
    rules: RuleSet,
    view: CalendarView,
    pairings: Mapping[OccurrenceId, Pairing],
) -> tuple[dict[OccurrenceId, Desired], list[tuple[str, OccurrenceId, str]]]:
    """Maps each identity's lead copy: the activities the calendars want, and the skips.

    An identity whose mapping raises is quarantined (added to ``view.quarantined``, naming the
    exception) and the others are mapped as usual.
    """
    sources = {s.name: s for s in config.sources}
    owners = {s.name: s.owner for s in config.sources}
    desired: dict[OccurrenceId, Desired] = {}
    skips: list[tuple[str, OccurrenceId, str]] = []
    for identity, copies in view.occurrences.items():
        try:
            mapped = _desire_one(config, rules, sources, owners, identity, copies, pairings.get(identity), view.read)
        except Exception as error:  # not foreseen: this identity alone
            source = copies[0].location.source
            reason = f"cannot be mapped: {unforeseen(error)}"
            log.error("source %s, UID %s: %s", source, identity.uid, reason)
            log.debug("mapping %s %s", identity.uid, identity.slot, exc_info=True)
            view.quarantined.append((source, identity, reason))
            continue
        if isinstance(mapped, Desired):
            desired[identity] = mapped
        elif mapped is not None:
            skips.append(mapped)
    return desired, skips


def _desire_one(
    config: Config,
    rules: RuleSet,
    sources: Mapping[str, SourceConfig],
    owners: Mapping[str, str],
    identity: OccurrenceId,
    copies: list[Occurrence],
    pairing: Pairing | None,
    read: Set[str],
) -> Desired | tuple[str, OccurrenceId, str] | None:
    """One identity's activity, or why the rules skip it (source, identity, reason), or None while
    its lead copy is in a source not read this cycle (a cycle that reads it decides)."""
    lead = lead_of(copies, owners, pairing, read)
    if lead is None:
        return None
    source = sources[lead.location.source]
    context = Context(
        owner=source.owner,
        internal_domains=frozenset(config.sync.internal_domains),
        collection=lead.location.collection,
    )
    mapped = apply_rules(lead, rules, context)
    if not isinstance(mapped, Mapped):
        return source.name, identity, mapped.reason
    return Desired(
        id=identity,
        lead=lead,
        locations=locations_of(copies, pairing, read),
        source=SourceRules(
            name=source.name,
            owner=source.owner,
            policy=source.conflict_policy,
            write_back=isinstance(source, CalDAVSourceConfig) and source.write_back,
            log_past_events=source.log_past_events,
        ),
        activity_type_id=mapped.activity_type,
        fields=fields_of(lead, mapped),
        original_due=lead.slot_due or lead.due,
        writable_lead=isinstance(source, CalDAVSourceConfig),
        owner_organizes=not lead.attendees or lead.organizer.lower() == source.owner.lower(),
    )


def fields_of(occurrence: Occurrence, mapped: Mapped) -> Fields:
    """The fields syncd owns, in calendar terms (emails and names; ids are looked up on write)."""
    return Fields(
        due=utc_text(occurrence.due),
        note=mapped.note,
        assignee=mapped.assignee,
        contacts=tuple(sorted({email.lower(): email for email in mapped.contact_emails}.values(), key=str.lower)),
        unknown_contacts=mapped.unknown_contacts,
        notifications=mapped.notifications,
        summary=occurrence.summary,
        minutes=round(occurrence.duration.total_seconds() / 60) if occurrence.duration else None,
        all_day=True if occurrence.all_day else None,  # None, not False: pairings made before need no update
    )

"""From calendar objects to occurrences: parse, resolve zones, expand series in the window.

Pure functions: text in, :class:`~syncd.model.Occurrence` values out, with a reason for every
item that does not come through (DESIGN sections 2 and 3):

- Zones: a value's TZID (Windows and vendor names mapped to IANA, a custom VTIMEZONE honoured,
  by icalendar), else the calendar's ``X-WR-TIMEZONE`` (UTC times then recur in that zone's wall
  clock, VTODOs included, which the x-wr-timezone library alone leaves as they are) or the
  collection's ``calendar-timezone``, else the source's configured zone. An unknown TZID
  quarantines the item.
- All-day items are due at the configured local time (default 09:00) in the calendar's zone
  (X-WR-TIMEZONE or calendar-timezone) if it has one, else the source's zone.
- Series are expanded by recurring_ical_events inside the window, at most ``cap`` occurrences
  per series; the rest is reported. RECURRENCE-ID overrides, THISANDFUTURE, EXDATE, RDATE and
  cancelled instances are honoured; an occurrence's slot is the RECURRENCE-ID it has or would
  have, as a UTC instant, or a date for an all-day series.
- Events Kizen's calendar plugin made (UID ``<activity uuid>--...``) and syncd's own feed events
  are recognised and left out.
- One item never stops the others: a shape syncd foresaw (no DTSTART, two DTSTARTs, a time that
  is not a date) quarantines the item with its reason, and any other exception while reading or
  expanding it quarantines it naming the exception's class and message (logged once at ERROR,
  its traceback at DEBUG). A property RFC 5545 allows once that comes more than once
  quarantines the item when it decides when or whether the item happens (DTSTART, DTEND, DUE,
  DURATION, RECURRENCE-ID, STATUS, COMPLETED, UID); for descriptive ones (SUMMARY, LOCATION...)
  the first is read. Several RRULEs are honoured together, as recurring_ical_events does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrule, rruleset, rrulestr
from icalendar.error import GloballyUniqueTZIDGuessed

from syncd.errors import Quarantined, unforeseen
from syncd.identifiers import FEED_UID_PREFIX
from syncd.model import Attendee, Kind, Location, Occurrence, OccurrenceId, Quarantine, Resource, Skipped

log = logging.getLogger(__name__)

MAX_STEPS = 100_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR = datetime(2200, 1, 1, tzinfo=UTC)
_FOLLOW = timedelta(days=90)
KIZEN_PLUGIN_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}--", re.IGNORECASE)
_KINDS: tuple[Kind, ...] = ("VEVENT", "VTODO")
# icalendar's property values are a wide union; this module reads them at this one boundary.
Component = Any
_UNFOLD = re.compile(r"\r?\n[ \t]")
_TIMED = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE")
_ONCE = ("UID", "DTSTART", "DTEND", "DUE", "DURATION", "RECURRENCE-ID", "STATUS", "COMPLETED")
_DATES = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "COMPLETED")
_CONFERENCE = re.compile(
    r"https://(?:[\w-]+\.)?(?:meet\.google\.com|zoom\.us|teams\.microsoft\.com|teams\.live\.com|webex\.com)/\S+"
)


@dataclass(frozen=True)
class Window:
    """Which occurrences get activities, and how times without a zone are read.

    Attributes:
        start, end: the sync window, UTC (``now - lookback`` to ``now + horizon``).
        zone: the source's configured zone, for floating times and all-day items.
        all_day_at: the local time an all-day item is due.
        cap: at most this many occurrences per series inside the window.
    """

    start: datetime
    end: datetime
    zone: tzinfo = UTC
    all_day_at: time = time(9, 0)
    cap: int = 500


@dataclass
class Expansion:
    """What a batch of resources expands to."""

    occurrences: list[Occurrence] = field(default_factory=list)
    cancelled: list[OccurrenceId] = field(default_factory=list)
    quarantined: list[Quarantine] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    capped: dict[str, datetime] = field(default_factory=dict)  # UID -> the first due left out

    def extend(self, other: Expansion) -> None:
        self.occurrences += other.occurrences
        self.cancelled += other.cancelled
        self.quarantined += other.quarantined
        self.skipped += other.skipped
        self.capped.update(other.capped)


def is_foreign(uid: str) -> str | None:
    """Why an item with this UID is not imported, or None: Kizen's own and syncd's feed events."""
    if KIZEN_PLUGIN_UID.match(uid):
        return "made by Kizen's calendar integration for an activity"
    if uid.startswith(FEED_UID_PREFIX):
        return "an event of syncd's own feed"
    return None


def synthetic_uid(source: str, dtstart: str, summary: str) -> str:
    """A key for an item without a UID, from source, DTSTART and SUMMARY as written.

    Such an item cannot be followed across edits: an edit is a delete and a create.
    """
    raw = f"{source}\x00{dtstart}\x00{summary}"
    return "syncd-nouid-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def expand_all(
    resources: Iterable[Resource],
    window: Window,
    collection_zone: str | None = None,
    one: Callable[[Resource], Expansion] | None = None,
) -> Expansion:
    """Expands every resource of one collection; duplicate UIDs across resources are quarantined.

    ``one`` expands a resource that is not a duplicate instead of :func:`expand` (a remembered one, say).
    """
    resources = list(resources)
    owners: dict[str, list[Resource]] = {}
    for resource in resources:
        for uid, recurrence in _keys(resource):
            owners.setdefault(f"{uid}\x00{recurrence}", []).append(resource)
    # the same key in two resources; twice in one resource is _check's to name
    duplicated = {id(r) for group in owners.values() if len({id(g) for g in group}) > 1 for r in group}
    result = Expansion()
    for resource in resources:
        if id(resource) in duplicated:
            uid = next(iter(_keys(resource)), ("?", ""))[0]
            others = sorted(
                {r.location.href for group in owners.values() if resource in group for r in group}
                - {resource.location.href}
            )
            reason = f"duplicate UID: the same UID and RECURRENCE-ID also in {', '.join(others)}"
            result.quarantined.append(Quarantine(resource.location, uid, reason))
        else:
            result.extend(one(resource) if one is not None else expand(resource, window, collection_zone))
    return result


def expand(resource: Resource, window: Window, collection_zone: str | None = None) -> Expansion:
    """Expands one calendar object (one UID: master and overrides) into occurrences.

    Never raises: whatever goes wrong with this one object quarantines it alone.
    """
    return expand_kept(resource, window, collection_zone)[0]


def expand_kept(resource: Resource, window: Window, collection_zone: str | None = None) -> tuple[Expansion, bool]:
    """What :func:`expand` gives, and whether it may be kept for this same window: unless unforeseen."""
    try:
        read = prepare(resource, window.zone, collection_zone)
        return read if isinstance(read, Expansion) else within(read, window), True
    except Exception as error:  # not foreseen: name it, keep the traceback for -v
        return _unforeseen(resource, error), False


def _unforeseen(resource: Resource, error: Exception) -> Expansion:
    location = resource.location
    uid = next((uid for uid, _ in _keys(resource)), location.href)
    reason = f"cannot be expanded: {unforeseen(error)}"
    log.error("source %s, UID %s: %s", location.source, uid, reason)
    log.debug("expanding %s %s", location.source, location.href, exc_info=True)
    return Expansion(quarantined=[Quarantine(location, uid, reason)])


@dataclass(frozen=True)
class Prepared:
    """A calendar object parsed and checked, ready to expand in any window (see :func:`prepare`)."""

    location: Location
    uid: str
    calendar: Component
    master: Component
    components: tuple[Component, ...]
    zone: tzinfo
    recurring: bool


def prepare(resource: Resource, source_zone: tzinfo, collection_zone: str | None) -> Expansion | Prepared:
    """Parses and checks one object: what does not depend on the window.

    An object quarantined or skipped here is so in every window (an Expansion); any other comes
    back Prepared, for :func:`within`. Raises only what was not foreseen (:func:`expand` names it).
    """
    result = Expansion()
    location = resource.location
    try:
        calendar = _parse(resource.ical)
    except Quarantined as refused:
        result.quarantined.append(Quarantine(location, location.href, refused.reason))
        return result
    components = [c for c in calendar.subcomponents if c.name in _KINDS]
    if not components:
        result.skipped.append(Skipped(location, location.href, "no VEVENT or VTODO"))
        return result
    first_uid = components[0].get("UID")
    if isinstance(first_uid, list):
        several = f"{len(first_uid)} UID properties in one {components[0].name} (RFC 5545 allows one)"
        result.quarantined.append(Quarantine(location, location.href, several))
        return result
    uid = str(first_uid or "")
    if not uid:
        result.quarantined.append(Quarantine(location, location.href, "no UID"))
        return result
    try:
        zone, calendar = _zone_of(calendar, collection_zone, source_zone)
        _check(components, uid)
        if reason := is_foreign(uid):
            result.skipped.append(Skipped(location, uid, reason))
            return result
        master = next((c for c in components if "RECURRENCE-ID" not in c), components[0])
        if master.name == "VTODO" and "DUE" not in master and "DTSTART" not in master:
            result.skipped.append(Skipped(location, uid, "a VTODO with neither DUE nor DTSTART is not due"))
            return result
    except Quarantined as refused:
        result.quarantined.append(Quarantine(location, uid, refused.reason))
        return result
    recurring = any(key in master for key in ("RRULE", "RDATE")) or len(components) > 1
    return Prepared(location, uid, calendar, master, tuple(components), zone, recurring)


def within(read: Prepared, window: Window) -> Expansion:
    """A prepared object's occurrences in the window (the series expanded, capped)."""
    result = Expansion()
    try:
        occurrences, cut = (
            _series(read.calendar, read.master, window, read.zone) if read.recurring else ([read.master], None)
        )
        if cut is not None:
            result.capped[read.uid] = cut
        _collect(result, occurrences, read, window)
    except Quarantined as refused:
        result.quarantined.append(Quarantine(read.location, read.uid, refused.reason))
    return result


def expand_stable(
    resource: Resource, window: Window, collection_zone: str | None, longest: timedelta
) -> tuple[Expansion, timedelta | None]:
    """What :func:`expand` gives, and how much later the window may start with it unchanged.

    None: it does not depend on the window (quarantined or skipped as it reads); ``timedelta(0)``:
    it holds for this window alone. Otherwise the window may move on by less than that (a series
    by at most ``longest``), its length staying the same. Why: :func:`_collect` keeps a component
    exactly while its start and due time are before the window's end and its due time is not
    before the window's start, so while the cap does not cut the series (checked over the window
    and the stretch it may move into), the result changes only when a bound passes one of those
    instants. The series is expanded up to ``longest`` past the window's end, to see those about
    to come in (they sort after the window's own, where :func:`_collect` stops). A capped or too
    dense series, or anything unforeseen, holds for this window alone.
    """
    try:
        read = prepare(resource, window.zone, collection_zone)
        if isinstance(read, Expansion):
            return read, None
        return _stable(read, window, longest)
    except Exception as error:  # not foreseen: as expand() names it, never kept
        return _unforeseen(resource, error), timedelta(0)


def _stable(read: Prepared, window: Window, longest: timedelta) -> tuple[Expansion, timedelta]:
    beyond = window.end + longest
    try:
        if not read.recurring:
            components: list[Component] = [read.master]
        else:
            wide = Window(window.start, beyond, window.zone, window.all_day_at, window.cap)
            if _cap_boundary(read.master, wide, read.zone) is not None:
                return within(read, window), timedelta(0)
            components, _ = _series(read.calendar, read.master, window, read.zone, beyond)
        result = Expansion()
        _collect(result, components, read, window)
    except Exception:  # a wider expansion that fails says nothing of the window's: that one, for now alone
        return within(read, window), timedelta(0)
    holds = longest if read.recurring else _FAR - window.start  # a single item has nothing more to come
    for component in components:
        start = instant(_start(component), read.zone, window.all_day_at)
        due = instant(component["DUE"].dt, read.zone, window.all_day_at) if "DUE" in component else start
        if start < window.end and window.start <= due < window.end:
            holds = min(holds, due - window.start)  # in: until the window's start passes its due time
        elif due >= window.start:
            holds = min(holds, max(start, due) - window.end)  # out: until the window's end reaches it
    return result, max(holds, timedelta(0))


def follow(resource: Resource, slot: str, window: Window, collection_zone: str | None = None) -> Expansion:
    """Finds one occurrence of a resource wherever it now is, in or out of the window.

    A paired occurrence is followed when it moves; this expands the resource around its slot
    (90 days either side) instead of the sync window. The result holds the occurrence, or
    lists the slot as cancelled, or neither when the slot is gone from the series.
    """
    return expand(resource, following(slot, window), collection_zone)


def following(slot: str, window: Window) -> Window:
    """The window :func:`follow` expands a slot in: it does not move with the sync window."""
    if not slot:
        return Window(_EPOCH, _FAR, zone=window.zone, all_day_at=window.all_day_at, cap=window.cap)
    if len(slot) == 8:
        anchor = datetime.combine(date(int(slot[:4]), int(slot[4:6]), int(slot[6:])), window.all_day_at, window.zone)
    else:
        anchor = datetime.strptime(slot, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return Window(anchor - _FOLLOW, anchor + _FOLLOW, zone=window.zone, all_day_at=window.all_day_at, cap=window.cap)


def _keys(resource: Resource) -> Iterator[tuple[str, str]]:
    """(UID, RECURRENCE-ID as written) of each component, read without parsing, for duplicates."""
    uid = recurrence = ""
    for line in _UNFOLD.sub("", resource.ical).splitlines():
        name, _, value = line.partition(":")
        if line in ("BEGIN:VEVENT", "BEGIN:VTODO"):
            uid = recurrence = ""
        elif name == "UID":
            uid = value.strip()
        elif name.split(";")[0] == "RECURRENCE-ID":
            recurrence = value.strip()
        elif line in ("END:VEVENT", "END:VTODO") and uid:
            yield uid, recurrence


def _parse(text: str) -> Component:
    with warnings.catch_warnings():
        # icalendar warns when it reads a vendor TZID (/vendor/Europe/Berlin) as its IANA name:
        # exactly what DESIGN asks for.
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        try:
            calendar = icalendar.Calendar.from_ical(text)
        except ValueError as exc:
            raise Quarantined(f"not iCalendar: {exc}") from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise Quarantined("not a VCALENDAR")
    return calendar


def _zone_of(
    calendar: icalendar.Calendar, collection_zone: str | None, source_zone: tzinfo
) -> tuple[tzinfo, icalendar.Calendar]:
    """The zone for floating and all-day times, and the calendar with X-WR-TIMEZONE applied."""
    wr_name = calendar.get("X-WR-TIMEZONE")
    if wr_name:
        try:
            wr_zone = ZoneInfo(str(wr_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise Quarantined(f"unknown X-WR-TIMEZONE {str(wr_name)!r}") from None
        return wr_zone, _WallClockWalker(wr_zone).walk(calendar)
    if collection_zone:
        try:
            return ZoneInfo(collection_zone), calendar
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return source_zone, calendar


class _WallClockWalker(x_wr_timezone.UTCChangingWalker):  # type: ignore[misc]
    """x-wr-timezone's conversion (UTC and floating times to the calendar's zone), VTODOs too."""

    VALUE_ATTRIBUTES = [*x_wr_timezone.UTCChangingWalker.VALUE_ATTRIBUTES, "DUE"]

    def walk(self, calendar: Component) -> Any:
        subcomponents = [self.walk_event(c) if c.name in _KINDS else c for c in calendar.subcomponents]
        return self.copy_if_changed(calendar, {}, subcomponents)


def _check(components: Sequence[Component], uid: str) -> None:
    """Refuses broken values, shapes RFC 5545 rules out, unknown zones and duplicate components."""
    seen: Counter[str] = Counter()
    for component in components:
        for name, message in getattr(component, "errors", []):  # icalendar names no property for a broken line
            raise Quarantined(f"unreadable {name}: {message}" if name else f"an unreadable line: {message}")
        _check_shape(component)
        if str(component.get("UID", uid)) != uid:
            raise Quarantined("several UIDs in one calendar object")
        for name in _TIMED:
            for value in _values(component.get(name)):
                tzid = value.params.get("TZID")
                moments = value.dts if hasattr(value, "dts") else [value]
                for moment in moments:
                    if tzid and isinstance(moment.dt, datetime) and moment.dt.tzinfo is None:
                        raise Quarantined(f"unknown time zone {tzid!r} in {name}")
        recurrence = component.get("RECURRENCE-ID")
        seen[recurrence.to_ical().decode() if recurrence is not None else ""] += 1
    if any(n > 1 for n in seen.values()):
        raise Quarantined("duplicate UID: two components with the same UID and RECURRENCE-ID")


def _check_shape(component: Component) -> None:
    """Refuses what RFC 5545 rules out and the expansion cannot guess around."""
    kind = component.name
    for name in _ONCE:
        value = component.get(name)
        if isinstance(value, list):
            raise Quarantined(f"{len(value)} {name} properties in one {kind} (RFC 5545 allows one)")
    for name in _DATES:
        value = component.get(name)
        if value is not None and not isinstance(getattr(value, "dt", None), date):
            raise Quarantined(f"{name} is not a date or a date-time")
    duration = component.get("DURATION")
    if duration is not None and not isinstance(getattr(duration, "dt", None), timedelta):
        raise Quarantined("DURATION is not a duration")
    if kind == "VEVENT" and "DTSTART" not in component:
        raise Quarantined("a VEVENT without DTSTART")
    if kind == "VTODO" and "RECURRENCE-ID" in component and "DTSTART" not in component and "DUE" not in component:
        raise Quarantined("a VTODO override with neither DUE nor DTSTART")


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _series(
    calendar: Component, master: Component, window: Window, zone: tzinfo, beyond: datetime | None = None
) -> tuple[list[Component], datetime | None]:
    """The series' occurrences in the window, in order, and where the cap cut it (if it did).

    With ``beyond``, those up to then too when the cap does not cut the series (they sort after
    the window's own, so :func:`_collect` stops before them).
    """
    cut = _cap_boundary(master, window, zone)
    stop = cut or max(window.end, beyond or window.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        warnings.simplefilter("ignore", DeprecationWarning)  # dateutil on a rule with COUNT and UNTIL
        try:
            found = recurring_ical_events.of(calendar, components=list(_KINDS)).between(window.start, stop)
        except (ValueError, TypeError) as exc:  # a rule dateutil cannot expand
            raise Quarantined(f"cannot expand the series: {exc}") from exc
    found.sort(key=lambda c: instant(_start(c), zone, window.all_day_at))
    return found, cut


def _cap_boundary(master: Component, window: Window, zone: tzinfo) -> datetime | None:
    """Where the window's (cap+1)-th slot starts, if the rule has that many; walks the rule once.

    recurring_ical_events walks a rule from its DTSTART on every query, so a dense rule that
    started long ago would cost minutes: past ``MAX_STEPS`` slots before the window ends, the
    series is refused as too dense instead. A rule dateutil cannot read here is left to
    recurring_ical_events, which knows more of the quirks. Several RRULEs are walked together.
    """
    rules = _values(master.get("RRULE"))
    if not rules:
        return None
    first = _start(master)
    start = first if isinstance(first, datetime) else datetime.combine(first, time())
    slots = rruleset()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # COUNT with UNTIL: dateutil warns, reads it
            for rule in rules:
                slots.rrule(cast(rrule, rrulestr(rule.to_ical().decode(), dtstart=start)))
    except (ValueError, TypeError):
        return None
    in_window = 0
    for step, slot in enumerate(slots):
        moment = instant(slot, zone, window.all_day_at)
        if moment >= window.end:
            return None
        if moment >= window.start:
            in_window += 1
            if in_window > window.cap:
                return moment
        if step >= MAX_STEPS:
            raise Quarantined(f"the series is too dense to expand: over {MAX_STEPS} occurrences before the window ends")
    return None


def _collect(result: Expansion, components: Iterable[Component], read: Prepared, window: Window) -> None:
    """Turns expanded components into occurrences, within the window and the cap."""
    master, uid, location, zone, recurring = read.master, read.uid, read.location, read.zone, read.recurring
    overrides = [c for c in read.components if "RECURRENCE-ID" in c]
    all_day = not isinstance(_start(master), datetime)
    todo_lead = _todo_lead(master)
    ranges = {
        c["RECURRENCE-ID"].dt: c
        for c in overrides
        if str(c["RECURRENCE-ID"].params.get("RANGE", "")).upper() == "THISANDFUTURE" and "DTSTART" in c
    }
    kept = 0
    for component in components:
        slot_value = _recurrence_id(component, ranges) if recurring else None
        start = instant(_start(component), zone, window.all_day_at)
        if start >= window.end:
            break
        due = instant(component["DUE"].dt, zone, window.all_day_at) if "DUE" in component else start
        if not window.start <= due < window.end:
            continue
        ident = OccurrenceId(uid, slot_key(slot_value, zone, window.all_day_at) if slot_value is not None else "")
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            result.cancelled.append(ident)
            continue
        if kept == window.cap:
            result.capped.setdefault(uid, due)
            break
        kept += 1
        slot_due = None
        if slot_value is not None:
            slot_due = instant(slot_value, zone, window.all_day_at) + (todo_lead or timedelta(0))
        result.occurrences.append(_occurrence(component, ident, location, due, slot_due, all_day, zone))


def _start(component: Component) -> date:
    prop = component.get("DTSTART") or component.get("DUE")
    return cast(date, prop.dt)


def _todo_lead(master: Component) -> timedelta | None:
    """For a VTODO with DTSTART and DUE: how long after its start it is due (slots are starts)."""
    if master.name == "VTODO" and "DTSTART" in master and "DUE" in master:
        return instant(master["DUE"].dt, UTC, time()) - instant(master["DTSTART"].dt, UTC, time())
    return None


def _recurrence_id(component: Component, ranges: dict[date, Component]) -> date:
    """The slot this occurrence fills: its RECURRENCE-ID, undoing a THISANDFUTURE shift."""
    recurrence = component.get("RECURRENCE-ID")
    if recurrence is None:
        return _start(component)
    override = ranges.get(recurrence.dt)
    if override is None:
        return cast(date, recurrence.dt)
    # recurring_ical_events gives every occurrence after a THISANDFUTURE override that
    # override's RECURRENCE-ID; its own slot is its start less the override's shift.
    shift = override["DTSTART"].dt - override["RECURRENCE-ID"].dt
    return cast(date, _start(component) - shift)


def instant(value: date, zone: tzinfo, all_day_at: time) -> datetime:
    """A DATE, a floating time or a zoned time, as a UTC instant."""
    if not isinstance(value, datetime):
        return datetime.combine(value, all_day_at, zone).astimezone(UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone).astimezone(UTC)
    return value.astimezone(UTC)


def slot_key(value: date, zone: tzinfo, all_day_at: time) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return instant(value, zone, all_day_at).strftime("%Y%m%dT%H%M%SZ")


def _occurrence(
    c: Component,
    ident: OccurrenceId,
    location: Location,
    due: datetime,
    slot_due: datetime | None,
    all_day: bool,
    zone: tzinfo,
) -> Occurrence:
    kind: Kind = "VTODO" if c.name == "VTODO" else "VEVENT"
    duration = _duration(c) if kind == "VEVENT" else None
    description = _text(c, "DESCRIPTION")
    place = _text(c, "LOCATION")
    completed_prop = c.get("COMPLETED")
    completed = kind == "VTODO" and (str(c.get("STATUS", "")).upper() == "COMPLETED" or completed_prop is not None)
    start = instant(_start(c), zone, time(0)) if "DTSTART" in c else due
    return Occurrence(
        id=ident,
        location=location,
        kind=kind,
        due=due,
        slot_due=slot_due,
        duration=duration,
        all_day=all_day,
        summary=_text(c, "SUMMARY"),
        description=description,
        place=place,
        url=_text(c, "URL"),
        conference=_conference(c, description, place),
        categories=tuple(_categories(c)),
        organizer=_email(_first(c, "ORGANIZER")),
        attendees=tuple(_attendees(c)),
        classification=_text(c, "CLASS", "PUBLIC").upper(),
        transparency=_text(c, "TRANSP", "OPAQUE").upper(),
        status=str(c.get("STATUS", "")).upper(),
        completed=completed,
        completed_at=instant(completed_prop.dt, zone, time(0)) if completed_prop is not None else None,
        sequence=int(_first(c, "SEQUENCE") or 0),
        alarms=tuple(_alarms(c, start, due, duration)),
    )


def _first(c: Component, name: str) -> Any:
    """A property's value, the first one if it came more than once."""
    values = _values(c.get(name))
    return values[0] if values else None


def _text(c: Component, name: str, default: str = "") -> str:
    value = _first(c, name)
    return default if value is None else str(value)


def _duration(c: Component) -> timedelta | None:
    if "DTEND" in c and "DTSTART" in c:
        end, start = c["DTEND"].dt, c["DTSTART"].dt
        if isinstance(end, datetime) and isinstance(start, datetime) and (end.tzinfo is None) == (start.tzinfo is None):
            return end - start
        if not isinstance(end, datetime) and not isinstance(start, datetime):
            return cast(timedelta, end - start)
        return None
    if "DURATION" in c:
        return cast(timedelta, c["DURATION"].dt)
    return None


def _email(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return text[7:] if text.lower().startswith("mailto:") else text


def _attendees(c: Component) -> Iterator[Attendee]:
    for value in _values(c.get("ATTENDEE")):
        email = _email(value)
        if email:
            yield Attendee(
                email=email,
                partstat=str(value.params.get("PARTSTAT", "NEEDS-ACTION")).upper(),
                role=str(value.params.get("ROLE", "REQ-PARTICIPANT")).upper(),
                name=str(value.params.get("CN", "")),
            )


def _categories(c: Component) -> Iterator[str]:
    for value in _values(c.get("CATEGORIES")):
        for category in getattr(value, "cats", [value]):
            if str(category).strip():
                yield str(category).strip()


def _conference(c: Component, description: str, place: str) -> str:
    for name in ("CONFERENCE", "X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL"):
        if c.get(name):
            return str(_values(c.get(name))[0])
    found = _CONFERENCE.search(f"{place}\n{description}")
    return found.group(0) if found else ""


def _alarms(c: Component, start: datetime, due: datetime, duration: timedelta | None) -> Iterator[timedelta]:
    """Each alarm's lead before the due time; alarms at or after it have no Kizen form."""
    end = due if c.name == "VTODO" else start + (duration or timedelta(0))
    for alarm in c.walk("VALARM"):
        trigger = _first(alarm, "TRIGGER")
        if trigger is None:
            continue
        value = trigger.dt
        if isinstance(value, timedelta):
            related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
            moment = (end if related_end else start) + value
        elif isinstance(value, datetime):
            moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        else:
            continue
        lead = due - moment
        if lead > timedelta(0):
            yield lead

"""Edits syncd makes to calendar objects: the logged entry, and a move made in Kizen.

Each function takes an object's iCalendar text and returns the edited text, changing only what
DESIGN section 4 allows: every other property (attendees, alarms, unknown X- properties)
survives. One occurrence of a series is edited through its override (RECURRENCE-ID), made from
the series if it has none, so the rest of the series is untouched.

- :func:`mark_logged`: a VTODO gets ``STATUS:COMPLETED``, ``COMPLETED``, ``PERCENT-COMPLETE:100``;
  a VEVENT a marker before its SUMMARY; both syncd's X- properties. No time, attendee or
  SEQUENCE changes, so servers send no invitations.
- :func:`move`: DTSTART (and DTEND or DUE) moved together, SEQUENCE up, as any reschedule.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import icalendar

from syncd.calendar.occurrences import slot_key
from syncd.errors import ItemError
from syncd.model import Location

MARK_PROPERTIES = ("X-SYNCD-ACTIVITY-ID", "X-SYNCD-LOGGED-ACTIVITY-ID", "X-SYNCD-COMPLETED-AT")


def mark_logged(
    ical: str,
    where: Location,
    uid: str,
    slot: str,
    *,
    zone: tzinfo,
    activity_id: str,
    logged_activity_id: str,
    completed_at: datetime,
    marker: str,
) -> str:
    calendar = icalendar.Calendar.from_ical(ical)
    component = _occurrence(calendar, where, uid, slot, zone)
    if component.name == "VTODO":
        _set(component, "STATUS", "COMPLETED")
        _set(component, "COMPLETED", completed_at.astimezone(UTC))
        _set(component, "PERCENT-COMPLETE", 100)
    elif marker:
        summary = str(component.get("SUMMARY", ""))
        if not summary.startswith(marker):
            _set(component, "SUMMARY", marker + summary)
    _set(component, "X-SYNCD-ACTIVITY-ID", activity_id)
    _set(component, "X-SYNCD-LOGGED-ACTIVITY-ID", logged_activity_id)
    _set(component, "X-SYNCD-COMPLETED-AT", completed_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return str(calendar.to_ical().decode("utf-8"))


def move(ical: str, where: Location, uid: str, slot: str, due: datetime, *, zone: tzinfo) -> str:
    """Moves one occurrence so that it is due at ``due`` (its start; a VTODO's DUE)."""
    calendar = icalendar.Calendar.from_ical(ical)
    component = _occurrence(calendar, where, uid, slot, zone)
    key = "DUE" if component.name == "VTODO" and "DUE" in component else "DTSTART"
    old = component[key].dt
    new = due.astimezone(old.tzinfo) if isinstance(old, datetime) and old.tzinfo else due.astimezone(zone)
    if isinstance(old, datetime) and old.tzinfo is None:
        new = new.replace(tzinfo=None)  # floating stays floating, read in the same zone as before
    if not isinstance(old, datetime):
        new = new.date()  # type: ignore[assignment]
    shift = _difference(new, old)
    for name in ("DTSTART", "DTEND", "DUE"):
        if name in component:
            _set(component, name, component[name].dt + shift)
    _set(component, "SEQUENCE", int(component.get("SEQUENCE", 0)) + 1)
    return str(calendar.to_ical().decode("utf-8"))


def _difference(new: date, old: date) -> timedelta:
    return new - old


def _occurrence(calendar: Any, where: Location, uid: str, slot: str, zone: tzinfo) -> Any:
    """The component for one occurrence: the item, its override, or a new override."""
    components = [c for c in calendar.subcomponents if c.name in ("VEVENT", "VTODO") and str(c.get("UID")) == uid]
    master = next((c for c in components if "RECURRENCE-ID" not in c), components[0] if components else None)
    if master is None:
        raise ItemError(where.source, uid, f"no longer in {where.href}")
    if not slot:
        return master
    for component in components:
        recurrence = component.get("RECURRENCE-ID")
        if recurrence is not None and slot_key(recurrence.dt, zone, _ALL_DAY) == slot:
            return component
    override = copy.deepcopy(master)
    for name in ("RRULE", "RDATE", "EXDATE", "EXRULE"):
        override.pop(name, None)
    start = master["DTSTART"].dt if "DTSTART" in master else master["DUE"].dt
    slot_start = _slot_value(slot, start, zone)
    shift = _difference(slot_start, start)
    for name in ("DTSTART", "DTEND", "DUE"):
        if name in master:
            _set(override, name, master[name].dt + shift)
    _set(override, "RECURRENCE-ID", slot_start)
    calendar.add_component(override)
    return override


_ALL_DAY = datetime.min.time()


def _slot_value(slot: str, like: date, zone: tzinfo) -> date:
    """The slot as a value of the same kind as the series' start (a date, or a time in its zone)."""
    if len(slot) == 8:
        return date(int(slot[:4]), int(slot[4:6]), int(slot[6:]))
    moment = datetime.strptime(slot, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if isinstance(like, datetime) and like.tzinfo is not None:
        return moment.astimezone(like.tzinfo)
    if isinstance(like, datetime):
        return moment.astimezone(zone).replace(tzinfo=None)  # floating: the wall clock it was read in
    return moment.date()


def _set(component: Any, name: str, value: Any) -> None:
    component.pop(name, None)
    component.add(name, value)  # icalendar writes the TZID of a zoned time itself

"""Each calendar object's occurrences as a cycle last found them, so an unchanged one is not parsed.

Parsing and expanding every stored object is most of a cycle's cost, and almost all of it is for
objects that did not change. So what an object expanded to is remembered, in the state, with:

- a digest of its text and of every input that shapes the expansion (:func:`fingerprint`: the
  window's length, zone, all-day time and cap, the collection's zone, syncd's version and the
  code and libraries that expand), so an edit, a config change or an upgrade expands it again;
- the window starts it holds for (:func:`syncd.calendar.occurrences.expand_stable`: until the
  window's start passes one of its occurrences or its end reaches the next one; for ever for an
  object quarantined or skipped as it reads). Outside them it is expanded again;
- what following a paired occurrence out of the window found, per slot (that window does not
  move, so it holds until the object changes).

A remembered expansion is the one the object would expand to now, so the cycle's result is the
same with or without it (``tests/engine/test_remembered.py`` compares them on random histories).
Quarantines are remembered like the rest, but something unforeseen (an exception the expansion
did not expect) is never kept: it is tried again, and logged, every cycle. Duplicates across
objects are found anew every cycle, from the text, before any remembered expansion is used.

Reading stays pure: :class:`Memo` only says what to remember (:meth:`Memo.changed`); a real run
records it with the read (:func:`syncd.sync.commit.commit_read`), a dry run does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from syncd import __version__
from syncd.calendar import occurrences
from syncd.calendar.occurrences import Expansion, Window, expand_all, expand_kept, expand_stable, following
from syncd.model import Attendee, Location, Occurrence, OccurrenceId, Quarantine, Resource, Skipped

FORMAT = 1
LONGEST = timedelta(days=7)  # a series is expanded this far past the window, so kept at most this long
_LIBRARIES = ("icalendar", "recurring-ical-events", "x-wr-timezone", "python-dateutil", "tzdata")
_CODE: str | None = None


def fingerprint(window: Window, collection_zone: str | None) -> str:
    """What shapes a collection's expansions besides each object's text, as a digest."""
    shape = {
        "format": FORMAT,
        "syncd": __version__,
        "code": _code(),
        "length": (window.end - window.start).total_seconds(),
        "zone": str(window.zone),
        "all_day_at": window.all_day_at.isoformat(),
        "cap": window.cap,
        "collection_zone": collection_zone,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def _code() -> str:
    """The expansion's code and libraries: a digest of the modules' text and the libraries' versions."""
    global _CODE
    if _CODE is None:
        digest = hashlib.sha256()
        for module in (occurrences.__file__, __file__, str(Path(__file__).parents[1] / "model.py")):
            digest.update(Path(module).read_bytes())
        for name in _LIBRARIES:
            try:
                digest.update(f"{name}={metadata.version(name)}".encode())
            except metadata.PackageNotFoundError:
                digest.update(f"{name}=none".encode())
        _CODE = digest.hexdigest()
    return _CODE


class Memo:
    """One collection's remembered expansions for one cycle's window: used, and brought up to date.

    ``remembered`` is the state's (href -> JSON, :meth:`syncd.state.protocol.Expansions.expansions`).
    """

    def __init__(self, remembered: Mapping[str, str], window: Window, collection_zone: str | None) -> None:
        self._remembered = remembered
        self._window = window
        self._zone = collection_zone
        self._print = fingerprint(window, collection_zone)
        self._changed: dict[str, dict[str, Any]] = {}
        self.parsed = 0  # objects expanded anew this cycle (for the tests and the benchmarks)

    def expand_all(self, resources: Iterable[Resource]) -> Expansion:
        """As :func:`~syncd.calendar.occurrences.expand_all`, from what is remembered where it holds."""
        return expand_all(resources, self._window, self._zone, self.expand)

    def expand(self, resource: Resource) -> Expansion:
        entry = self._entry(resource)
        start = self._window.start
        kept = entry.get("window")
        if kept is not None and (
            kept["from"] is None
            or datetime.fromisoformat(kept["from"]) <= start < datetime.fromisoformat(kept["until"])
        ):
            return _decode(kept["expansion"], resource.location)
        self.parsed += 1
        found, holds = expand_stable(resource, self._window, self._zone, LONGEST)
        if holds is None:
            entry["window"] = {"from": None, "until": None, "expansion": _encode(found)}
        elif holds > timedelta(0):
            until = (start + holds).isoformat()
            entry["window"] = {"from": start.isoformat(), "until": until, "expansion": _encode(found)}
        elif kept is None:
            return found
        else:
            entry["window"] = None
        self._changed[resource.location.href] = entry
        return found

    def follow(self, resource: Resource, slot: str) -> Expansion:
        """As :func:`~syncd.calendar.occurrences.follow`: the occurrence in that slot, or none, or why not."""
        entry = self._entry(resource)
        kept = entry["followed"].get(slot)
        if kept is not None:
            return _decode(kept, resource.location)
        self.parsed += 1
        found, keep = expand_kept(resource, following(slot, self._window), self._zone)
        # only what reading uses: the occurrence in that slot, and whether the object is quarantined
        found = Expansion([o for o in found.occurrences if o.id.slot == slot], quarantined=found.quarantined)
        if keep:
            entry["followed"][slot] = _encode(found)
            self._changed[resource.location.href] = entry
        return found

    def changed(self) -> dict[str, str]:
        """What to remember: the entries this cycle made or changed (href -> JSON)."""
        return {href: json.dumps(entry, sort_keys=True) for href, entry in self._changed.items()}

    def forgotten(self, present: Iterable[str]) -> tuple[str, ...]:
        """The remembered objects no longer in the collection."""
        return tuple(sorted(set(self._remembered) - set(present)))

    def _entry(self, resource: Resource) -> dict[str, Any]:
        href = resource.location.href
        digest = hashlib.sha256(f"{self._print}\x00{resource.ical}".encode()).hexdigest()
        if href in self._changed:
            entry = self._changed[href]
        else:
            text = self._remembered.get(href)
            entry = json.loads(text) if text is not None else {}
        if entry.get("digest") != digest:
            entry = {"digest": digest, "window": None, "followed": {}}
        return entry


# --- the JSON form of an expansion (the location is the object's, so it is not kept) ----------------


def _encode(expansion: Expansion) -> dict[str, Any]:
    return {
        "occurrences": [_occurrence(o) for o in expansion.occurrences],
        "cancelled": [[i.uid, i.slot] for i in expansion.cancelled],
        "quarantined": [[q.uid, q.reason] for q in expansion.quarantined],
        "skipped": [[s.uid, s.reason] for s in expansion.skipped],
        "capped": {uid: when.isoformat() for uid, when in expansion.capped.items()},
    }


def _decode(data: dict[str, Any], location: Location) -> Expansion:
    return Expansion(
        occurrences=[_from_occurrence(o, location) for o in data["occurrences"]],
        cancelled=[OccurrenceId(uid, slot) for uid, slot in data["cancelled"]],
        quarantined=[Quarantine(location, uid, reason) for uid, reason in data["quarantined"]],
        skipped=[Skipped(location, uid, reason) for uid, reason in data["skipped"]],
        capped={uid: datetime.fromisoformat(when) for uid, when in data["capped"].items()},
    )


def _span(value: timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _from_span(value: list[int]) -> timedelta:
    return timedelta(days=value[0], seconds=value[1], microseconds=value[2])


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _occurrence(o: Occurrence) -> dict[str, Any]:
    return {
        "id": [o.id.uid, o.id.slot],
        "kind": o.kind,
        "due": o.due.isoformat(),
        "slot_due": _when(o.slot_due),
        "duration": _span(o.duration) if o.duration is not None else None,
        "all_day": o.all_day,
        "summary": o.summary,
        "description": o.description,
        "place": o.place,
        "url": o.url,
        "conference": o.conference,
        "categories": list(o.categories),
        "organizer": o.organizer,
        "attendees": [[a.email, a.partstat, a.role, a.name] for a in o.attendees],
        "classification": o.classification,
        "transparency": o.transparency,
        "status": o.status,
        "completed": o.completed,
        "completed_at": _when(o.completed_at),
        "sequence": o.sequence,
        "alarms": [_span(a) for a in o.alarms],
    }


def _from_occurrence(d: dict[str, Any], location: Location) -> Occurrence:
    return Occurrence(
        id=OccurrenceId(*d["id"]),
        location=location,
        kind=d["kind"],
        due=datetime.fromisoformat(d["due"]),
        slot_due=_from_when(d["slot_due"]),
        duration=_from_span(d["duration"]) if d["duration"] is not None else None,
        all_day=d["all_day"],
        summary=d["summary"],
        description=d["description"],
        place=d["place"],
        url=d["url"],
        conference=d["conference"],
        categories=tuple(d["categories"]),
        organizer=d["organizer"],
        attendees=tuple(Attendee(*a) for a in d["attendees"]),
        classification=d["classification"],
        transparency=d["transparency"],
        status=d["status"],
        completed=d["completed"],
        completed_at=_from_when(d["completed_at"]),
        sequence=d["sequence"],
        alarms=tuple(_from_span(a) for a in d["alarms"]),
    )

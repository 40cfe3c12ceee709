"""The shapes shared by connectors, expansion, mapping and the engine: frozen and typed.

A connector reports :class:`CollectionChanges`: the :class:`Resource` objects that are new or
changed since a :class:`Cursor`, and the hrefs that are gone. Expansion turns each resource into
:class:`Occurrence` values (or a :class:`Quarantine` naming why not); mapping turns occurrences
into activity fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

Kind = Literal["VEVENT", "VTODO"]


class Policy(StrEnum):
    """Which side wins when both moved the due time (``conflict_policy``): the text is the config's."""

    CALENDAR = "calendar"
    CRM = "crm"
    MANUAL = "manual"  # record the conflict, change neither side until ``syncd conflicts resolve``

    @classmethod
    def keeping(cls, side: str) -> Policy:
        """The decision that keeps ``side``'s value (``--keep calendar``, else Kizen's: crm)."""
        return cls.CALENDAR if side == "calendar" else cls.CRM


@dataclass(frozen=True)
class Location:
    """Where a calendar object lives: a source, a collection in it, and the object's href.

    For an ICS feed the collection is the feed's URL or path and the href is the UID (or the
    synthetic key of an item without one): a feed has no other address for an item.
    """

    source: str
    collection: str
    href: str


@dataclass(frozen=True)
class Resource:
    """One calendar object as fetched: a VCALENDAR holding one UID's components.

    Attributes:
        location: where it lives.
        etag: the server's etag (CalDAV), or a digest of the text (ICS); None if unknown.
        ical: the object's iCalendar text, with the VTIMEZONEs it uses.
    """

    location: Location
    etag: str | None
    ical: str


@dataclass(frozen=True)
class Cursor:
    """Where a collection's last sync stopped: whatever the server offers to ask "what changed".

    CalDAV keeps ``sync_token`` (RFC 6578) and ``ctag``; an ICS feed keeps the HTTP validators
    (``etag``, ``last_modified``) and a digest of each component (``digests``), so an unchanged
    body or an unchanged component costs no parse.
    """

    sync_token: str | None = None
    ctag: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_digest: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Collection:
    """One calendar collection as a connector's ``discover()`` found it.

    Attributes:
        url: the collection's absolute URL: the ``collection`` of its objects' locations.
        name: its display name, or the last segment of its path when it has none.
        components: which of VEVENT and VTODO it holds.
        zone: its ``calendar-timezone`` as an IANA zone name, if it has one that names a zone.
    """

    url: str
    name: str
    components: tuple[Kind, ...]
    zone: str | None = None


@dataclass(frozen=True)
class CollectionChanges:
    """What changed in one collection since a cursor.

    Attributes:
        changed: resources new or changed since the cursor.
        deleted: hrefs of resources gone since the cursor.
        complete: True when ``changed`` and ``unchanged`` list every resource the collection
            holds (a full listing), so any href known before and in neither is gone too.
        unchanged: hrefs known to be unchanged (a full listing that skipped them by etag).
        cursor: the cursor to store once these changes are applied.
        zone: the collection's own time zone (CalDAV ``calendar-timezone``), IANA name, if any.
        requests: the HTTP requests this cost (for metrics and benchmarks).
    """

    source: str
    collection: str
    changed: tuple[Resource, ...] = ()
    deleted: tuple[str, ...] = ()
    complete: bool = False
    unchanged: tuple[str, ...] = ()
    cursor: Cursor = field(default_factory=Cursor)
    zone: str | None = None
    requests: int = 0


@dataclass(frozen=True)
class OccurrenceId:
    """An occurrence's identity across every source of a business (DESIGN section 2).

    ``slot`` is empty for a single item; for an occurrence of a series it is its slot's start,
    the RECURRENCE-ID it has or would have, as a UTC instant (``20260323T080000Z``), or a date
    (``20260323``) for an all-day series, whatever form the calendar wrote it in.
    """

    uid: str
    slot: str = ""


@dataclass(frozen=True)
class Attendee:
    email: str
    partstat: str = "NEEDS-ACTION"
    role: str = "REQ-PARTICIPANT"
    name: str = ""


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a calendar item inside the sync window, ready for mapping.

    Attributes:
        due: when it is due, in UTC (VEVENT: start; VTODO: DUE, else DTSTART).
        slot_due: for an occurrence of a series, the due time of its slot before any override
            (the engine sends it as ``original_due_datetime``); None for a single item.
        duration: the item's own length, if it has one (the feed uses it for DTEND).
        all_day: the item's times are dates.
        completed: a VTODO marked completed (STATUS:COMPLETED or a COMPLETED time).
        alarms: each VALARM's offset before the due time (positive = before).
    """

    id: OccurrenceId
    location: Location
    kind: Kind
    due: datetime
    slot_due: datetime | None = None
    duration: timedelta | None = None
    all_day: bool = False
    summary: str = ""
    description: str = ""
    place: str = ""
    url: str = ""
    conference: str = ""
    categories: tuple[str, ...] = ()
    organizer: str = ""
    attendees: tuple[Attendee, ...] = ()
    classification: str = "PUBLIC"
    transparency: str = "OPAQUE"
    status: str = ""
    completed: bool = False
    completed_at: datetime | None = None
    sequence: int = 0
    alarms: tuple[timedelta, ...] = ()


@dataclass(frozen=True)
class Quarantine:
    """An item syncd will not sync this run, and why; the rest of its source goes on."""

    location: Location
    uid: str
    reason: str


@dataclass(frozen=True)
class Skipped:
    """An item that is fine but has nothing to sync (a VTODO with no due time, a syncd feed event)."""

    location: Location
    uid: str
    reason: str

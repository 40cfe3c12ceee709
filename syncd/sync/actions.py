"""The sync core's vocabulary: what the plan looks at (:class:`View`) and the actions it returns.

Plain frozen values, no behaviour: ``plan`` builds them, ``apply`` performs them (one handler per
type), ``--dry-run`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncd.model import Location, Occurrence, OccurrenceId, Policy
from syncd.state.protocol import Conflict, Pairing, Settled

FIELDS = ("note", "assignee", "contacts", "notifications")
FEED_ONLY = ("summary", "minutes")  # remembered for syncd's feed; Kizen has no such fields


@dataclass(frozen=True)
class SourceRules:
    """What a source allows, for the plan."""

    name: str
    owner: str
    policy: Policy = Policy.CALENDAR
    write_back: bool = False
    log_past_events: bool = False


@dataclass(frozen=True)
class Desired:
    """The activity the calendar wants for one occurrence identity, its look-ups done.

    ``fields`` holds what syncd owns, in the form it compares and sends: ``due`` (ISO UTC),
    ``note``, ``assignee`` (``{"employee_id"|"role_id": id}``), ``contacts`` (sorted record ids),
    ``notifications`` (a list of ``{type, time_amount, time_unit}``).
    """

    id: OccurrenceId
    lead: Occurrence
    locations: tuple[Location, ...]
    source: SourceRules
    activity_type_id: str
    fields: Mapping[str, Any]
    original_due: datetime
    writable_lead: bool = False
    owner_organizes: bool = True


@dataclass(frozen=True)
class KizenActivity:
    """What Kizen shows of a paired activity this cycle (from the list, or one GET)."""

    id: str
    due: datetime
    employee_id: str | None
    completed: bool = False
    logged_activity_id: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class Create:
    desired: Desired


@dataclass(frozen=True)
class Update:
    """PATCH the fields syncd owns that the calendar changed (never the original due time)."""

    pairing: Pairing
    desired: Desired
    changes: Mapping[str, Any]
    conflict: int | None = None  # the resolved conflict this applies


@dataclass(frozen=True)
class Reschedule:
    """Re-pair an activity to the occurrence that took its place in a changed series, and move it."""

    pairing: Pairing
    desired: Desired


@dataclass(frozen=True)
class Delete:
    pairing: Pairing
    reason: str


@dataclass(frozen=True)
class Log:
    """Log the activity (a to-do completed in the calendar), which completes it in Kizen."""

    pairing: Pairing
    desired: Desired


@dataclass(frozen=True)
class WriteBack:
    """Write the logged entry to every writable location of the occurrence."""

    pairing: Pairing
    logged_activity_id: str


@dataclass(frozen=True)
class MoveInCalendar:
    """Move the lead calendar item to Kizen's due time (DTSTART and DTEND, SEQUENCE up)."""

    pairing: Pairing
    desired: Desired
    due: datetime
    conflict: int | None = None


@dataclass(frozen=True)
class Foreign:
    """An open activity made in Kizen (not by syncd) for the owner of a source that imports."""

    activity_id: str
    due: datetime
    summary: str
    description: str
    minutes: int
    source: str
    collection: str


@dataclass(frozen=True)
class Import:
    """Create a calendar item for an activity made in Kizen, then pair it like any other."""

    foreign: Foreign


@dataclass(frozen=True)
class Settle:
    """Record a new state of a pairing without any remote write (seen values, retirement)."""

    pairing: Pairing
    reason: str
    settled: Settled | None = None
    kizen_seen: Mapping[str, Any] = field(default_factory=dict)
    calendar_seen: Mapping[str, Any] = field(default_factory=dict)
    hands_off: tuple[str, ...] = ()
    lead: Location | None = None
    locations: tuple[Location, ...] | None = None
    rekey: OccurrenceId | None = None  # the slot a changed series gave it (a settled slot keeps its place)


@dataclass(frozen=True)
class RecordConflict:
    pairing: Pairing
    field: str
    calendar_value: str
    kizen_value: str
    policy: Policy


Action = Create | Update | Reschedule | Delete | Log | WriteBack | MoveInCalendar | Settle | RecordConflict | Import


@dataclass(frozen=True)
class View:
    """Everything one plan looks at.

    Attributes:
        desired: what the calendars want, by identity (in the window, or followed out of it).
        gone: identities whose calendar item is certainly gone (deleted, cancelled, excluded)
            from a source that was read in full this cycle.
        kizen: Kizen's side of each paired activity it could read this cycle.
        pairings: the state's open pairings.
        conflicts: decisions made with ``syncd conflicts resolve``, not yet applied.
        now: the cycle's clock reading.
        window_end: the sync window's end.
        foreign: activities made in Kizen for the owners of sources that import them.
        watch: how long an overdue pairing is watched before it is left as it is.
        held: UIDs quarantined in a source read this cycle (a duplicate UID, a broken item):
            no copy of them is created, updated, deleted or settled until the calendar is fixed.
    """

    desired: Mapping[OccurrenceId, Desired]
    gone: frozenset[OccurrenceId]
    kizen: Mapping[str, KizenActivity]
    pairings: Sequence[Pairing]
    conflicts: Sequence[Conflict] = ()
    now: datetime | None = None
    window_end: datetime | None = None
    foreign: Sequence[Foreign] = ()
    watch: timedelta | None = None
    held: frozenset[str] = frozenset()

"""The sync core's vocabulary: what the plan looks at (:class:`View`) and the actions it returns.

Plain frozen values, no behaviour: ``plan`` builds them, ``apply`` performs them (one handler per
type), ``--dry-run`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from syncd.calendar.mapping import Assignee, Notification
from syncd.config import Config
from syncd.identifiers import imported_uid
from syncd.model import Location, Occurrence, OccurrenceId, Policy
from syncd.state.protocol import Conflict, Pairing, Settled

FIELDS = ("note", "assignee", "contacts", "notifications")
FEED_ONLY = ("summary", "minutes", "all_day")  # remembered for syncd's feed; Kizen has no such fields


@dataclass(frozen=True)
class SourceRules:
    """What a source allows, for the plan."""

    name: str
    owner: str
    policy: Policy = Policy.CALENDAR
    write_back: bool = False
    log_past_events: bool = False


@dataclass(frozen=True)
class Fields:
    """The fields syncd owns, as the calendar wants them, in calendar terms (emails and names:
    Kizen's ids are looked up only when they are sent).

    ``Pairing.calendar_seen`` keeps them in their stored, JSON form (:meth:`seen`), and the plan
    compares in that form, so a state written before this type existed compares the same.
    """

    due: str  # UTC, as utc_text writes it
    note: str
    assignee: Assignee
    contacts: tuple[str, ...]  # emails, one per address whatever its case, sorted
    unknown_contacts: Literal["skip", "fail"]
    notifications: tuple[Notification, ...]
    summary: str  # for syncd's feed only (Kizen has neither): what the calendar calls it,
    minutes: int | None  # and how long it is,
    all_day: bool | None = None  # and whether it is all-day (None: not, as pairings made before hold it)

    def seen(self) -> dict[str, Any]:
        """The stored form, as ``Pairing.calendar_seen`` and the journal hold it."""
        return {
            "due": self.due,
            "note": self.note,
            "assignee": {"kind": self.assignee.kind, "value": self.assignee.value},
            "contacts": list(self.contacts),
            "unknown_contacts": self.unknown_contacts,
            "notifications": [
                {"type": n.type, "time_amount": n.time_amount, "time_unit": n.time_unit} for n in self.notifications
            ],
            "summary": self.summary,
            "minutes": self.minutes,
            "all_day": self.all_day,
        }


@dataclass(frozen=True)
class Desired:
    """The activity the calendar wants for one occurrence identity: the fields syncd owns, and
    what the plan needs to know of the item and its source."""

    id: OccurrenceId
    lead: Occurrence
    locations: tuple[Location, ...]
    source: SourceRules
    activity_type_id: str
    fields: Fields
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
    """PATCH the fields syncd owns that the calendar changed (never the original due time).

    ``changes`` names them, each with its new value in the stored form (:meth:`Fields.seen`).
    """

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
class Guard:
    """What the rails look at besides the plan.

    Attributes:
        held: source -> why a stop recorded on an earlier run holds its deletions.
        read: the sources read this cycle (a stop clears only once its source is read).
        emptied: the sources whose calendar came back empty this cycle.
        allowed: the sources that may delete in bulk (``allow_mass_delete``).
        force: ``--force-delete``: every source may, and every recorded stop is lifted.
        minimum: a source with at most this many activities may delete them all.
        share: the share of a source's activities one run may delete.
    """

    held: Mapping[str, str] = field(default_factory=dict)
    read: frozenset[str] = frozenset()
    emptied: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    force: bool = False
    minimum: int = 10
    share: float = 0.5

    @classmethod
    def of(
        cls, config: Config, held: Mapping[str, str], read: Iterable[str], emptied: Iterable[str], *, force: bool
    ) -> Guard:
        """The guard of one cycle: the config's limits, the stops recorded, what was read."""
        return cls(
            held=dict(held),
            read=frozenset(read),
            emptied=frozenset(emptied),
            allowed=frozenset(s.name for s in config.sources if s.allow_mass_delete),
            force=force,
            minimum=config.sync.mass_delete_minimum,
            share=config.sync.mass_delete_share,
        )


def covered(source: str | None, only: Set[str] | None, unled: bool) -> bool:
    """Whether a cycle of the sources ``only`` (None: every source) looks after what ``source``
    leads. What no source leads (None: a pairing whose copies are all gone) is looked after by
    the cycles that keep it (``unled``), so no two workers' cycles look after it at once."""
    if source is None:
        return unled
    return only is None or source in only


@dataclass(frozen=True)
class View:
    """Everything one plan looks at.

    Attributes:
        desired: what the calendars want, by identity (in the window, or followed out of it).
        gone: identities whose calendar item is certainly gone (deleted, cancelled, excluded)
            from a source that was read in full this cycle.
        kizen: Kizen's side of each paired activity it could read this cycle.
        pairings: the state's pairings, settled ones too (a settled pairing is never made again).
        conflicts: decisions made with ``syncd conflicts resolve``, not yet applied.
        now: the cycle's clock reading.
        window_end: the sync window's end.
        foreign: activities made in Kizen for the owners of sources that import them.
        watch: how long an overdue pairing is watched before it is left as it is.
        held: UIDs quarantined in a source read this cycle (a duplicate UID, a broken item):
            no copy of them is created, updated, deleted or settled until the calendar is fixed.
        uncreated: occurrences whose activity may exist already (an unsettled create intent, a
            rebuild not done): nothing is created for them this cycle.
        unsettled: pairings whose intent is unsettled: nothing is done for them this cycle.
        unread: sources not read this cycle; the pairings they lead wait for them.
        only: ``--source`` or a team: only the pairings these sources lead are planned.
        unled: the pairings without a lead (their calendar copies all gone) are planned too. A
            team's cycle plans them only if its team keeps what belongs to no source, so no two
            workers plan them at once.
        guard: what the safety rails look at (:mod:`syncd.sync.rails`).
        kizen_failed: a step of this cycle could not use Kizen: nothing is sent to it.
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
    uncreated: frozenset[OccurrenceId] = frozenset()
    unsettled: frozenset[OccurrenceId] = frozenset()
    unread: frozenset[str] = frozenset()
    only: frozenset[str] | None = None
    unled: bool = True
    guard: Guard = Guard()
    kizen_failed: bool = False


def identity_of(action: Action) -> OccurrenceId:
    """The occurrence an action is about (an import's is the UID it gives the calendar item)."""
    if isinstance(action, Create):
        return action.desired.id
    if isinstance(action, Import):
        return OccurrenceId(imported_uid(action.foreign.activity_id))
    return action.pairing.id

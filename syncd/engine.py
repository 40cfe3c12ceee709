"""The sync decision table: ``plan()`` turns what the calendars want, what Kizen shows and what
the state remembers into actions. Pure: no I/O, no clock, no logging; ``--dry-run`` prints it.

Each row of DESIGN section 4 is a case below. Per-field merge: a side changed a field when its
value differs from what that side last showed (``Pairing.calendar_seen`` / ``kizen_seen``); a
field changed on one side flows to the other; the due time changed on both is a conflict settled
by the source's policy. Completion beats everything; a settled pairing is never touched again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from syncd.model import Location, Occurrence, OccurrenceId
from syncd.state import Conflict, Pairing

Policy = Literal["calendar", "crm", "manual"]
FIELDS = ("note", "assignee", "contacts", "notifications")
FEED_ONLY = ("summary", "minutes", "all_day")  # remembered for syncd's feed; Kizen has no such fields


@dataclass(frozen=True)
class SourceRules:
    """What a source allows, for the plan."""

    name: str
    owner: str
    policy: Policy = "calendar"
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
    settled: Literal["logged", "deleted", "gone", "expired"] | None = None
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


def plan(view: View) -> list[Action]:
    """The actions that bring Kizen, the calendars and the state in step, in a stable order."""
    actions: list[Action] = []
    paired = {p.id: p for p in view.pairings}
    resolved = {(c.occurrence, c.field): c for c in view.conflicts if c.status == "resolved"}
    unpaired = [
        view.desired[i] for i in sorted(view.desired.keys() - paired.keys(), key=_order) if i.uid not in view.held
    ]
    moved, unpaired, rekeyed = _series_changes(view, unpaired, resolved)
    actions += moved
    for desired in unpaired:
        if desired.lead.completed:
            continue  # a to-do done before syncd ever saw it open: nothing to schedule
        actions.append(Create(desired))
    known = {p.activity_id for p in view.pairings}
    actions += [Import(f) for f in sorted(view.foreign, key=lambda f: f.activity_id) if f.activity_id not in known]
    for pairing in sorted(paired.values(), key=lambda p: _order(p.id)):
        if pairing.settled is not None or pairing.id in rekeyed or pairing.id.uid in view.held:
            continue
        if view.watch is not None and view.now is not None and pairing.due + view.watch < view.now:
            days = view.watch.days
            actions.append(Settle(pairing, f"overdue for over {days} days; left as it is in Kizen", settled="expired"))
            continue
        if pairing.id in view.gone and view.window_end is not None and _slot_time(pairing) >= view.window_end:
            continue  # a slot the series lost beyond the window waits until the window reaches it
        actions += _pairing_actions(pairing, view, resolved)
    return actions


GONE = "gone from the calendar"  # how a pairing settled by its calendar item's deletion is told apart


def _series_changes(
    view: View, unpaired: list[Desired], resolved: Mapping[tuple[OccurrenceId, str], Conflict]
) -> tuple[list[Action], list[Desired], set[OccurrenceId]]:
    """A series whose slots moved (new DTSTART, RRULE or zone): old to new, k-th to k-th.

    The old series' pairings whose slot is gone and from now on (inside the window) are matched
    in order to the new series' unpaired occurrences from now on; a matched open one is
    rescheduled (its original due kept) instead of deleted and created again. A single item that
    became a series, or the other way round, is matched the same way, as a series of one.

    Settled slots keep their place in that order, or every later slot would land one off: a
    pairing settled in the state (logged, deleted in Kizen) or on Kizen's side this cycle
    (completed, deleted) moves to the new slot of its rank and nothing new is made for that slot.
    A logged one stays logged; one deleted in Kizen was removed on purpose and is not re-created.
    Settled pairings take part only when an open pairing of the series lost its slot this cycle
    (the sign of a series change), and not when their own calendar item was gone when they
    settled, since such a slot was no longer in the series. When Kizen could not be read for an
    open pairing that lost its slot, the order is unknown: that series waits for the next cycle
    (nothing rescheduled, created or deleted for it), rather than guess.

    Returns the actions, the occurrences still to create, and the identities handled here.
    """
    if view.now is None:
        return [], unpaired, set()
    now, end = view.now, view.window_end

    def ahead(pairing: Pairing) -> bool:
        return _slot_time(pairing) >= now and (end is None or _slot_time(pairing) < end)

    lost: dict[str, list[Pairing]] = {}
    for pairing in view.pairings:
        if pairing.settled is None and pairing.id in view.gone and ahead(pairing):
            lost.setdefault(pairing.id.uid, []).append(pairing)
    for pairing in view.pairings:
        if (
            pairing.settled is not None
            and pairing.id.uid in lost
            and pairing.id not in view.desired
            and not pairing.settled_reason.startswith(GONE)
            and ahead(pairing)
        ):
            lost[pairing.id.uid].append(pairing)
    actions: list[Action] = []
    left: list[Desired] = []
    fresh: dict[str, list[Desired]] = {}
    for desired in unpaired:
        if desired.id.uid in lost and desired.lead.due >= now and not desired.lead.completed:
            fresh.setdefault(desired.id.uid, []).append(desired)
        else:
            left.append(desired)
    handled: set[OccurrenceId] = set()
    for uid, new in fresh.items():
        old = sorted(lost[uid], key=_slot_time)
        if any(p.settled is None and p.activity_id not in view.kizen for p in old):
            handled |= {p.id for p in old}  # Kizen unread for one of them: decide next cycle
            continue
        new.sort(key=lambda d: (d.original_due, d.id.slot))
        for pairing, desired in zip(old, new, strict=False):
            handled.add(pairing.id)
            kizen = view.kizen.get(pairing.activity_id)
            if pairing.settled is None and kizen is not None and not (kizen.deleted or kizen.completed):
                actions.append(Reschedule(pairing, desired))
                continue
            actions.append(Settle(pairing, f"its slot moved with the series to {desired.id.slot}", rekey=desired.id))
            if pairing.settled is None:  # settled on Kizen's side this cycle: record it at its new slot
                actions += _pairing_actions(replace(pairing, id=desired.id), view, resolved)
        left += new[len(old) :]
    left.sort(key=lambda d: _order(d.id))
    return actions, left, handled


def _slot_time(pairing: Pairing) -> datetime:
    """When a pairing's slot starts (its due time for a single item)."""
    slot = pairing.id.slot
    if len(slot) == 16:
        return datetime.strptime(slot, "%Y%m%dT%H%M%SZ").replace(tzinfo=pairing.due.tzinfo)
    return pairing.original_due


def _order(identity: OccurrenceId) -> tuple[str, str]:
    return identity.uid, identity.slot


def _pairing_actions(
    pairing: Pairing, view: View, resolved: Mapping[tuple[OccurrenceId, str], Conflict]
) -> list[Action]:
    kizen = view.kizen.get(pairing.activity_id)
    desired = view.desired.get(pairing.id)
    if kizen is None:
        return []  # Kizen could not be read for it this cycle: decide nothing
    if kizen.deleted:
        return [Settle(pairing, "deleted in Kizen; the calendar item is left alone", settled="deleted")]
    if kizen.completed:
        if kizen.logged_activity_id and _writes_back(pairing, desired):
            return [WriteBack(pairing, kizen.logged_activity_id)]
        return [Settle(pairing, "completed in Kizen", settled="logged")]
    if desired is None:
        if pairing.id in view.gone:
            if pairing.created_by_syncd:
                return [Delete(pairing, GONE)]
            return [Settle(pairing, f"{GONE}; not created by syncd, so left in Kizen", settled="gone")]
        return []  # out of the window, or its source unreadable this cycle: follow it later
    if desired.lead.completed:
        return [Log(pairing, desired)]
    if desired.source.log_past_events and desired.lead.kind == "VEVENT" and view.now is not None:
        if desired.lead.due + (desired.lead.duration or timedelta(0)) <= view.now:
            return [Log(pairing, desired)]  # the event happened: log it, once
    return _merge(pairing, desired, kizen, resolved)


def _writes_back(pairing: Pairing, desired: Desired | None) -> bool:
    return desired is not None and desired.source.write_back and desired.writable_lead and not pairing.written_back


def _merge(
    pairing: Pairing, desired: Desired, kizen: KizenActivity, resolved: Mapping[tuple[OccurrenceId, str], Conflict]
) -> list[Action]:
    """Both sides exist and the activity is open: merge field by field."""
    actions: list[Action] = []
    changes: dict[str, Any] = {}
    decision: Conflict | None = None
    calendar_due, kizen_due = desired.fields["due"], _iso(kizen.due)
    calendar_moved = calendar_due != pairing.calendar_seen.get("due")
    kizen_moved = kizen_due != pairing.kizen_seen.get("due")
    if calendar_due == kizen_due:
        if calendar_moved or kizen_moved:  # both ended up at the same time: remember it
            actions.append(
                Settle(pairing, "both sides agree", kizen_seen={"due": kizen_due}, calendar_seen={"due": calendar_due})
            )
    elif calendar_moved and kizen_moved:
        decision = resolved.get((pairing.id, "due"))
        keep = decision.keep if decision is not None else desired.source.policy
        if decision is None:
            actions.append(RecordConflict(pairing, "due", calendar_due, kizen_due, desired.source.policy))
        if keep == "calendar":
            changes["due"] = calendar_due
        elif keep == "crm":
            actions.append(_kizen_move(pairing, desired, kizen, decision))
    elif calendar_moved:
        changes["due"] = calendar_due
    elif kizen_moved:
        actions.append(_kizen_move(pairing, desired, kizen, None))
    seen_employee = pairing.kizen_seen.get("employee_id")
    hands_off = set(pairing.hands_off)
    if "assignee" not in hands_off and seen_employee is not None and kizen.employee_id != seen_employee:
        hands_off.add("assignee")
        actions.append(Settle(pairing, "reassigned in Kizen; syncd leaves the assignee alone", hands_off=("assignee",)))
    for name in FIELDS:
        if name not in hands_off and desired.fields.get(name) != pairing.calendar_seen.get(name):
            changes[name] = desired.fields.get(name)
    if changes:
        actions.insert(0, Update(pairing, desired, changes, decision.id if decision and "due" in changes else None))
    elif desired.locations != pairing.locations or desired.lead.location != pairing.lead:
        where = "the lead copy changed" if desired.lead.location != pairing.lead else "its calendar copies changed"
        actions.append(Settle(pairing, where, lead=desired.lead.location, locations=desired.locations))
    elif any(desired.fields.get(k) != pairing.calendar_seen.get(k) for k in FEED_ONLY):
        seen = {k: desired.fields.get(k) for k in FEED_ONLY}
        actions.append(Settle(pairing, "the calendar item's title or length changed", calendar_seen=seen))
    return actions


def _kizen_move(pairing: Pairing, desired: Desired, kizen: KizenActivity, decision: Conflict | None) -> Action:
    """Kizen moved the activity: move the calendar item if syncd may, else let Kizen's time stand."""
    if desired.writable_lead and desired.owner_organizes:
        return MoveInCalendar(pairing, desired, kizen.due, decision.id if decision else None)
    why = "the calendar item is read-only" if not desired.writable_lead else "the owner does not organize the meeting"
    return Settle(pairing, f"moved in Kizen; {why}, so Kizen's time stands", kizen_seen={"due": _iso(kizen.due)})


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")

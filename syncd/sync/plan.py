"""The sync decision table: ``plan()`` turns what the calendars want, what Kizen shows and what
the state remembers into actions. Pure: no I/O, no clock, no logging; ``--dry-run`` prints it,
safety stops and held sends included, so a dry run shows what the real run then does.

Each row of DESIGN section 4 is a case below. Per-field merge: a side changed a field when its
value differs from what that side last showed (``Pairing.calendar_seen`` / ``kizen_seen``); a
field changed on one side flows to the other; the due time changed on both is a conflict settled
by the source's policy. Completion beats everything; a settled pairing is never touched again.

Beside the table: what this cycle may not touch (an unsettled intent, an unread source,
``--source``), the safety rails (:mod:`syncd.sync.rails`), and a cycle that could not use Kizen
sending nothing. One rule needs what only a read of one activity shows, just before its update:
whether someone edited the note, notifications or contacts in Kizen (:func:`edited_in_kizen`);
``apply`` makes that read and asks this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from syncd.identifiers import utc_text
from syncd.model import OccurrenceId, Policy
from syncd.state.protocol import GONE_FROM_CALENDAR, Conflict, Pairing, Settled
from syncd.sync.actions import (
    FEED_ONLY,
    FIELDS,
    Action,
    Create,
    Delete,
    Desired,
    Import,
    KizenActivity,
    Log,
    MoveInCalendar,
    RecordConflict,
    Reschedule,
    Settle,
    Update,
    View,
    WriteBack,
    covered,
)
from syncd.sync.rails import rails


@dataclass(frozen=True)
class Plan:
    """What one cycle will do.

    Attributes:
        actions: what to send and record, in order.
        stopped: source -> why a safety rail holds its deletions (for the report).
        stops: the rails' stops to record; ``cleared``: the recorded stops to lift.
        held: actions not sent because the cycle could not use Kizen.
    """

    actions: list[Action]
    stopped: dict[str, str] = field(default_factory=dict)
    stops: dict[str, str] = field(default_factory=dict)
    cleared: frozenset[str] = frozenset()
    held: int = 0


def plan(view: View) -> Plan:
    """The actions that bring Kizen, the calendars and the state in step, in a stable order,
    less what this cycle may not touch and what a safety rail holds back."""
    allowed = [a for a in _decide(view) if _allowed(a, view)]
    decided = rails(allowed, view.pairings, view.guard, view.now)
    actions, held = decided.actions, 0
    if view.kizen_failed:
        actions, held = [], len(actions)
    return Plan(actions, decided.stopped, decided.stops, decided.cleared, held)


def _allowed(action: Action, view: View) -> bool:
    """An action the cycle may take: no create whose activity may exist already, nothing for a
    pairing whose intent is unsettled or whose lead source was not read (or ``--source`` names
    another). A pairing without a lead (its copies all gone) is planned whatever was read, by
    the cycles that keep what belongs to no source (``View.unled``)."""
    if isinstance(action, Import):
        return True
    if isinstance(action, Create):
        return action.desired.id not in view.uncreated
    pairing = action.pairing
    if pairing.id in view.unsettled:
        return False
    return covered(pairing.lead_source, view.only, view.unled) and pairing.lead_source not in view.unread


def _decide(view: View) -> list[Action]:
    """The decision table proper: every row of DESIGN sections 4 and 5."""
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
            why = f"overdue for over {view.watch.days} days; left as it is in Kizen"
            actions.append(Settle(pairing, why, settled=Settled.EXPIRED))
            continue
        if pairing.id in view.gone and view.window_end is not None and _slot_time(pairing) >= view.window_end:
            continue  # a slot the series lost beyond the window waits until the window reaches it
        actions += _pairing_actions(pairing, view, resolved)
    return actions


GONE = "gone from the calendar"  # the reason given when a calendar item's deletion settles its pairing


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
            and pairing.settled not in GONE_FROM_CALENDAR
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
        return [Settle(pairing, "deleted in Kizen; the calendar item is left alone", settled=Settled.DELETED)]
    if kizen.completed:
        if kizen.logged_activity_id and _writes_back(pairing, desired):
            return [WriteBack(pairing, kizen.logged_activity_id)]
        return [Settle(pairing, "completed in Kizen", settled=Settled.LOGGED)]
    if desired is None:
        if pairing.id in view.gone:
            if pairing.created_by_syncd:
                return [Delete(pairing, GONE)]
            return [Settle(pairing, f"{GONE}; not created by syncd, so left in Kizen", settled=Settled.GONE)]
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
    want = desired.fields.seen()  # compared in the form the state keeps what each side showed
    calendar_due, kizen_due = desired.fields.due, utc_text(kizen.due)
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
        if keep == Policy.CALENDAR:
            changes["due"] = calendar_due
        elif keep == Policy.CRM:
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
        if name not in hands_off and want[name] != pairing.calendar_seen.get(name):
            changes[name] = want[name]
    if changes:
        actions.insert(0, Update(pairing, desired, changes, decision.id if decision and "due" in changes else None))
    elif desired.locations != pairing.locations or desired.lead.location != pairing.lead:
        where = "the lead copy changed" if desired.lead.location != pairing.lead else "its calendar copies changed"
        actions.append(Settle(pairing, where, lead=desired.lead.location, locations=desired.locations))
    elif any(want[k] != pairing.calendar_seen.get(k) for k in FEED_ONLY):
        seen = {k: want[k] for k in FEED_ONLY}
        actions.append(Settle(pairing, "the calendar item's title or length changed", calendar_seen=seen))
    return actions


KIZEN_ONLY_READ = ("note", "notifications", "contacts")  # fields Kizen's list does not return


def edited_in_kizen(pairing: Pairing, changes: Mapping[str, Any], current: Mapping[str, Any]) -> set[str]:
    """The fields an update would overwrite that someone edited in Kizen since syncd last saw
    them (``current``: the activity as just read, in the form the state keeps): from now on they
    are hands-off, Kizen's. A field syncd never saw in Kizen is not taken for an edit."""
    return {
        name
        for name in KIZEN_ONLY_READ
        if name in changes and name in pairing.kizen_seen and current[name] != pairing.kizen_seen[name]
    }


def _kizen_move(pairing: Pairing, desired: Desired, kizen: KizenActivity, decision: Conflict | None) -> Action:
    """Kizen moved the activity: move the calendar item if syncd may, else let Kizen's time stand."""
    if desired.writable_lead and desired.owner_organizes:
        return MoveInCalendar(pairing, desired, kizen.due, decision.id if decision else None)
    why = "the calendar item is read-only" if not desired.writable_lead else "the owner does not organize the meeting"
    return Settle(pairing, f"moved in Kizen; {why}, so Kizen's time stands", kizen_seen={"due": utc_text(kizen.due)})

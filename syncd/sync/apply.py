"""``apply()``: performs one planned action and records it in the state with it.

Every remote write is preceded by what it needs: a create or a log is journaled first (Kizen
takes no idempotency key), and an update reads the activity first when it would change a field
someone may have edited in Kizen (the note, notifications, contacts), which then becomes
hands-off. The state rows of an action are committed in one transaction after its remote write.
A create's intent is written ahead with the next creates' in one durable commit (:class:`Ahead`),
so a crash leaves at most a batch of pending intents, which the next run settles before
re-sending.

Each remote write, and what a lost answer does:

- Create (Kizen POST) and Log (log-activity): journaled; the next run settles the intent (looks
  for the activity by its provenance line, or reads whether it was completed) before anything
  is re-sent (:mod:`syncd.sync.recovery`).
- Import (a CalDAV create): journaled; its href is made from its UID (``<activity
  id>@kizen.syncd``) and the PUT carries If-None-Match, so a repeat cannot make a second copy
  (412 means it is there: it is paired); the next run pairs the item it finds in the calendar
  by its UID, never making a second activity from it.
- Update and Reschedule (PATCH), Delete (404 is "gone already"): safe to repeat.
- WriteBack and MoveInCalendar (a CalDAV PUT with If-Match): a repeat after a lost answer is
  refused (412) and retried from the object the next read brings, where the mark is already
  there (marking is idempotent) or the time already moved (the plan then only settles).

What Kizen is sent for an item, and the look-ups that needs, are :mod:`syncd.sync.payloads`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, assert_never
from uuid import UUID

import icalendar

from syncd.calendar.connectors import Source
from syncd.calendar.writeback import mark_logged, move
from syncd.config import Config
from syncd.errors import (
    ConfigError,
    CreateOutcomeUnknown,
    ItemError,
    KizenError,
    KizenNotFound,
    KizenRejected,
    PreconditionFailed,
    SourceError,
    StateError,
    unforeseen,
)
from syncd.identifiers import imported_uid, provenance, provenance_of, utc_text, with_provenance
from syncd.kizen import (
    ActivitiesClient,
    LogRequest,
    NewScheduledActivity,
    ScheduledActivity,
    ScheduledActivityChanges,
)
from syncd.model import Location, OccurrenceId
from syncd.state.protocol import Pairing, Settled, SyncState
from syncd.sync.actions import (
    FEED_ONLY,
    FIELDS,
    Action,
    Create,
    Delete,
    Desired,
    Foreign,
    Import,
    Log,
    MoveInCalendar,
    RecordConflict,
    Reschedule,
    Settle,
    Update,
    WriteBack,
    identity_of,
)
from syncd.sync.payloads import Payloads, notifications
from syncd.sync.plan import KIZEN_ONLY_READ, edited_in_kizen
from syncd.sync.report import Outcome, Unchanged

log = logging.getLogger(__name__)

AHEAD = 50  # the creates whose intents one durable commit writes


@dataclass
class Ahead:
    """The intents of a plan's creates, written ahead, many in one durable commit.

    An intent must be on disk before its request leaves, and such a commit waits for the disk;
    one per create cost a first sync more than its requests. So the create that finds its intent
    unwritten writes it with those of the next creates of the plan (``AHEAD`` in all), each with
    the request it journals; a create whose request could not be made keeps the error, raised
    when its turn comes, so it is made once. A batch whose commit fails (a full disk) was rolled
    back whole: each of its creates gets that error, none is sent without its intent on disk (the
    other lanes would otherwise send theirs, and settle rows that are not there). What ends up
    not sent (the run stopped) is abandoned by :meth:`Effects.abandon_unsent`; after a crash it
    is pending, and the next run looks for it in Kizen as for any lost answer, finds nothing, and
    plans the create again.
    """

    waiting: dict[int, Create] = field(default_factory=dict)  # by id(), in plan order: no intent yet
    written: dict[int, tuple[int, NewScheduledActivity] | Exception] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Effects:
    """Applies actions for one run."""

    config: Config
    state: SyncState
    kizen: ActivitiesClient
    connectors: Mapping[str, Source]  # the writable ones
    clock: Callable[[], datetime]
    payloads: Payloads = field(init=False)
    quiet: bool = field(default=False, init=False)  # a long plan: each action at DEBUG, progress at INFO
    _calendar: threading.Lock = field(default_factory=threading.Lock, init=False)  # one calendar write at a time
    _ahead: Ahead = field(default_factory=Ahead, init=False)

    def __post_init__(self) -> None:
        self.payloads = Payloads(self.config, self.state, self.kizen)

    def expect(self, actions: list[Action]) -> None:
        """The plan about to be applied: its creates' intents are written ahead (:class:`Ahead`)."""
        self._ahead.waiting = {id(action): action for action in actions if isinstance(action, Create)}

    def abandon_unsent(self) -> None:
        """Abandons the intents written ahead for creates that were not sent (the run stopped)."""
        unsent = [taken[0] for taken in self._ahead.written.values() if isinstance(taken, tuple)]
        if unsent:
            with self.state.atomic():
                for intent in unsent:
                    self.state.settle_intent(intent, "abandoned", {"sent": False})
        self._ahead.written.clear()

    def apply(self, action: Action) -> Outcome:
        """Applies one action; whatever fails fails this item alone, recorded, and the run goes on.

        A calendar server's failure (a 5xx or a dropped connection during a write-back) and any
        exception not foreseen are recorded as this item's failure; the unforeseen one is named
        in one line at ERROR, its traceback at DEBUG. The state store's own failures and
        configuration errors are not the item's: they end the run (the CLI names them).
        """
        kind = type(action).__name__
        identity = identity_of(action)
        source = self._source_of(action)
        try:
            detail = self._perform(action)
        except ItemError as error:
            self.state.record_failure(source, identity, "failed", error.reason)
            return Outcome(kind, identity, source, ok=False, detail=error.reason, error=error)
        except KizenError as error:
            self.state.record_failure(source, identity, "failed", str(error))
            return Outcome(kind, identity, source, ok=False, detail=str(error), error=error)
        except PreconditionFailed as error:
            self.state.record_failure(source, identity, "failed", f"{error}; retried next run")
            return Outcome(kind, identity, source, ok=False, detail=str(error), error=error)
        except SourceError as error:
            self.state.record_failure(source, identity, "failed", f"{error.reason}; retried next run")
            return Outcome(kind, identity, source, ok=False, detail=str(error), error=error)
        except (ConfigError, StateError, sqlite3.Error):
            raise
        except Exception as error:  # not foreseen: this item alone
            detail = unforeseen(error)
            log.error(
                "%s %s%s failed: %s", kind.lower(), identity.uid, f" {identity.slot}" * bool(identity.slot), detail
            )
            log.debug("applying %s to %s %s", kind, identity.uid, identity.slot, exc_info=True)
            self.state.record_failure(source, identity, "failed", detail)
            return Outcome(kind, identity, source, ok=False, detail=detail, error=error)
        if isinstance(action, Create | Update | Reschedule | Log):
            self.state.clear_failure(source, identity)
        changed = not isinstance(detail, Unchanged)
        level = logging.INFO if changed and not self.quiet else logging.DEBUG
        slot = f" {identity.slot}" if identity.slot else ""
        log.log(level, "%s %s%s%s", kind.lower(), identity.uid, slot, f": {detail}" if detail else "")
        return Outcome(kind, identity, source, detail=str(detail), changed=changed)

    def _perform(self, action: Action) -> str:
        """The handler of the action's type; mypy checks that every type of :data:`Action` has one."""
        match action:
            case Create():
                return self._create(action)
            case Update():
                return self._update(action)
            case Reschedule():
                return self._reschedule(action)
            case Delete():
                return self._delete(action)
            case Log():
                return self._log(action)
            case WriteBack():
                return self._write_back(action)
            case MoveInCalendar():
                return self._move_in_calendar(action)
            case Settle():
                return self._settle(action)
            case RecordConflict():
                return self._record_conflict(action)
            case Import():
                return self._import(action)
            case _:
                assert_never(action)

    @staticmethod
    def _source_of(action: Action) -> str:
        if isinstance(action, Create | Update | Reschedule | Log | MoveInCalendar):
            return action.desired.source.name
        if isinstance(action, Import):
            return action.foreign.source
        lead = action.pairing.lead
        return lead.source if lead else ""

    # --- the actions ----------------------------------------------------------------------------

    def _create(self, action: Create) -> str:
        desired = action.desired
        intent, new = self._intended(action)
        try:
            created = self.kizen.create(new)
        except CreateOutcomeUnknown:
            raise  # the intent stays pending: the next run looks before it creates again
        except KizenRejected as error:
            self.state.settle_intent(intent, "failed", {"error": str(error)})
            raise
        with self.state.atomic():
            self.state.save_pairing(adopted_pairing(desired, created, self.clock()))
            self.state.settle_intent(intent, "done", {"activity_id": str(created.id)})
        return f"activity {created.id}"

    def _intended(self, action: Create) -> tuple[int, NewScheduledActivity]:
        """The create's intent, durable, and its request: written ahead with the next creates'."""
        ahead = self._ahead
        with ahead.lock:
            if id(action) not in ahead.written:
                ahead.waiting.pop(id(action), None)
                batch = [action, *(ahead.waiting.pop(key) for key in list(ahead.waiting)[: AHEAD - 1])]
                made: list[tuple[Create, NewScheduledActivity, dict[str, Any]]] = []
                for create in batch:
                    try:
                        made.append((create, *self._request(create.desired)))
                    except (ConfigError, StateError, sqlite3.Error):
                        raise
                    except Exception as error:  # this create's own, raised at its turn
                        ahead.written[id(create)] = error
                intents: dict[int, tuple[int, NewScheduledActivity]] = {}
                try:
                    with self.state.atomic(durable=True):
                        for create, new, record in made:
                            intents[id(create)] = (self.state.intend("create", create.desired.id, record), new)
                except Exception as error:  # rolled back: no create of the batch may be sent
                    for create, _, _ in made:
                        ahead.written[id(create)] = error
                    raise
                ahead.written.update(intents)  # only once they are on disk
            taken = ahead.written.pop(id(action))
        if isinstance(taken, Exception):
            raise taken
        return taken

    def _request(self, desired: Desired) -> tuple[NewScheduledActivity, dict[str, Any]]:
        """The create's request, and the intent that journals it (what the journal needs to find it)."""
        body = self.payloads.body(desired)
        line = provenance(desired.source.name, desired.id)
        new = NewScheduledActivity(
            activity_object_id=UUID(self.payloads.type_id(desired)),
            due_datetime=desired.lead.due,
            original_due_datetime=desired.original_due,
            note=with_provenance(desired.fields.note, line),
            **body,
        )
        record = {
            "source": desired.source.name,
            "due": utc_text(desired.lead.due),
            "activity_type_id": str(new.activity_object_id),
            "employee_id": str(new.employee_id) if new.employee_id else None,
            "provenance": line,
            "desired": _desired_record(desired),
        }
        return new, record

    def _update(self, action: Update) -> str:
        """PATCHes the changed fields, except those someone edited in Kizen, which become hands-off.

        The rule is the plan's (:func:`syncd.sync.plan.edited_in_kizen`); the read it needs is
        made here because Kizen's list has no note, notifications or contacts. Planning with them
        would cost a GET of every open pairing on every cycle; here it is one GET, and only for
        an update that would overwrite one of them, just before the PATCH (so an edit made
        meanwhile is seen too). Hence a dry run lists such an update with every field the
        calendar changed, and the real run may send fewer (its detail says "left to Kizen").
        """
        pairing, desired = action.pairing, action.desired
        hands_off = set(pairing.hands_off)
        current: ScheduledActivity | None = None
        if set(KIZEN_ONLY_READ) & action.changes.keys():
            try:
                current = self.kizen.get(pairing.activity_id)
            except KizenNotFound:
                self.state.settle(pairing, Settled.DELETED, "deleted in Kizen; the calendar item is left alone")
                return "deleted in Kizen"
            hands_off |= edited_in_kizen(pairing, action.changes, kizen_seen(current))
        wanted = {name: value for name, value in action.changes.items() if name not in hands_off}
        patch: dict[str, Any] = {}
        if "due" in wanted:
            patch["due_datetime"] = desired.lead.due
        if "note" in wanted:
            patch["note"] = with_provenance(desired.fields.note, provenance(desired.source.name, desired.id))
        if "assignee" in wanted:
            patch.update(self.payloads.assignee(desired))
        if "contacts" in wanted:
            patch["associated_entities"] = self.payloads.contacts(desired)
        if "notifications" in wanted:
            patch["notifications"] = notifications(desired)
        line = provenance(desired.source.name, desired.id)
        if "note" in hands_off and current is not None and provenance_of(current.note) not in ("", line):
            # the note is theirs, but its last line is syncd's: it must name the occurrence now paired
            patch["note"] = current.note.rstrip().rsplit("\n", 1)[0].rstrip() + "\n\n" + line
        updated = current
        if patch:
            updated = self.kizen.update(pairing.activity_id, ScheduledActivityChanges(**patch))
        want = desired.fields.seen()
        calendar_seen = {**pairing.calendar_seen, **{k: want[k] for k in (*action.changes, *FEED_ONLY)}}
        changed = replace(
            pairing,
            calendar_seen=calendar_seen,
            kizen_seen={**pairing.kizen_seen, **(kizen_seen(updated) if updated else {})},
            hands_off=tuple(sorted(hands_off)),
            due=updated.due_datetime if updated else pairing.due,
            lead=desired.lead.location,
            locations=desired.locations,
            changes=pairing.changes + 1,
            changed_at=self.clock(),
        )
        with self.state.atomic():
            self.state.save_pairing(changed)
            if action.conflict is not None:
                self.state.mark_conflict_applied(action.conflict)
        left = sorted(set(action.changes) & hands_off)
        if not patch:
            return Unchanged(f"nothing sent: {', '.join(left)} left to Kizen" if left else "nothing sent")
        return ", ".join(sorted(wanted)) + (f" (left to Kizen: {', '.join(left)})" if left else "")

    def _reschedule(self, action: Reschedule) -> str:
        """The activity of a lost slot takes the place of a changed series' next occurrence."""
        pairing, desired = action.pairing, action.desired
        moved = replace(pairing, id=desired.id, calendar_seen={**pairing.calendar_seen, "due": None})
        self.state.rekey(pairing.id, moved)
        want = desired.fields.seen()
        changes = {k: want[k] for k in FIELDS if want[k] != pairing.calendar_seen.get(k)}
        # the due time moves, and the note's provenance line names the new occurrence
        changes["due"] = want["due"]
        changes["note"] = want["note"]
        detail = self._update(Update(moved, desired, changes))
        return f"re-paired from slot {pairing.id.slot or '-'}: {detail}"

    def _import(self, action: Import) -> str:
        """Puts an activity made in Kizen into the owner's calendar and pairs it.

        Kizen made it, so Kizen keeps its note, assignee, contacts and notifications (hands-off
        from the start); its time flows both ways, and deleting the calendar item only retires
        the pairing.
        """
        foreign = action.foreign
        connector = self.connectors[foreign.source]
        uid = imported_uid(foreign.activity_id)
        record = {"source": foreign.source, "collection": foreign.collection, "due": utc_text(foreign.due)}
        intent = self.state.intend("import", OccurrenceId(uid), record, foreign.activity_id)
        try:
            with self._calendar:
                location, _etag = connector.create(foreign.collection, uid, _event(uid, foreign, self.clock()))
        except PreconditionFailed as error:  # made by a create whose answer was lost: it is ours
            location = Location(foreign.source, foreign.collection, error.href)
        except ItemError as error:
            self.state.settle_intent(intent, "failed", {"error": error.reason})
            raise
        activity = self.kizen.get(foreign.activity_id)
        with self.state.atomic():  # the next read of the calendar brings the new object itself
            self.state.save_pairing(
                Pairing(
                    id=OccurrenceId(uid),
                    activity_id=foreign.activity_id,
                    activity_type_id=str(activity.activity_object.id),
                    original_due=activity.original_due_datetime or activity.due_datetime,
                    due=activity.due_datetime,
                    created_by_syncd=False,
                    lead=location,
                    locations=(location,),
                    calendar_seen={
                        "due": utc_text(foreign.due),
                        "summary": foreign.summary,
                        "minutes": foreign.minutes,
                    },
                    kizen_seen=kizen_seen(activity),
                    hands_off=FIELDS,
                    changes=1,
                    changed_at=self.clock(),
                )
            )
            self.state.settle_intent(intent, "done", {"href": location.href})
        return f"into {location.collection}"

    def _delete(self, action: Delete) -> str:
        try:
            self.kizen.delete(action.pairing.activity_id)
        except KizenNotFound:
            pass  # gone already: the result is the same
        self.state.settle(action.pairing, Settled.REMOVED, action.reason)
        return action.reason

    def _log(self, action: Log) -> str:
        pairing = action.pairing
        reason = "completed in the calendar" if action.desired.lead.completed else "the event happened"
        record = {"activity_id": pairing.activity_id, "reason": reason, "source": pairing.lead_source}
        intent = self.state.intend("log", pairing.id, record, pairing.activity_id)
        try:
            receipt = self.kizen.log(
                pairing.activity_type_id, LogRequest(scheduled_activity_id=UUID(pairing.activity_id))
            )
        except KizenRejected as error:  # certainly not logged: nothing to settle
            self.state.settle_intent(intent, "failed", {"error": str(error)})
            raise
        with self.state.atomic():
            self.state.save_pairing(
                replace(
                    pairing,
                    settled=Settled.LOGGED,
                    settled_reason=reason,
                    logged_activity_id=str(receipt.id),
                    written_back=True,
                )
            )
            self.state.settle_intent(intent, "done", {"logged_activity_id": str(receipt.id)})
        return f"logged {receipt.id}"

    def _write_back(self, action: WriteBack) -> str:
        pairing = action.pairing
        logged = self.kizen.get_logged(action.logged_activity_id)
        completed_at = logged.completed_at or logged.logged_at
        written = 0
        for location in pairing.locations:
            connector = self.connectors.get(location.source)
            if connector is None:
                continue
            self._edit(
                location,
                lambda ical, where, zone: mark_logged(
                    ical,
                    where,
                    calendar_uid(pairing.id, where),
                    pairing.id.slot,
                    zone=zone,
                    activity_id=pairing.activity_id,
                    logged_activity_id=action.logged_activity_id,
                    completed_at=completed_at,
                    marker=self.config.sync.written_marker,
                ),
            )
            written += 1
        self.state.save_pairing(
            replace(
                pairing,
                settled=Settled.LOGGED,
                settled_reason="completed in Kizen",
                logged_activity_id=action.logged_activity_id,
                written_back=True,
            )
        )
        return f"logged entry written to {written} calendar item(s)"

    def _move_in_calendar(self, action: MoveInCalendar) -> str:
        pairing, desired = action.pairing, action.desired
        self._edit(
            desired.lead.location,
            lambda ical, where, zone: move(
                ical, where, calendar_uid(pairing.id, where), pairing.id.slot, action.due, zone=zone
            ),
        )
        due = utc_text(action.due)
        with self.state.atomic():
            self.state.save_pairing(
                replace(
                    pairing,
                    due=action.due,
                    calendar_seen={**pairing.calendar_seen, "due": due},
                    kizen_seen={**pairing.kizen_seen, "due": due},
                    changes=pairing.changes + 1,
                    changed_at=self.clock(),
                )
            )
            if action.conflict is not None:
                self.state.mark_conflict_applied(action.conflict)
        return f"moved in the calendar to {due}"

    def _settle(self, action: Settle) -> str:
        """Records what a Settle notes on top of what the state holds now, not the plan's copy
        of the pairing: an update of the same pairing earlier in the cycle stays recorded."""
        pairing = self.state.pairing(action.pairing.id) or action.pairing
        kizen_due = action.kizen_seen.get("due")  # Kizen's move stands: the pairing is due then
        changed = replace(
            pairing,
            id=action.rekey or pairing.id,
            due=datetime.fromisoformat(kizen_due) if kizen_due else pairing.due,
            kizen_seen={**pairing.kizen_seen, **action.kizen_seen},
            calendar_seen={**pairing.calendar_seen, **action.calendar_seen},
            hands_off=tuple(sorted(set(pairing.hands_off) | set(action.hands_off))),
            lead=action.lead or pairing.lead,
            locations=action.locations if action.locations is not None else pairing.locations,
            settled=action.settled or pairing.settled,
            settled_reason=action.reason if action.settled else pairing.settled_reason,
        )
        if action.rekey is not None:
            self.state.rekey(pairing.id, changed)
        else:
            self.state.save_pairing(changed)
        return action.reason if action.settled else Unchanged(action.reason)  # closed, or bookkeeping

    def _record_conflict(self, action: RecordConflict) -> str:
        self.state.record_conflict(
            action.pairing, action.field, action.calendar_value, action.kizen_value, action.policy
        )
        return f"{action.field}: calendar {action.calendar_value}, Kizen {action.kizen_value}; policy {action.policy}"

    # --- helpers --------------------------------------------------------------------------------

    def _edit(self, location: Location, change: Callable[[str, Location, Any], str]) -> None:
        """Changes one stored CalDAV object and writes it back with If-Match."""
        connector = self.connectors[location.source]
        stored = self.state.resources(location.source, location.collection).get(location.href)
        if stored is None:
            raise ItemError(location.source, location.href, "the calendar item is no longer there")
        etag, ical = stored
        source = self.config.source(location.source)
        edited = change(ical, location, self.config.source_zone(source))
        with self._calendar:
            new_etag = connector.update(location, etag or "*", edited)
        self.state.save_resource(location, new_etag, edited)


def kizen_seen(activity: ScheduledActivity) -> dict[str, Any]:
    """What Kizen shows of the fields syncd compares, as syncd stores it."""
    return {
        "due": utc_text(activity.due_datetime),
        "employee_id": str(activity.employee.id) if activity.employee else None,
        "note": activity.note,
        "notifications": [n.model_dump() for n in activity.notifications],
        "contacts": sorted(str(e.entity.id) for e in activity.associated_entities),
    }


def adopted_pairing(desired: Desired, activity: ScheduledActivity, now: datetime) -> Pairing:
    """The pairing of an occurrence with the activity syncd made for it (just now, or before)."""
    return Pairing(
        id=desired.id,
        activity_id=str(activity.id),
        activity_type_id=str(activity.activity_object.id),
        original_due=activity.original_due_datetime or activity.due_datetime,
        due=activity.due_datetime,
        created_by_syncd=True,
        lead=desired.lead.location,
        locations=desired.locations,
        calendar_seen=desired.fields.seen(),
        kizen_seen=kizen_seen(activity),
        changes=1,
        changed_at=now,
    )


def _event(uid: str, foreign: Foreign, now: datetime) -> str:
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTAMP", now)
    event.add("DTSTART", foreign.due)
    event.add("DTEND", foreign.due + timedelta(minutes=foreign.minutes))
    event.add("SUMMARY", foreign.summary)
    if foreign.description:
        event.add("DESCRIPTION", foreign.description)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//syncd//Kizen activity//EN")
    calendar.add("VERSION", "2.0")
    calendar.add_component(event)
    return str(calendar.to_ical().decode("utf-8"))


def calendar_uid(identity: OccurrenceId, location: Location) -> str:
    """The UID the calendar item has at ``location`` (an identity may carry its source's namespace)."""
    return identity.uid.removeprefix(f"{location.source}#")


def _desired_record(desired: Desired) -> dict[str, Any]:
    return {
        "fields": desired.fields.seen(),
        "lead": vars(desired.lead.location),
        "original_due": utc_text(desired.original_due),
    }

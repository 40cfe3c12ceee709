"""What keeps one cycle from duplicating: the journal, imported items, rebuilds.

- **The journal** (:meth:`Recovery.settle_journal`): an intent whose answer was lost is settled
  before anything is sent again. A create is looked for in Kizen by its provenance line; a log
  by reading its activity (completed, or not); an import by the calendar item it made, once the
  calendars are read (:meth:`Recovery.settle_imports`).
- **Imported items** (:meth:`Recovery.pair_imported`): a calendar item whose UID is
  ``<activity id>@kizen.syncd`` belongs to that activity. Unpaired (an import whose answer was
  lost, a lost state store), it is paired to it, never made into a second activity.
- **Rebuilding** (:meth:`Recovery.adopt`): whether a source's activities made before this state
  store have been looked for is recorded per source, set only once adoption has read every
  activity of the window. Until then, the cycle reads its owner's unpaired activities before
  it creates anything, and remembers what it read as it goes (in batches), so a rebuild
  interrupted at any point (killed, or one failed Kizen request) is finished by the next run,
  reading each activity once. A healthy state makes no extra request. A source new to the
  state store (a fresh install, a source added to the config) is looked for once the same way.

A cycle of some sources only (``--source``, a worker's team) settles only the intents of those
sources: another team's pending create may be in flight in another worker, and "settling" it
(not found yet, so abandoned) would let that team create it a second time. An intent no source
leads any more is settled by the cycles that keep what belongs to no source (``common``). A
team's rebuild keeps its marks of what it read apart from other teams' (``team``), since another
team's rebuild may read the same employee's activities at the same time.

What keeps a cycle from deleting in bulk, the safety rails, is part of the plan
(:mod:`syncd.sync.rails`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from syncd.calendar.reading import CalendarView
from syncd.config import Config
from syncd.errors import KizenError, KizenNotFound
from syncd.identifiers import imported_activity, provenance, provenance_of
from syncd.kizen import ActivitiesClient, ScheduledActivity, ScheduledActivitySummary
from syncd.model import Location, OccurrenceId
from syncd.state.protocol import JournalEntry, Pairing, Settled, SyncState
from syncd.sync.actions import FEED_ONLY, FIELDS, Desired, covered
from syncd.sync.apply import adopted_pairing, kizen_seen

log = logging.getLogger(__name__)

SLACK = timedelta(seconds=1)  # Kizen's list bounds may be exclusive: widen them
_SKEW = timedelta(minutes=10)  # how far Kizen's clock (its ``created``) may be behind ours
_BATCH = 50  # adoption commits its pairings this many activities at a time


@dataclass
class Recovery:
    """The cycle's guards, over its config, state store and Kizen client."""

    config: Config
    state: SyncState
    kizen: ActivitiesClient
    clock: Callable[[], datetime]
    failed: Callable[[str, KizenError], None] = lambda _step, _error: None  # a step Kizen failed, for the report
    only: frozenset[str] | None = None  # the sources this cycle covers (None: all)
    common: bool = True  # also settles the intents no source leads
    team: str | None = None  # a worker's team: its rebuild's marks are its own

    def _covers(self, intent: JournalEntry) -> bool:
        """Whether this cycle may settle an intent: its source is one this cycle covers.

        A create or import names its source; a log is its pairing's (older log intents do not
        name one). One whose source is unknown belongs to no source."""
        if self.only is None:
            return True
        source = intent.payload.get("source")
        if source is None:
            pairing = self.state.pairing(intent.id_)
            source = pairing.lead_source if pairing is not None else None
        return covered(source, self.only, self.common)

    @property
    def _read_marks(self) -> str:
        """The look-up kind of what an interrupted rebuild has read (one per team)."""
        return "rebuild-read" if self.team is None else f"rebuild-read/{self.team}"

    def warn_split_meetings(self, pairings: Iterable[Pairing]) -> None:
        """Names each open meeting with copies in this cycle's sources and in another team's:
        the config splits sources that share meetings, and two teams' cycles may each create,
        move or delete it at once. Only a cycle of some sources looks (a whole cycle has none)."""
        if self.only is None:
            return
        team_of = {source.name: source.team for source in self.config.sources}
        for pairing in pairings:
            sources = {location.source for location in pairing.locations}
            if pairing.settled is not None or not sources & self.only or not sources - self.only:
                continue
            teams = sorted({team_of[name] for name in sources if name in team_of})
            if len(teams) > 1:
                log.warning(
                    "%s %s is shared by sources of the teams %s: sources that share meetings must share a team",
                    pairing.id.uid,
                    pairing.id.slot,
                    ", ".join(teams),
                )

    # --- the journal --------------------------------------------------------------------------

    def settle_journal(self) -> set[OccurrenceId]:
        """Settles creates and logs whose outcome is unknown, before anything is sent again.

        Returns the identities whose intent could not be settled (Kizen unreachable): nothing is
        sent for them this cycle, since it might already have arrived. Imports wait for the
        calendars (:meth:`settle_imports`).
        """
        unsettled: set[OccurrenceId] = set()
        for intent in self.state.pending_intents():
            if intent.kind == "import" or not self._covers(intent):
                continue
            try:
                if intent.kind == "create":
                    self._settle_create(intent)
                elif intent.kind == "log":
                    self._settle_log(intent)
                else:
                    self.state.settle_intent(intent.id, "abandoned", {"replanned": True})
            except KizenError as error:
                log.warning(
                    "cannot settle the %s of %s %s yet: %s", intent.kind, intent.id_.uid, intent.id_.slot, error
                )
                self.failed("settling the writes whose answer was lost", error)
                unsettled.add(intent.id_)
        return unsettled

    def _settle_create(self, intent: JournalEntry) -> None:
        found = self._find_created(intent)
        if found is None:
            self.state.settle_intent(intent.id, "abandoned", {"found": False})
            return
        with self.state.atomic():
            self._pair_found(intent.id_, intent.payload, found)
            self.state.settle_intent(intent.id, "done", {"activity_id": str(found.id), "found": True})

    def _find_created(self, intent: JournalEntry) -> ScheduledActivity | None:
        """The activity a create whose answer was lost made, if it reached Kizen.

        First where it was sent: the assignee's activities at exactly that due time and type.
        Then, since someone may have moved or reassigned it in Kizen before this run, anyone's
        in the window among those Kizen made after the intent was written (a rare, wider list,
        only for a lost answer). Each candidate's provenance line decides.
        """
        payload = intent.payload
        due = datetime.fromisoformat(payload["due"])
        employees = [payload["employee_id"]] if payload.get("employee_id") else None
        found = self._created_between(
            payload, employees, due - SLACK, due + SLACK, lambda item: item.due_datetime == due
        )
        if found is None:
            now, since = self.clock(), intent.created_at - _SKEW
            start, end = now - self.config.sync.lookback - SLACK, now + self.config.sync.horizon + SLACK
            found = self._created_between(payload, None, start, end, lambda item: item.created >= since)
        return found

    def _created_between(
        self,
        payload: dict[str, Any],
        employees: list[str] | None,
        start: datetime,
        end: datetime,
        likely: Callable[[ScheduledActivitySummary], bool],
    ) -> ScheduledActivity | None:
        for completed in (False, True):
            for item in self.kizen.list_scheduled(
                completed=completed, employee_ids=employees, from_date=start, to_date=end
            ):
                if not likely(item) or str(item.activity_object.id) != payload["activity_type_id"]:
                    continue
                if self.state.pairing_of(str(item.id)) is not None:
                    continue
                activity = self.kizen.get(item.id)
                if provenance_of(activity.note) == payload["provenance"]:
                    return activity
        return None

    def _pair_found(self, identity: OccurrenceId, payload: dict[str, Any], activity: ScheduledActivity) -> None:
        """Pairs the activity a lost create made, as the create would have (read once, when found)."""
        desired = payload["desired"]
        lead = desired["lead"]
        self.state.save_pairing(
            Pairing(
                id=identity,
                activity_id=str(activity.id),
                activity_type_id=str(activity.activity_object.id),
                original_due=activity.original_due_datetime or activity.due_datetime,
                due=activity.due_datetime,
                lead=Location(**lead),
                locations=(Location(**lead),),
                calendar_seen=desired["fields"],
                kizen_seen=kizen_seen(activity),
                changes=1,
                changed_at=self.clock(),
            )
        )

    def _settle_log(self, intent: JournalEntry) -> None:
        """A log whose answer was lost completed its activity, or never arrived (and is planned again)."""
        pairing = self.state.pairing(intent.id_)
        try:
            activity = self.kizen.get(intent.payload["activity_id"])
        except KizenNotFound:
            activity = None
        if pairing is None or activity is None or not activity.completed or activity.logged_activity_id is None:
            self.state.settle_intent(intent.id, "abandoned", {"logged": False})
            return
        logged = str(activity.logged_activity_id)
        with self.state.atomic():
            self.state.save_pairing(
                replace(
                    pairing,
                    settled=Settled.LOGGED,
                    settled_reason=intent.payload.get("reason", "completed in the calendar"),
                    logged_activity_id=logged,
                    written_back=True,
                )
            )
            self.state.settle_intent(intent.id, "done", {"logged_activity_id": logged, "found": True})

    def settle_imports(self, calendars: CalendarView) -> None:
        """An import is done once its item is paired; abandoned when its calendar, read in full,
        does not hold it (the import is planned again: its create cannot make a second copy)."""
        for intent in self.state.pending_intents():
            if intent.kind != "import" or not self._covers(intent):
                continue
            if intent.activity_id and self.state.pairing_of(intent.activity_id) is not None:
                self.state.settle_intent(intent.id, "done", {"found": True})
            elif intent.payload.get("source") in calendars.read:
                self.state.settle_intent(intent.id, "abandoned", {"found": False})

    # --- imported items -----------------------------------------------------------------------

    def pair_found(
        self,
        desired: Mapping[OccurrenceId, Desired],
        every: Iterable[Pairing],
        calendars: CalendarView,
        now: datetime,
        *,
        dry_run: bool,
    ) -> tuple[int, set[OccurrenceId]]:
        """After the read: pairs the items syncd imported, adopts what a lost state store had
        paired (a real run only) and settles the imports the calendars now show.

        Returns how many were paired and the identities never to create this cycle. When
        adoption could not finish (Kizen failed), nothing is created this cycle: creating now
        could duplicate what a lost state store made.
        """
        every = list(every)
        paired, uncreated = self.pair_imported(desired, every, dry_run=dry_run)
        if dry_run:
            return paired, uncreated
        try:
            paired += self.adopt(desired, every, now)
        except KizenError as error:
            self.failed("looking for the activities made before the state store was lost", error)
            uncreated |= set(desired)
        self.settle_imports(calendars)
        return paired, uncreated

    def pair_imported(
        self, desired: Mapping[OccurrenceId, Desired], every: Iterable[Pairing], *, dry_run: bool = False
    ) -> tuple[int, set[OccurrenceId]]:
        """Pairs each unpaired calendar item syncd imported to its activity (one GET each).

        Returns how many were paired, and the identities never to create this cycle: those
        paired, those whose activity another identity holds, and those Kizen could not tell.
        An item whose activity is gone from Kizen gets a settled pairing, so it is never created.
        """
        known = {p.id for p in every}
        imports = {i.activity_id: i for i in self.state.pending_intents() if i.kind == "import" and i.activity_id}
        held: set[OccurrenceId] = set()
        paired = 0
        for identity, wanted in sorted(desired.items(), key=lambda kv: (kv[0].uid, kv[0].slot)):
            activity_id = imported_activity(identity.uid)
            if identity in known or activity_id is None:
                continue
            held.add(identity)
            if dry_run or self.state.pairing_of(activity_id) is not None:
                continue  # a second item (or occurrence) for an activity already paired
            try:
                activity: ScheduledActivity | None = self.kizen.get(activity_id)
            except KizenNotFound:
                activity = None
            except KizenError as error:
                log.warning("cannot pair imported item %s yet: %s", identity.uid, error)
                self.failed("pairing the calendar items imported from Kizen", error)
                continue
            intent = imports.get(activity_id)
            written = intent.payload.get("due") if intent else None
            self.state.save_pairing(imported_pairing(identity, wanted, activity_id, activity, written, self.clock()))
            paired += 1
        return paired, held

    # --- rebuilding ---------------------------------------------------------------------------

    def adopt(self, desired: Mapping[OccurrenceId, Desired], every: Iterable[Pairing], now: datetime) -> int:
        """Re-pairs the activities syncd made before this state store, by their provenance line.

        While a source with unpaired occurrences is not yet rebuilt, reads its owner's (and its
        assignees') unpaired activities in the window, one GET each, and pairs those whose
        provenance line names an unpaired occurrence. What it reads is committed in batches, so
        a run killed half-way, or stopped by Kizen (KizenError), is carried on by the next one.
        The lines of syncd's activities that matched nothing are kept: an occurrence that shows
        up later with such a line (it was quarantined, or skipped, during the rebuild) is paired
        to its activity, never created a second time. Returns how many were re-paired.
        """
        known = {p.id for p in every}
        unpaired = [d for i, d in desired.items() if i not in known and imported_activity(i.uid) is None]
        adopted = self._adopt_seen(unpaired)
        unpaired = [d for d in unpaired if d.id not in adopted]
        pending = {d.source.name for d in unpaired} - self.state.rebuilt()
        if not pending:
            return len(adopted)
        lines = {provenance(d.source.name, d.id): d for d in unpaired}
        ours = [d for d in unpaired if d.source.name in pending]
        emails = {d.source.owner.lower() for d in ours}
        emails |= {d.fields.assignee.value.lower() for d in ours if d.fields.assignee.kind == "email"}
        everyone = any(d.fields.assignee.kind == "role" for d in ours)  # a role's activity has no employee
        employees = [str(e.id) for e in self.kizen.team() if e.email.lower() in emails]
        batch: list[tuple[str, str, Desired | None, ScheduledActivity]] = []

        def flush() -> None:
            with self.state.atomic():
                for activity_id, line, match, activity in batch:
                    if match is not None:
                        self.state.save_pairing(rebuilt_pairing(match, activity, self.clock()))
                        adopted.add(match.id)
                        continue
                    self.state.remember(self._read_marks, activity_id, line)
                    if line:  # syncd made it for an occurrence not seen now
                        self.state.remember("provenance", line, activity_id)
            batch.clear()

        start, end = now - self.config.sync.lookback - SLACK, now + self.config.sync.horizon + SLACK
        try:
            for completed in (False, True):
                if not employees and not everyone:
                    break
                for item in self.kizen.list_scheduled(
                    completed=completed, employee_ids=None if everyone else employees, from_date=start, to_date=end
                ):
                    activity_id = str(item.id)
                    if self._known(activity_id):
                        continue  # paired, or read before this rebuild was interrupted
                    activity = self.kizen.get(activity_id)
                    line = provenance_of(activity.note)
                    batch.append((activity_id, line, lines.pop(line, None), activity))
                    if len(batch) >= _BATCH:
                        flush()
        finally:
            flush()
        with self.state.atomic():
            self.state.mark_rebuilt(pending)
            self.state.forget(self._read_marks)
        if adopted:  # a fresh install adopts nothing: no line saying so
            log.info(
                "adopted %d activities made before this state store (%s)", len(adopted), ", ".join(sorted(pending))
            )
        return len(adopted)

    def _known(self, activity_id: str) -> bool:
        """Whether a rebuild need not read an activity: a pairing holds it (another team's
        too), or this rebuild read it before it was interrupted."""
        marked = self.state.lookup(self._read_marks, activity_id) is not None
        return marked or bool(self.state.paired_activities([activity_id]))

    def _adopt_seen(self, unpaired: Iterable[Desired]) -> set[OccurrenceId]:
        """Pairs the occurrences whose provenance line an earlier rebuild read (one GET each)."""
        adopted: set[OccurrenceId] = set()
        for wanted in unpaired:
            line = provenance(wanted.source.name, wanted.id)
            activity_id = self.state.lookup("provenance", line)
            if not activity_id:
                continue
            try:
                activity: ScheduledActivity | None = self.kizen.get(activity_id)
            except KizenNotFound:
                activity = None
            with self.state.atomic():
                self.state.forget("provenance", line)
                if (
                    activity is not None
                    and provenance_of(activity.note) == line
                    and not self.state.paired_activities([activity_id])
                ):
                    self.state.save_pairing(rebuilt_pairing(wanted, activity, self.clock()))
                    adopted.add(wanted.id)
        return adopted


def rebuilt_pairing(desired: Desired, activity: ScheduledActivity, now: datetime) -> Pairing:
    """The pairing a rebuild makes for an activity syncd made before this state store.

    What was last synced is lost with the old store, so where the calendar's due time and
    Kizen's differ, the activity's ``original_due_datetime`` (the calendar's time when syncd
    made it) tells which side moved: a calendar still at that time did not, so Kizen's move
    stands (and is written back where syncd may); a calendar that moved since wins, as it would
    have had the store survived. Both moved: the calendar's time wins, the side syncd can see.
    """
    pairing = adopted_pairing(desired, activity, now)
    calendar_due, kizen_due = pairing.calendar_seen["due"], pairing.kizen_seen["due"]
    if calendar_due == kizen_due:
        return pairing
    if desired.lead.due == activity.original_due_datetime:  # the calendar never moved: Kizen did
        return replace(pairing, kizen_seen={**pairing.kizen_seen, "due": calendar_due})
    return replace(pairing, calendar_seen={**pairing.calendar_seen, "due": kizen_due})


def imported_pairing(
    identity: OccurrenceId,
    desired: Desired,
    activity_id: str,
    activity: ScheduledActivity | None,
    written_due: str | None,
    now: datetime,
) -> Pairing:
    """The pairing of an item syncd imported, found in the calendar unpaired.

    Kizen keeps its fields (hands-off, as on import). ``written_due`` is the time the import
    wrote, when its intent tells it: each side's change since then then flows. An activity
    gone from Kizen gives a settled pairing, so the item is never made into a new activity.
    """
    due = activity.due_datetime if activity else desired.lead.due
    seen = kizen_seen(activity) if activity else {}
    want = desired.fields.seen()
    calendar = {k: want[k] for k in ("due", *FEED_ONLY)}
    if written_due is not None:
        seen["due"] = calendar["due"] = written_due
    return Pairing(
        id=identity,
        activity_id=activity_id,
        activity_type_id=str(activity.activity_object.id) if activity else "",
        original_due=(activity.original_due_datetime or due) if activity else due,
        due=due,
        created_by_syncd=False,
        lead=desired.lead.location,
        locations=desired.locations,
        calendar_seen=calendar,
        kizen_seen=seen,
        hands_off=FIELDS,
        settled=None if activity else Settled.DELETED,
        settled_reason="" if activity else "imported from Kizen, where it is gone; the calendar item is left alone",
        changes=1,
        changed_at=now,
    )

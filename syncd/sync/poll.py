"""Kizen's side of one cycle: one paged list of the open activities syncd watches, and a GET for
each paired one missing from it; activities made in Kizen for the owners of importing sources.

Nothing here writes the state: what the poll learns (items it could not read, the team's
employee ids) is kept in :class:`Poll` and recorded by a real run (:mod:`syncd.sync.commit`).
A step that could not use Kizen is told through ``failed``, for the cycle's report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncd.config import CalDAVSourceConfig, Config
from syncd.errors import KizenAuthFailed, KizenError, KizenNotFound
from syncd.identifiers import provenance_of
from syncd.kizen import ActivitiesClient
from syncd.state.protocol import Discovery, Pairing, SyncState
from syncd.sync.actions import Foreign, KizenActivity
from syncd.sync.report import Outcome

log = logging.getLogger(__name__)

SLACK = timedelta(seconds=1)  # Kizen's list bounds may be exclusive: widen them
_MANY_GETS = 3  # this many failed reads of paired activities is Kizen failing, not those activities


@dataclass
class Poll:
    """One cycle's poll of Kizen, over its config, state store (read only) and Kizen client."""

    config: Config
    state: SyncState
    kizen: ActivitiesClient
    failed: Callable[[str, KizenError], None]
    foreign: list[Foreign] = field(default_factory=list)  # activities to import into a calendar
    unread: list[Outcome] = field(default_factory=list)  # paired activities a GET could not read
    employees: dict[str, str] = field(default_factory=dict)  # email -> employee id, from the team

    def importers(
        self, discoveries: Mapping[str, Discovery | None], failed: dict[str, str]
    ) -> dict[str, tuple[str, str]]:
        """Employee id of each importing CalDAV source's owner -> (source, collection URL).

        ``discoveries`` holds each source's calendars as found under its present config (this
        cycle's read, or the state's): a source whose config changed imports again once a read
        has found its calendars anew. A source whose import collection matches none of its
        calendars fails (into ``failed``) alone; Kizen failing to list the team is a Kizen
        failure of the cycle.
        """
        found: dict[str, tuple[str, str]] = {}
        for source in self.config.sources:
            if not (isinstance(source, CalDAVSourceConfig) and source.import_from_crm and source.import_collection):
                continue
            discovery = discoveries.get(source.name)
            if discovery is None:
                continue  # not found under its present config yet: its next read finds it
            url = discovery.import_collection
            if not url:
                wanted = source.import_collection
                reason = f"cannot import from Kizen: import_collection {wanted!r} matches none of its calendars"
                log.warning("source %s: %s", source.name, reason)
                failed.setdefault(source.name, reason)
                continue
            try:
                employee = self._employee_of(source.owner)
            except KizenError as error:
                self.failed("looking up the owners of the sources that import", error)
                break
            if employee:
                found[employee] = (source.name, url)
        return found

    def _employee_of(self, email: str) -> str | None:
        """The employee id of an email, from the state or (once) Kizen's team."""
        employee = self.employees.get(email.lower()) or self.state.lookup("employee", email.lower())
        if employee is None:
            for person in self.kizen.team():
                self.employees[person.email.lower()] = str(person.id)
            employee = self.employees.get(email.lower())
        return employee or None

    def activities(
        self,
        pairings: Iterable[Pairing],
        now: datetime,
        importers: dict[str, tuple[str, str]],
    ) -> dict[str, KizenActivity]:
        """Kizen's side of every open pairing: one paged list, and a GET for each one missing.

        ``importers`` maps the employee id of each importing source's owner to (source,
        collection): their activities are listed too, and those no pairing holds (settled ones
        included: the state is asked, in one query) are kept in :attr:`foreign`.

        A failed list is a Kizen failure of the cycle (nothing is returned: the plan decides
        nothing on half a view). A failed GET fails its item alone (into :attr:`unread`);
        ``_MANY_GETS`` of them, or refused credentials, are a Kizen failure instead. A 404 means
        deleted in Kizen, not a failure.
        """
        pairings = list(pairings)
        self.foreign = []
        if not pairings and not importers:
            return {}
        horizon = now + self.config.sync.horizon
        watched = sorted(
            {p.kizen_seen["employee_id"] for p in pairings if p.kizen_seen.get("employee_id")} | set(importers)
        )
        start = min([p.due for p in pairings] + [now - self.config.sync.lookback]) - SLACK
        end = max([horizon] + [p.due for p in pairings]) + SLACK
        seen: dict[str, KizenActivity] = {}
        importable: dict[str, str] = {}  # activity id -> its importing employee
        try:
            for item in self.kizen.list_scheduled(completed=False, employee_ids=watched, from_date=start, to_date=end):
                employee = str(item.employee.id) if item.employee else None
                seen[str(item.id)] = KizenActivity(str(item.id), item.due_datetime, employee, item.completed)
                if employee in importers and item.due_datetime <= horizon:
                    importable[str(item.id)] = employee
            paired = self.state.paired_activities(importable)
            for activity_id, employee in importable.items():
                if activity_id not in paired:
                    self._consider_import(activity_id, *importers[employee])
        except KizenError as error:
            self.failed("reading the scheduled activities", error)
            self.foreign = []
            return {}
        unread: list[tuple[Pairing, KizenError]] = []
        for pairing in pairings:
            if pairing.activity_id in seen:
                continue
            try:
                activity = self.kizen.get(pairing.activity_id)
            except KizenNotFound:
                seen[pairing.activity_id] = KizenActivity(pairing.activity_id, pairing.due, None, deleted=True)
                continue
            except KizenError as error:
                log.warning("Kizen: cannot read activity %s: %s", pairing.activity_id, error)
                unread.append((pairing, error))
                if isinstance(error, KizenAuthFailed) or len(unread) >= _MANY_GETS:
                    self.failed(f"reading the paired activities ({len(unread)} failed)", error)
                    return {}
                continue
            seen[pairing.activity_id] = KizenActivity(
                pairing.activity_id,
                activity.due_datetime,
                str(activity.employee.id) if activity.employee else None,
                completed=activity.completed,
                logged_activity_id=str(activity.logged_activity_id) if activity.logged_activity_id else None,
            )
        for pairing, failure in unread:
            source = pairing.lead.source if pairing.lead else ""
            detail = f"cannot read activity {pairing.activity_id}: {failure}"
            self.unread.append(Outcome("Read", pairing.id, source, ok=False, detail=detail, error=failure))
        return seen

    def _consider_import(self, activity_id: str, source: str, collection: str) -> None:
        """Reads an unpaired activity once; one syncd did not make is imported into the calendar."""
        try:
            activity = self.kizen.get(activity_id)
        except KizenNotFound:
            return  # deleted between the list and this read: nothing to import
        if provenance_of(activity.note):
            return  # syncd made it; its pairing is settled or lost, and adoption owns that case
        lines = activity.note.strip().splitlines()
        self.foreign.append(
            Foreign(
                activity_id=activity_id,
                due=activity.due_datetime,
                summary=lines[0] if lines else activity.activity_object.name,
                description="\n".join(lines[1:]).strip(),
                minutes=activity.activity_object.calendar_sync_duration or 30,
                source=source,
                collection=collection,
            )
        )

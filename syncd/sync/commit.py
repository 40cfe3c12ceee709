"""What a real run writes to the state besides its actions: the read, the poll, the rails, the run.

Reading, polling and the rails only return what they found; these functions record it, and a
dry run calls none of them, so it leaves the state as it found it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from syncd.calendar.reading import CalendarView
from syncd.model import Location, OccurrenceId
from syncd.state.protocol import SKIPPED, SyncState
from syncd.sync.actions import identity_of
from syncd.sync.plan import Plan
from syncd.sync.poll import Poll
from syncd.sync.report import Report


def commit_read(state: SyncState, calendars: CalendarView, skips: Iterable[tuple[str, OccurrenceId, str]] = ()) -> None:
    """Records what the calendars were read as, in one transaction.

    Each collection's changed and deleted resources, its new cursor and the expansions to
    remember (or forget); each discovery made
    (and the collections it dropped, forgotten); the quarantined items: recorded, and those
    of a source read in full no longer quarantined (fixed, or gone from the calendar) forgotten;
    and, for each source read in full, how many items its mapping rules skipped and why
    (``syncd status`` shows them).
    """
    skipped = list(skips)
    with state.atomic():
        for name in calendars.read:
            counts = Counter(reason for source, _identity, reason in skipped if source == name)
            text = json.dumps(dict(sorted(counts.items())))
            if state.lookup(SKIPPED, name) != text:  # an unchanged cycle writes nothing for it
                state.remember(SKIPPED, name, text)
        for name, found in calendars.discoveries.items():
            for collection in found.dropped:
                state.forget_collection(name, collection)
            state.save_discovery(name, found.discovery)
        for read in calendars.collected:
            for resource in read.changed:
                state.save_resource(resource.location, resource.etag, resource.ical)
            for href in read.deleted:
                state.delete_resource(Location(read.source, read.collection, href))
            state.save_cursor(read.source, read.collection, read.cursor, read.zone)
            if read.expansions or read.unexpanded:
                state.save_expansions(read.source, read.collection, read.expansions, read.unexpanded)
        now = {(source, identity) for source, identity, _ in calendars.quarantined}
        for failure in state.failures():
            identity = OccurrenceId(failure.uid, failure.slot)
            if (
                failure.kind == "quarantined"
                and failure.source in calendars.read
                and (failure.source, identity) not in now
            ):
                state.clear_failure(failure.source, identity)
        for source, identity, reason in calendars.quarantined:
            state.record_failure(source, identity, "quarantined", reason)


def commit_poll(state: SyncState, poll: Poll) -> None:
    """Records the team the poll looked up, and each paired activity it could not read."""
    with state.atomic():
        for email, employee in poll.employees.items():
            state.remember("employee", email, employee)
        for outcome in poll.unread:
            state.record_failure(outcome.source, outcome.identity, "failed", outcome.detail)


def commit_rails(state: SyncState, decided: Plan) -> None:
    """Records the stops the rails made and clears those someone decided on (or no longer hold)."""
    with state.atomic():
        for name in decided.cleared:
            state.clear_rail(name)
        for name, reason in decided.stops.items():
            state.stop(name, reason)


def finish(
    state: SyncState,
    report: Report,
    calendars: CalendarView,
    unsettled: set[OccurrenceId],
    runs: dict[str, int],
) -> None:
    """Records Kizen's line, forgets the failures this run left in step, and finishes each run."""
    state.record_component("kizen", report.kizen_error)
    if not report.kizen_failures:
        _clear_settled_failures(state, report, calendars, unsettled)
    for name, run in runs.items():
        mine = [o for o in report.outcomes if o.source == name]
        errors = [f"{o.identity.uid} {o.identity.slot}: {o.detail}".strip() for o in mine if not o.ok]
        if name in report.failed_sources:
            errors.insert(0, report.failed_sources[name])
        if report.kizen_error:
            errors.insert(0, report.kizen_error)
        failed = name in report.failed_sources or report.kizen_failures
        status = "failed" if failed else "stopped" if name in report.stopped else "ok"
        state.finish_run(run, status, dict(Counter(o.kind for o in mine if o.ok and o.changed)), errors)


def _clear_settled_failures(
    state: SyncState, report: Report, calendars: CalendarView, unsettled: set[OccurrenceId]
) -> None:
    """Forgets the failed items this cycle left in step: a failure is kept only while an action
    for it still fails or waits (or its create is unsettled); its source must have been read."""
    waiting = {o.identity for o in report.failures} | unsettled
    applied = {o.identity for o in report.outcomes}
    waiting |= {identity_of(a) for a in report.actions if identity_of(a) not in applied}
    for failure in state.failures():
        identity = OccurrenceId(failure.uid, failure.slot)
        if failure.kind == "failed" and failure.source in calendars.read and identity not in waiting:
            state.clear_failure(failure.source, identity)

"""What one sync cycle did, for the summary, the exit code, ``/healthz`` and ``/metrics``.

Kizen has a line of its own beside the sources': a step of the cycle that could not use Kizen
is a :class:`KizenFailure`, and a cycle with one is never clean, whatever else it did.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime

from syncd.calendar.reading import CalendarView
from syncd.errors import (
    CreateOutcomeUnknown,
    ItemError,
    KizenAuthFailed,
    KizenError,
    KizenRejected,
    KizenUnavailable,
    PreconditionFailed,
)
from syncd.model import OccurrenceId
from syncd.sync.actions import Action

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What applying one action did, for the run's summary and ``syncd status``."""

    kind: str
    identity: OccurrenceId
    source: str
    ok: bool = True
    detail: str = ""
    error: Exception | None = None  # why it failed, for the cycle to tell an outage from one bad item
    changed: bool = True  # False: only syncd's bookkeeping moved (nothing sent, nothing retired)


class Unchanged(str):
    """What an action did when it changed nothing anywhere but syncd's own records (an update
    whose every field was left to Kizen, a pairing noting what it saw): such an outcome is logged
    at DEBUG and counted nowhere, so the summary never says "updated" for what was not sent."""

    __slots__ = ()


_DONE = {  # each action kind's change, in a summary line
    "Create": "created",
    "Update": "updated",
    "Reschedule": "rescheduled",
    "Delete": "deleted",
    "Log": "logged",
    "WriteBack": "written back",
    "MoveInCalendar": "moved in the calendar",
    "RecordConflict": "conflicts",
    "Settle": "closed",
    "Import": "imported",
    "Read": "read",
}


def failure_kind(error: BaseException) -> str:
    """What kind of failure an error is, for the metrics and the summary line."""
    if isinstance(error, KizenAuthFailed):
        return "auth"
    if isinstance(error, KizenRejected):
        return "rejected"
    if isinstance(error, KizenUnavailable | CreateOutcomeUnknown):
        return "unavailable"
    if isinstance(error, PreconditionFailed):
        return "precondition"
    if isinstance(error, ItemError):
        return "invalid"
    return "unexpected"


@dataclass(frozen=True)
class KizenFailure:
    """One step of a cycle that could not use Kizen: the cycle is not clean, whatever else it did."""

    step: str
    kind: str
    reason: str

    @property
    def text(self) -> str:
        """One line naming Kizen, what failed and why."""
        head = _HEADS.get(self.kind, "Kizen failed")
        return f"{head} while {self.step}: {self.reason.removeprefix('Kizen: ')}"


_HEADS = {
    "auth": "Kizen refused syncd's credentials",
    "rejected": "Kizen refused a request",
    "unavailable": "Kizen not reached",
}


@dataclass
class Report:
    """What one cycle did, per source, for the summary and the exit code.

    ``kizen_failures`` is Kizen's own line in the report, beside the sources': any step that
    could not use Kizen (settling the journal, adoption, the poll, reads of paired activities,
    importers, refused credentials, an outage in the middle of the actions) lands there, and
    ``held`` counts the planned actions not applied because of it.
    """

    actions: list[Action] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    failed_sources: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    quarantined: list[tuple[str, OccurrenceId, str]] = field(default_factory=list)
    capped: list[tuple[str, str, datetime]] = field(default_factory=list)
    calendar_requests: int = 0
    calendar_seconds: dict[str, float] = field(default_factory=dict)
    source_requests: dict[str, int] = field(default_factory=dict)  # calendar requests by source
    kizen_requests: int = 0
    unknown_contacts: int = 0
    kizen_failures: list[KizenFailure] = field(default_factory=list)
    held: int = 0
    notices: list[str] = field(default_factory=list)  # config edits taking effect

    def read(self, calendars: CalendarView) -> None:
        """Takes in what reading the calendars found: failed sources, notices, requests, items
        quarantined (the same list, so what mapping quarantines later is in it too)."""
        self.failed_sources, self.notices = dict(calendars.failed), calendars.notices
        self.calendar_requests, self.calendar_seconds = calendars.requests, dict(calendars.seconds)
        self.source_requests = dict(calendars.source_requests)
        self.quarantined, self.capped = calendars.quarantined, calendars.capped

    def kizen_failed(self, step: str, error: KizenError) -> None:
        """Notes a step of this cycle that could not use Kizen (once per step)."""
        log.warning("Kizen: %s failed: %s", step, error)
        if all(f.step != step for f in self.kizen_failures):
            self.kizen_failures.append(KizenFailure(step, failure_kind(error), str(error)))

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def kizen_error(self) -> str | None:
        """Why Kizen failed this cycle (its first failed step), or None if it did not."""
        return self.kizen_failures[0].text if self.kizen_failures else None

    @property
    def clean(self) -> bool:
        return not (self.failures or self.failed_sources or self.stopped or self.kizen_failures)

    def counts(self) -> Counter[str]:
        """The actions applied, by kind, bookkeeping included."""
        return Counter(o.kind for o in self.outcomes if o.ok)

    def changes(self) -> Counter[str]:
        """The changes made, by kind: what the summary, the metrics and the run's record count
        (bookkeeping alone is no change: see ``Outcome.changed``)."""
        return Counter(o.kind for o in self.outcomes if o.ok and o.changed)

    def log_summary(self, seconds: float, only: Set[str] | None = None) -> None:
        """One INFO line per source the cycle covered and one for the cycle (counts, duration,
        requests); each record carries the same facts as ``summary`` for ``--log-format json``."""
        names = sorted(set(self.calendar_seconds) | set(self.failed_sources) | {o.source for o in self.outcomes})
        for name in [n for n in names if n and (only is None or n in only)]:
            mine = Counter(
                _DONE.get(o.kind, o.kind.lower()) for o in self.outcomes if o.source == name and o.ok and o.changed
            )
            failed = sum(1 for o in self.failures if o.source == name)
            quarantined = sum(1 for q in self.quarantined if q[0] == name)
            facts = {
                "source": name,
                "status": "failed"
                if name in self.failed_sources or self.kizen_failures
                else "stopped"
                if name in self.stopped
                else "ok",
                **{kind.replace(" ", "_"): n for kind, n in sorted(mine.items())},
                "failed": failed,
                "quarantined": quarantined,
                "seconds": round(self.calendar_seconds.get(name, 0.0), 3),
                "requests": self.source_requests.get(name, 0),
            }
            done = ", ".join(f"{n} {kind}" for kind, n in sorted(mine.items())) or "no change"
            why = self.failed_sources.get(name) or ("Kizen failed" if self.kizen_failures else self.stopped.get(name))
            log.info(
                "source %s: %s%s; %s, %d failed, %d quarantined; read in %.2f s, %d request(s)",
                name,
                facts["status"],
                f" ({why})" if why else "",
                done,
                failed,
                quarantined,
                facts["seconds"],
                facts["requests"],
                extra={"summary": facts},
            )
        total = sum(self.changes().values())
        facts = {
            "cycle": "done" if self.clean else "incomplete",
            "changes": total,
            "failed": len(self.failures),
            "seconds": round(seconds, 3),
            "calendar_requests": self.calendar_requests,
            "kizen_requests": self.kizen_requests,
            "kizen": "failed" if self.kizen_failures else "ok",
        }
        log.info(
            "cycle %s in %.2f s: %d change(s), %d failed; %d calendar and %d Kizen request(s)%s",
            facts["cycle"],
            seconds,
            total,
            len(self.failures),
            self.calendar_requests,
            self.kizen_requests,
            f"; {self.kizen_error}" if self.kizen_failures else "",
            extra={"summary": facts},
        )

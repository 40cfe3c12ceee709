"""What one sync cycle did, for the summary, the exit code, ``/healthz`` and ``/metrics``.

Kizen has a line of its own beside the sources': a step of the cycle that could not use Kizen
is a :class:`KizenFailure`, and a cycle with one is never clean, whatever else it did.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from syncd.errors import (
    CreateOutcomeUnknown,
    ItemError,
    KizenAuthFailed,
    KizenRejected,
    KizenUnavailable,
    PreconditionFailed,
)
from syncd.identifiers import utc_text
from syncd.model import OccurrenceId
from syncd.sync.actions import Action, Create, Import
from syncd.sync.apply import Outcome


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
    unknown_contacts: int = 0
    kizen_failures: list[KizenFailure] = field(default_factory=list)
    held: int = 0
    notices: list[str] = field(default_factory=list)  # config edits taking effect

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
        return Counter(o.kind for o in self.outcomes if o.ok)


def describe(action: Action) -> str:
    """One line per planned action, for ``--dry-run``."""
    if isinstance(action, Create):
        d = action.desired
        return (
            f"create  {d.id.uid} {d.id.slot or '-'}  due {utc_text(d.lead.due)}  {d.activity_type_id}: {d.lead.summary}"
        )
    if isinstance(action, Import):
        f = action.foreign
        return f"import  activity {f.activity_id}  due {utc_text(f.due)}  into {f.source}: {f.summary}"
    kind = type(action).__name__.lower()
    pairing = action.pairing
    extra = ""
    if hasattr(action, "changes"):
        extra = ", ".join(sorted(action.changes))
    elif hasattr(action, "reason"):
        extra = action.reason
    return f"{kind:<8}{pairing.id.uid} {pairing.id.slot or '-'}  activity {pairing.activity_id}  {extra}".rstrip()

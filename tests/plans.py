"""Building the values ``plan()`` looks at, compactly: one item, its pairing, Kizen's side, a View.

Every value starts in step (the pairing saw what the calendar wants and what Kizen shows), so a
test states only the one thing that differs, and asserts the exact actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.calendar.mapping import Assignee, Notification
from syncd.model import Kind, Location, Occurrence, OccurrenceId
from syncd.state import Conflict, Pairing
from syncd.sync.actions import Desired, Fields, Foreign, KizenActivity, SourceRules, View

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
END = NOW + timedelta(days=60)
DUE = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
LATER = DUE + timedelta(hours=2)
EARLIER = DUE - timedelta(hours=3)
HERE = Location("ada", "https://dav.example/ada/office/", "item.ics")
ADA = SourceRules("ada", "ada@example.com")
EMPLOYEE = "e-ada"


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def fields(seen: dict[str, Any]) -> Fields:
    """The typed fields from their stored form (``Pairing.calendar_seen``), as tests write them."""
    return Fields(
        due=seen["due"],
        note=seen["note"],
        assignee=Assignee(**seen["assignee"]),
        contacts=tuple(seen["contacts"]),
        unknown_contacts=seen.get("unknown_contacts", "skip"),
        notifications=tuple(Notification(**n) for n in seen["notifications"]),
        summary=seen.get("summary", ""),
        minutes=seen.get("minutes"),
        all_day=seen.get("all_day"),
    )


def rules(**changes: Any) -> SourceRules:
    """Ada's source with ``changes`` (policy, write_back, log_past_events)."""
    return replace(ADA, **changes)


def want(
    uid: str = "item",
    due: datetime = DUE,
    *,
    slot: str = "",
    kind: Kind = "VEVENT",
    completed: bool = False,
    duration: timedelta | None = timedelta(hours=1),
    source: SourceRules = ADA,
    writable: bool = False,
    organizes: bool = True,
    location: Location = HERE,
    original_due: datetime | None = None,
    **overrides: Any,
) -> Desired:
    """What the calendar wants for one item; ``overrides`` sets note, assignee, contacts, ... (stored form)."""
    identity = OccurrenceId(uid, slot)
    lead = Occurrence(identity, location, kind, due, duration=duration, summary="Intro call", completed=completed)
    values: dict[str, Any] = {
        "due": iso(due),
        "note": "Intro call",
        "assignee": {"kind": "owner", "value": ""},
        "contacts": [],
        "notifications": [],
        "summary": "Intro call",
        "minutes": 60,
        "all_day": None,
    }
    values |= overrides
    return Desired(
        identity,
        lead,
        (location,),
        source,
        "meeting",
        fields(values),
        original_due or due,
        writable_lead=writable,
        owner_organizes=organizes,
    )


def paired(desired: Desired, activity_id: str = "a1", **changes: Any) -> Pairing:
    """The pairing of ``desired`` as the last cycle left it: both sides seen as they are now."""
    due = datetime.fromisoformat(desired.fields.due)
    pairing = Pairing(
        id=desired.id,
        activity_id=activity_id,
        activity_type_id="meeting",
        original_due=desired.original_due,
        due=due,
        lead=desired.lead.location,
        locations=desired.locations,
        calendar_seen=desired.fields.seen(),
        kizen_seen={"due": desired.fields.due, "employee_id": EMPLOYEE},
    )
    return replace(pairing, **changes)


def kizen(
    pairing: Pairing, due: datetime | None = None, employee: str | None = EMPLOYEE, **flags: Any
) -> KizenActivity:
    """Kizen's side of ``pairing``: as last seen, unless moved (``due``), reassigned or flagged."""
    return KizenActivity(pairing.activity_id, due or pairing.due, employee, **flags)


def conflict(pairing: Pairing, keep: str, *, id: int = 7, policy: str = "manual") -> Conflict:
    """A due-time conflict someone resolved with ``syncd conflicts resolve ID --keep KEEP``."""
    return Conflict(id, pairing.id, pairing.activity_id, "due", "", "", policy, "resolved", keep, NOW)


def foreign(activity_id: str = "k1", due: datetime = DUE) -> Foreign:
    return Foreign(activity_id, due, "Made in Kizen", "", 30, "ada", "https://dav.example/ada/kizen/")


def view(
    *desired: Desired,
    pairings: Iterable[Pairing] = (),
    kizen: Iterable[KizenActivity] | None = None,
    gone: Iterable[OccurrenceId] = (),
    **options: Any,
) -> View:
    """A View at NOW with the window to END. Kizen shows every pairing as last seen unless told."""
    pairings = list(pairings)
    shown = [KizenActivity(p.activity_id, p.due, EMPLOYEE) for p in pairings] if kizen is None else kizen
    options = {"now": NOW, "window_end": END, **options}
    return View({d.id: d for d in desired}, frozenset(gone), {k.id: k for k in shown}, pairings, **options)

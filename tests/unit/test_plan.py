"""``plan()`` alone: a View built by hand, the actions it decides (no I/O, no clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.calendar.mapping import Assignee, Mapped, Notification
from syncd.calendar.reading import fields_of
from syncd.model import Location, Occurrence, OccurrenceId
from syncd.state import Pairing, Settled
from syncd.sync.actions import (
    Create,
    Delete,
    Desired,
    KizenActivity,
    Reschedule,
    Settle,
    SourceRules,
    View,
)
from syncd.sync.plan import plan
from tests.plans import fields as typed

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
END = NOW + timedelta(days=60)
WEEK = timedelta(days=7)
FIRST = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HERE = Location("ada", "feed.ics", "weekly")
ADA = SourceRules("ada", "ada@example.com")


def slot(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def desired(when: datetime, uid: str = "weekly") -> Desired:
    identity = OccurrenceId(uid, slot(when))
    lead = Occurrence(identity, HERE, "VEVENT", when, slot_due=when, summary="Review")
    fields: dict[str, Any] = {"due": iso(when), "note": "Review", "assignee": {"kind": "owner", "value": ""}}
    fields |= {"contacts": [], "notifications": []}
    return Desired(identity, lead, (HERE,), ADA, "meeting", typed(fields), when)


def pairing(when: datetime, n: int, uid: str = "weekly", **changes: Any) -> Pairing:
    seen = desired(when, uid).fields.seen()
    return Pairing(
        id=OccurrenceId(uid, slot(when)),
        activity_id=f"a{n}",
        activity_type_id="meeting",
        original_due=when,
        due=when,
        lead=HERE,
        locations=(HERE,),
        calendar_seen=seen,
        kizen_seen={"due": seen["due"], "employee_id": "e1"},
        **changes,
    )


def open_in_kizen(p: Pairing, **flags: Any) -> KizenActivity:
    return KizenActivity(p.activity_id, p.due, "e1", **flags)


def shifted(pairings: list[Pairing], kizen: dict[str, KizenActivity], shift: timedelta = timedelta(hours=2)) -> View:
    """The series moved by ``shift``: every old slot gone, every new one unpaired."""
    new = {d.id: d for d in (desired(FIRST + k * WEEK + shift) for k in range(8))}
    gone = frozenset(p.id for p in pairings if p.settled is None)
    return View(new, gone, kizen, pairings, now=NOW, window_end=END)


def weeks(**settled: Any) -> list[Pairing]:
    return [pairing(FIRST + k * WEEK, k, **(settled if k == 1 else {})) for k in range(8)]


def targets(actions: list[Any]) -> dict[str, str]:
    """activity id -> the slot it now belongs to, for every action that moves a pairing."""
    moved: dict[str, str] = {}
    for action in actions:
        if isinstance(action, Reschedule):
            moved[action.pairing.activity_id] = action.desired.id.slot
        elif isinstance(action, Settle) and action.rekey is not None:
            moved[action.pairing.activity_id] = action.rekey.slot
    return moved


def expected(skip: set[int] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    return {f"a{k}": slot(FIRST + k * WEEK + timedelta(hours=2)) for k in range(8) if k not in skip}


def test_a_settled_slot_keeps_its_place_when_its_series_shifts() -> None:
    for state in (
        {"settled": "logged", "settled_reason": "completed in Kizen"},
        {"settled": "deleted", "settled_reason": "deleted in Kizen; the calendar item is left alone"},
    ):
        pairings = weeks(**state)
        kizen = {p.activity_id: open_in_kizen(p) for p in pairings if p.settled is None}
        actions = plan(shifted(pairings, kizen)).actions
        assert targets(actions) == expected(), actions
        assert not [a for a in actions if isinstance(a, Create | Delete)]
        (rekeyed,) = [a for a in actions if isinstance(a, Settle)]
        assert rekeyed.pairing.activity_id == "a1" and rekeyed.settled is None  # stays as it was settled
        assert rekeyed.reason == f"its slot moved with the series to {expected()['a1']}"


def test_a_slot_settled_in_kizen_this_cycle_keeps_its_place_and_settles_at_its_new_slot() -> None:
    for flags, settled in (({"deleted": True}, "deleted"), ({"completed": True}, "logged")):
        pairings = weeks()
        kizen = {p.activity_id: open_in_kizen(p, **(flags if p.activity_id == "a1" else {})) for p in pairings}
        actions = plan(shifted(pairings, kizen)).actions
        assert targets(actions) == expected()
        assert not [a for a in actions if isinstance(a, Create | Delete)]
        (final,) = [a for a in actions if isinstance(a, Settle) and a.settled]
        assert final.settled == settled and final.pairing.id == OccurrenceId("weekly", expected()["a1"])


def test_a_slot_whose_calendar_item_was_deleted_before_takes_no_place() -> None:
    for settled in (Settled.REMOVED, Settled.GONE):  # the state decides; the reason is only text
        pairings = weeks(settled=settled, settled_reason="")  # week 2 deleted, then
        kizen = {p.activity_id: open_in_kizen(p) for p in pairings if p.settled is None}
        view = shifted(pairings, kizen)
        new = dict(view.desired)
        del new[OccurrenceId("weekly", slot(FIRST + WEEK + timedelta(hours=2)))]  # the client moved its EXDATE too
        actions = plan(View(new, view.gone, kizen, pairings, now=NOW, window_end=END)).actions
        assert targets(actions) == expected({1}) and len(actions) == 7


def test_a_settled_slot_gone_without_a_series_change_takes_nothing_new() -> None:
    pairings = weeks(settled="logged", settled_reason="completed in Kizen")
    kizen = {p.activity_id: open_in_kizen(p) for p in pairings if p.settled is None}
    new = {d.id: d for d in (desired(FIRST + k * WEEK) for k in range(9)) if d.id.slot != slot(FIRST + WEEK)}
    actions = plan(View(new, frozenset(), kizen, pairings, now=NOW, window_end=END)).actions  # a ninth week entered
    assert [type(a) for a in actions] == [Create] and actions[0].desired.id.slot == slot(FIRST + 8 * WEEK)


def test_a_shifted_series_waits_while_kizen_cannot_be_read_for_one_of_it() -> None:
    pairings = weeks()
    kizen = {p.activity_id: open_in_kizen(p) for p in pairings if p.activity_id != "a3"}
    assert plan(shifted(pairings, kizen)).actions == []
    assert plan(shifted(pairings, {})).actions == []  # the whole poll failed: nothing created twice


def test_a_held_uid_is_left_alone_even_when_kizen_completed_or_deleted_it() -> None:
    pairings = weeks()
    kizen = {
        p.activity_id: open_in_kizen(p, completed=p.activity_id == "a1", deleted=p.activity_id == "a2")
        for p in pairings
    }
    view = shifted(pairings, kizen)
    held = View(view.desired, view.gone, kizen, pairings, now=NOW, window_end=END, held=frozenset({"weekly"}))
    assert plan(held).actions == []
    assert plan(view).actions != []


def test_the_fields_syncd_owns_keep_the_stored_form_pairings_hold() -> None:
    """A pairing stored before the fields were typed compares equal: nothing is sent again."""
    lead = Occurrence(OccurrenceId("item"), HERE, "VEVENT", FIRST, duration=timedelta(minutes=45), summary="Intro call")
    mapped = Mapped(
        rule="r",
        activity_type="meeting",
        assignee=Assignee("email", "grace@example.com"),
        contact_emails=("Bo@example.com", "al@example.com", "bo@example.com"),
        unknown_contacts="skip",
        note="Intro call",
        notifications=(Notification("email", 15, "minute"),),
    )
    stored = {  # as syncd wrote Pairing.calendar_seen, and the journal, before
        "due": iso(FIRST),
        "note": "Intro call",
        "assignee": {"kind": "email", "value": "grace@example.com"},
        "contacts": ["al@example.com", "bo@example.com"],
        "unknown_contacts": "skip",
        "notifications": [{"type": "email", "time_amount": 15, "time_unit": "minute"}],
        "summary": "Intro call",
        "minutes": 45,
        "all_day": None,  # not all-day: None, as pairings made before the feed knew it hold it
    }
    fields = fields_of(lead, mapped)
    assert fields.seen() == stored and json.loads(json.dumps(fields.seen())) == stored
    d = Desired(lead.id, lead, (HERE,), ADA, "meeting", fields, FIRST)
    p = Pairing(
        lead.id,
        "a1",
        "meeting",
        FIRST,
        FIRST,
        lead=HERE,
        locations=(HERE,),
        calendar_seen=stored,
        kizen_seen={"due": iso(FIRST)},
    )
    kizen = KizenActivity("a1", FIRST, None)
    assert plan(View({d.id: d}, frozenset(), {"a1": kizen}, [p], now=NOW, window_end=END)).actions == []

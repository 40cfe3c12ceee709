"""The pairings recovery makes, value by value: an imported item found in the calendar unpaired.

Such an item is Kizen's (syncd imported it): its pairing keeps Kizen's fields hands-off, is never
syncd's own (so never deleted by syncd), and an activity gone from Kizen settles it, so the item
is not made into a new activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from syncd.kizen import ScheduledActivity
from syncd.sandbox import Sandbox
from syncd.state import Pairing, Settled
from syncd.sync.actions import FEED_ONLY, FIELDS
from syncd.sync.apply import adopted_pairing, kizen_seen
from syncd.sync.recovery import imported_pairing, rebuilt_pairing
from syncd.wiring import sandbox_client
from tests.plans import DUE, EARLIER, LATER, NOW, iso, want

DESIRED = want("imported", LATER, summary="Renewal", minutes=30)


@pytest.fixture
def activity() -> Iterator[ScheduledActivity]:
    """An activity in Kizen, moved there from its first time (EARLIER) to DUE."""
    with Sandbox() as box:
        made = box.user().create("meeting", DUE, note="Renewal", original_due=EARLIER)
        client = sandbox_client(box, sleep=lambda _: None)
        try:
            yield client.get(made["id"])
        finally:
            client.http.close()


def imported(**values: object) -> Pairing:
    """The pairing of DESIRED as an imported item: Kizen's fields hands-off, not syncd's own."""
    calendar = {name: DESIRED.fields.seen()[name] for name in ("due", *FEED_ONLY)}
    fixed = Pairing(
        id=DESIRED.id,
        activity_id="",
        activity_type_id="",
        original_due=LATER,
        due=LATER,
        created_by_syncd=False,
        lead=DESIRED.lead.location,
        locations=DESIRED.locations,
        calendar_seen=calendar,
        hands_off=FIELDS,
        changes=1,
        changed_at=NOW,
    )
    return replace(fixed, **values)  # type: ignore[arg-type]


def expected(activity: ScheduledActivity, **changes: object) -> Pairing:
    """The pairing of DESIRED with ``activity``: moved there from EARLIER to DUE."""
    values = {
        "activity_id": str(activity.id),
        "activity_type_id": str(activity.activity_object.id),
        "original_due": EARLIER,
        "due": DUE,
        "kizen_seen": kizen_seen(activity),
    }
    return imported(**{**values, **changes})


def test_an_imported_item_is_paired_with_kizens_fields_hands_off_and_is_not_syncds(
    activity: ScheduledActivity,
) -> None:
    found = imported_pairing(DESIRED.id, DESIRED, str(activity.id), activity, None, NOW)
    assert found == expected(activity)
    assert found.calendar_seen["due"] == iso(LATER) and found.kizen_seen["due"] == iso(DUE)  # each side as it is


def test_the_time_the_import_wrote_is_what_both_sides_last_showed(activity: ScheduledActivity) -> None:
    """So a side that moved since the import is seen to have moved, and its change flows."""
    written = iso(DUE - timedelta(hours=1))
    found = imported_pairing(DESIRED.id, DESIRED, str(activity.id), activity, written, NOW)
    seen = {**kizen_seen(activity), "due": written}
    calendar = {**expected(activity).calendar_seen, "due": written}
    assert found == expected(activity, kizen_seen=seen, calendar_seen=calendar)


def test_an_activity_without_its_first_time_takes_its_due_time_as_the_original(activity: ScheduledActivity) -> None:
    unmoved = activity.model_copy(update={"original_due_datetime": None})
    found = imported_pairing(DESIRED.id, DESIRED, str(activity.id), unmoved, None, NOW)
    assert found.original_due == DUE


def test_an_activity_gone_from_kizen_settles_the_pairing_and_leaves_the_item_alone() -> None:
    found = imported_pairing(DESIRED.id, DESIRED, "a-gone", None, None, NOW)
    assert found == imported(
        activity_id="a-gone",
        settled=Settled.DELETED,
        settled_reason="imported from Kizen, where it is gone; the calendar item is left alone",
    )


def test_a_rebuilt_pairing_at_one_time_on_both_sides_is_the_adopted_one(activity: ScheduledActivity) -> None:
    at_due = want("imported", DUE)
    assert rebuilt_pairing(at_due, activity, NOW) == adopted_pairing(at_due, activity, NOW)
    assert adopted_pairing(at_due, activity, NOW).changed_at == NOW


def test_a_rebuild_sees_kizen_moved_when_the_calendar_is_still_at_the_first_time(activity: ScheduledActivity) -> None:
    """The calendar at the activity's original time: Kizen's move (to DUE) is the change that flows."""
    unmoved = want("imported", EARLIER)
    rebuilt = rebuilt_pairing(unmoved, activity, NOW)
    assert rebuilt.calendar_seen["due"] == rebuilt.kizen_seen["due"] == iso(EARLIER)  # Kizen now shows DUE


def test_a_rebuild_sees_the_calendar_moved_when_it_left_the_first_time(activity: ScheduledActivity) -> None:
    moved = want("imported", LATER)
    rebuilt = rebuilt_pairing(moved, activity, NOW)
    assert rebuilt.calendar_seen["due"] == rebuilt.kizen_seen["due"] == iso(DUE)  # the calendar now wants LATER

"""What an update sends: each field the calendar changed reaches Kizen, and a field someone edited
in Kizen is theirs from then on (hands-off), however many later updates come."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.identifiers import provenance
from syncd.model import OccurrenceId
from syncd.sandbox import Sandbox
from syncd.state import Pairing, Settled
from tests.backends import pairings_in
from tests.engine.test_cycle import ROOT, World, calendar, vevent

ALARM = "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT30M\nDESCRIPTION:Soon\nEND:VALARM"
START = "20261203T100000Z"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox() as box:
        yield World(tmp_path, box)


def the_activity(world: World) -> dict[str, Any]:
    (activity,) = world.activities()
    return activity


def test_each_field_the_calendar_changed_reaches_kizen_once(world: World) -> None:
    world.feed(calendar(vevent("call", START, "Call")))
    assert world.run().counts() == {"Create": 1}
    before = the_activity(world)
    assert before["associated_entities"] == [] and before["notifications"] == []
    event = vevent("call", START, "Call", "DESCRIPTION:Bring the contract", "ATTENDEE:mailto:charles@customer.example")
    world.feed(calendar(event.replace("END:VEVENT", ALARM + "\nEND:VEVENT")))
    changed = world.run()
    assert changed.counts() == {"Update": 1}, changed.counts()
    after = the_activity(world)
    assert "Bring the contract" in after["note"] and after["note"].rstrip().splitlines()[-1].startswith("syncd: ada/")
    assert len(after["associated_entities"]) == 1
    assert [(n["time_amount"], n["time_unit"]) for n in after["notifications"]] == [(30, "minute")]
    assert world.run().counts() == {}


def test_a_note_edited_in_kizen_stays_theirs_through_later_updates(world: World) -> None:
    world.feed(calendar(vevent("call", START, "Call")))
    world.run()
    activity_id = the_activity(world)["id"]
    world.box.user().edit_note(activity_id, "Mine: call about the renewal")
    world.feed(calendar(vevent("call", START, "Call", "DESCRIPTION:First agenda")))
    first = world.run()
    assert the_activity(world)["note"] == "Mine: call about the renewal", first.outcomes
    assert first.outcomes[0].detail == "nothing sent: note left to Kizen" and not first.outcomes[0].changed
    # a later update that changes the note and the alarms again: the alarms flow, the note stays theirs
    event = vevent("call", START, "Call", "DESCRIPTION:Second agenda")
    world.feed(calendar(event.replace("END:VEVENT", ALARM + "\nEND:VEVENT")))
    second = world.run()
    assert second.counts() == {"Update": 1}, second.counts()
    assert second.outcomes[0].detail == "notifications"  # the plan no longer offers the note
    after = the_activity(world)
    assert after["note"] == "Mine: call about the renewal" and len(after["notifications"]) == 1
    assert world.run().counts() == {}


def test_a_series_moved_and_edited_at_once_carries_both_to_each_activity(world: World) -> None:
    weekly = "RRULE:FREQ=WEEKLY;COUNT=3"
    world.feed(calendar(vevent("weekly", "20261202T100000Z", "Weekly", weekly)))
    assert world.run().counts() == {"Create": 3}
    world.feed(calendar(vevent("weekly", "20261202T120000Z", "Weekly", weekly, "DESCRIPTION:New agenda")))
    moved = world.run()
    assert moved.counts().get("Reschedule") == 3 and "Create" not in moved.counts(), moved.counts()
    activities = sorted(world.activities(), key=lambda a: a["due_datetime"])
    assert [a["due_datetime"] for a in activities] == [
        "2026-12-02T12:00:00Z",
        "2026-12-09T12:00:00Z",
        "2026-12-16T12:00:00Z",
    ]
    assert all("New agenda" in a["note"] for a in activities)
    assert world.run().counts() == {}


def the_pairing(world: World) -> Pairing:
    (pairing,) = pairings_in(world.folder)
    return pairing


def kizen_requests(world: World) -> list[tuple[str, str]]:
    """The method and path of every request the sandbox answers from now on."""
    seen: list[tuple[str, str]] = []
    handle = world.box.app.handle

    def counted(request: Any) -> Any:
        seen.append((request.method, request.path))
        return handle(request)

    world.box.app.handle = counted  # type: ignore[method-assign]
    return seen


def test_a_move_alone_is_one_patch_without_a_read_even_with_a_note_kept_in_kizen(world: World) -> None:
    """Only an update that would overwrite a field Kizen may have edited reads the activity first;
    a move does not, even when the note is theirs (hands-off)."""
    world.feed(calendar(vevent("call", START, "Call")))
    world.run()
    activity_id = the_activity(world)["id"]
    world.box.user().edit_note(activity_id, "Mine: call about the renewal")
    world.feed(calendar(vevent("call", START, "Call", "DESCRIPTION:First agenda")))
    assert world.run().counts() == {"Update": 1}  # the note is theirs from now on
    before = the_pairing(world)
    world.feed(calendar(vevent("call", "20261203T150000Z", "Call", "DESCRIPTION:First agenda")))
    sent = kizen_requests(world)
    moved = world.run()
    assert moved.counts() == {"Update": 1} and moved.outcomes[0].detail == "due", moved.outcomes
    after = the_pairing(world)
    assert after.due == datetime(2026, 12, 3, 15, tzinfo=UTC) and after.changes == before.changes + 1
    assert after.changed_at == world.now and after.kizen_seen["due"] == after.calendar_seen["due"]
    assert after.lead == before.lead and after.locations == before.locations and after.hands_off == ("note",)
    scheduled = "/api/activities/scheduled-activity"
    assert [s for s in sent if s[1].startswith(f"{scheduled}/")] == [("PATCH", f"{scheduled}/{activity_id}")]
    assert the_activity(world)["due_datetime"] == "2026-12-03T15:00:00Z"
    assert the_activity(world)["note"] == "Mine: call about the renewal"


def test_an_activity_deleted_in_kizen_just_before_its_update_settles_the_pairing(world: World) -> None:
    """Deleted between the poll and the update's read: the pairing is settled as deleted in Kizen
    (the calendar item is left alone), and nothing is sent or made again."""
    world.feed(calendar(vevent("call", START, "Call")))
    world.run()
    activity_id = the_activity(world)["id"]
    handle = world.box.app.handle

    def deleted_first(request: Any) -> Any:
        if request.method == "GET" and request.path.endswith(activity_id):
            world.box.user().delete(activity_id)
        return handle(request)

    world.box.app.handle = deleted_first  # type: ignore[method-assign]
    world.feed(calendar(vevent("call", START, "Call", "DESCRIPTION:New agenda")))
    raced = world.run()
    world.box.app.handle = handle  # type: ignore[method-assign]
    assert raced.counts() == {"Update": 1} and raced.outcomes[0].detail == "deleted in Kizen", raced.outcomes
    (pairing,) = pairings_in(world.folder)
    assert pairing.settled is Settled.DELETED
    assert pairing.settled_reason == "deleted in Kizen; the calendar item is left alone"
    assert world.run().actions == [] and world.activities() == []


def test_an_assignee_a_rule_changes_is_sent_to_kizen(world: World, tmp_path: Path) -> None:
    """A mapping rule gives Grace the calls marked for her: marking one moves its activity to her."""
    rules = (ROOT / "mappings" / "default.toml").read_text()
    rule = '[[rule]]\nname = "grace\'s"\nmatch = { categories = ["GRACE"] }\nset = { assignee = "grace@example.com" }\n'
    rules = rules.replace("\n[default]\n", f"\n{rule}\n[default]\n", 1)
    (tmp_path / "rules.toml").write_text(rules)
    original = world.config_text
    world.config_text = lambda: original().replace(
        str(ROOT / "mappings" / "default.toml"), str(tmp_path / "rules.toml")
    )  # type: ignore[method-assign]
    world.feed(calendar(vevent("call", START, "Call")))
    world.run()
    assert the_activity(world)["employee"]["email"] == "ada@example.com"
    world.feed(calendar(vevent("call", START, "Call", "CATEGORIES:Grace")))
    moved = world.run()
    assert moved.counts() == {"Update": 1} and moved.outcomes[0].detail == "assignee", moved.outcomes
    assert the_activity(world)["employee"]["email"] == "grace@example.com"
    assert world.run().actions == []


def test_a_note_kept_in_kizen_names_the_occurrence_its_activity_moves_to(world: World) -> None:
    """Their note stays theirs through a series' re-pairing, but its last line, syncd's, names the
    occurrence the activity is paired with now (so a lost state store re-pairs it right)."""
    weekly = "RRULE:FREQ=WEEKLY;COUNT=3"
    world.feed(calendar(vevent("weekly", START, "Weekly", weekly)))
    world.run()
    second = sorted(world.activities(), key=lambda a: a["due_datetime"])[1]
    old_line = second["note"].rstrip().splitlines()[-1]
    assert old_line == provenance("ada", OccurrenceId("weekly", "20261210T100000Z"))
    world.box.user().edit_note(second["id"], f"Mine: the agenda\n\n{old_line}")
    world.feed(calendar(vevent("weekly", START, "Weekly", weekly, "DESCRIPTION:Bring the numbers")))
    world.run()  # the note is theirs from now on
    world.feed(calendar(vevent("weekly", "20261203T120000Z", "Weekly", weekly, "DESCRIPTION:Bring the numbers")))
    moved = world.run()
    assert moved.clean and moved.counts().get("Reschedule") == 3, moved.counts()
    note = world.box.service.get_scheduled(second["id"])["note"]
    assert note == f"Mine: the agenda\n\n{provenance('ada', OccurrenceId('weekly', '20261210T120000Z'))}"

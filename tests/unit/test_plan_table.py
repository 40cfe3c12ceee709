"""The decision table, row by row: DESIGN section 4 (what flows which way) and section 5 (change
detection and conflicts), each row one small View and the exact actions ``plan()`` decides.

In the manner of vdirsyncer's tests of its sync algorithm: no server, no state file, no clock;
:mod:`tests.plans` builds the values, every one in step unless a test changes it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from syncd.model import Location, OccurrenceId
from syncd.state import Pairing
from syncd.sync.actions import (
    Create,
    Delete,
    Desired,
    Guard,
    Import,
    Log,
    MoveInCalendar,
    RecordConflict,
    Reschedule,
    Settle,
    Update,
    WriteBack,
)
from syncd.sync.plan import GONE, edited_in_kizen, plan
from tests.plans import (
    DUE,
    EARLIER,
    END,
    HERE,
    LATER,
    NOW,
    conflict,
    foreign,
    iso,
    kizen,
    paired,
    rules,
    view,
    want,
)

READ_ONLY = "moved in Kizen; the calendar item is read-only, so Kizen's time stands"
NOT_ORGANIZER = "moved in Kizen; the owner does not organize the meeting, so Kizen's time stands"

# --- in step ---------------------------------------------------------------------------------


def test_an_item_in_step_with_its_activity_plans_nothing() -> None:
    d = want()
    assert plan(view(d, pairings=[paired(d)])).actions == []


def test_a_settled_pairing_is_never_touched_again() -> None:
    d = want(due=LATER)
    for settled in ("logged", "deleted", "gone", "expired"):
        p = paired(want(), settled=settled)
        assert plan(view(d, pairings=[p], kizen=[kizen(p, completed=True)])).actions == [], settled


# --- section 4: new occurrences ----------------------------------------------------------------


def test_a_new_occurrence_in_the_window_is_created() -> None:
    d = want()
    assert plan(view(d)).actions == [Create(d)]


def test_a_todo_completed_before_syncd_saw_it_open_is_not_created() -> None:
    assert plan(view(want(kind="VTODO", completed=True))).actions == []


def test_creates_come_in_a_stable_order() -> None:
    b, a, c = want("b"), want("a"), want("a", slot="20261203T140000Z")
    assert plan(view(b, c, a)).actions == [Create(a), Create(c), Create(b)]


# --- section 4: the due time, both ways --------------------------------------------------------


def test_a_due_time_moved_in_the_calendar_updates_the_due_time() -> None:
    p = paired(want())
    d = want(due=LATER)
    assert plan(view(d, pairings=[p])).actions == [Update(p, d, {"due": iso(LATER)})]


def test_a_move_in_kizen_moves_a_writable_lead_whose_owner_organizes() -> None:
    d = want(writable=True)
    p = paired(d)
    assert plan(view(d, pairings=[p], kizen=[kizen(p, LATER)])).actions == [MoveInCalendar(p, d, LATER)]


def test_a_move_in_kizen_stands_when_the_calendar_item_is_read_only() -> None:
    d = want(writable=False)
    p = paired(d)
    stands = Settle(p, READ_ONLY, kizen_seen={"due": iso(LATER)})
    assert plan(view(d, pairings=[p], kizen=[kizen(p, LATER)])).actions == [stands]


def test_a_move_in_kizen_stands_when_the_owner_does_not_organize_the_meeting() -> None:
    d = want(writable=True, organizes=False)
    p = paired(d)
    stands = Settle(p, NOT_ORGANIZER, kizen_seen={"due": iso(LATER)})
    assert plan(view(d, pairings=[p], kizen=[kizen(p, LATER)])).actions == [stands]


def test_after_kizens_time_stood_a_later_calendar_move_still_flows() -> None:
    p = replace(paired(want()), kizen_seen={"due": iso(LATER), "employee_id": "e-ada"}, due=LATER)
    assert plan(view(want(), pairings=[p])).actions == []  # Kizen's time stands: nothing sent back
    d = want(due=EARLIER)
    assert plan(view(d, pairings=[p])).actions == [Update(p, d, {"due": iso(EARLIER)})]


def test_both_sides_moved_to_the_same_time_is_remembered_not_a_conflict() -> None:
    p = paired(want())
    d = want(due=LATER)
    agree = Settle(p, "both sides agree", kizen_seen={"due": iso(LATER)}, calendar_seen={"due": iso(LATER)})
    assert plan(view(d, pairings=[p], kizen=[kizen(p, LATER)])).actions == [agree]


# --- section 4: note, assignee, contacts, notifications ----------------------------------------

CHANGES: dict[str, Any] = {
    "note": "Intro call\nroom 4",
    "assignee": {"kind": "email", "value": "grace@example.com"},
    "contacts": ["c-charles"],
    "notifications": [{"type": "email", "time_amount": 15, "time_unit": "minutes"}],
}


def test_each_field_changed_in_the_calendar_flows_to_kizen() -> None:
    p = paired(want())
    for name, value in CHANGES.items():
        d = want(**{name: value})
        assert plan(view(d, pairings=[p])).actions == [Update(p, d, {name: value})], name


def test_every_changed_field_goes_in_one_update_with_the_due_time() -> None:
    p = paired(want())
    d = want(due=LATER, **CHANGES)
    assert plan(view(d, pairings=[p])).actions == [Update(p, d, {"due": iso(LATER), **CHANGES})]


def test_a_field_hands_off_is_not_sent_but_the_others_are() -> None:
    for name, value in CHANGES.items():
        p = paired(want(), hands_off=(name,))
        d = want(**CHANGES)
        rest = {k: v for k, v in CHANGES.items() if k != name}
        assert plan(view(d, pairings=[p])).actions == [Update(p, d, rest)], name
        assert plan(view(want(**{name: value}), pairings=[p])).actions == [], name


def test_a_reassignment_in_kizen_makes_the_assignee_hands_off() -> None:
    p = paired(want())
    d = want(assignee=CHANGES["assignee"], note=CHANGES["note"])
    reassigned = Settle(p, "reassigned in Kizen; syncd leaves the assignee alone", hands_off=("assignee",))
    assert plan(view(d, pairings=[p], kizen=[kizen(p, employee="e-grace")])).actions == [
        Update(p, d, {"note": CHANGES["note"]}),  # the calendar's new assignee is not sent
        reassigned,
    ]


def test_a_reassignment_is_recorded_once() -> None:
    p = paired(want(), hands_off=("assignee",))
    assert plan(view(want(), pairings=[p], kizen=[kizen(p, employee="e-grace")])).actions == []


def test_an_activity_whose_employee_syncd_never_saw_is_not_a_reassignment() -> None:
    p = replace(paired(want()), kizen_seen={"due": iso(DUE)})  # a role's activity: no employee
    assert plan(view(want(), pairings=[p], kizen=[kizen(p, employee="e-grace")])).actions == []


def test_a_new_lead_copy_or_a_new_copy_is_remembered() -> None:
    p = paired(want())
    elsewhere = Location("ada", "https://dav.example/ada/home/", "item.ics")
    d = want(location=elsewhere)
    assert plan(view(d, pairings=[p])).actions == [
        Settle(p, "the lead copy changed", lead=elsewhere, locations=(elsewhere,))
    ]
    two = replace(want(), locations=(HERE, elsewhere))
    assert plan(view(two, pairings=[p])).actions == [
        Settle(p, "its calendar copies changed", lead=HERE, locations=(HERE, elsewhere))
    ]


def test_a_new_title_or_length_is_remembered_for_the_feed_without_a_kizen_write() -> None:
    p = paired(want())
    d = want(summary="Intro call (new)", minutes=45)
    reason = "the calendar item's title or length changed"
    assert plan(view(d, pairings=[p])).actions == [
        Settle(p, reason, calendar_seen={"summary": "Intro call (new)", "minutes": 45, "all_day": None})
    ]


# --- section 4: deletions ------------------------------------------------------------------------


def test_an_item_gone_from_the_calendar_deletes_the_activity_syncd_created() -> None:
    p = paired(want())  # deleted, STATUS:CANCELLED or an EXDATE: the reading marks it gone
    assert plan(view(pairings=[p], gone=[p.id])).actions == [Delete(p, GONE)]


def test_an_item_gone_whose_activity_syncd_did_not_create_only_retires_the_pairing() -> None:
    p = paired(want(), created_by_syncd=False)
    settle = Settle(p, f"{GONE}; not created by syncd, so left in Kizen", settled="gone")
    assert plan(view(pairings=[p], gone=[p.id])).actions == [settle]


def test_a_slot_a_series_lost_beyond_the_window_waits_for_the_window() -> None:
    late = END + timedelta(days=3)
    p = paired(want("weekly", late, slot=late.strftime("%Y%m%dT%H%M%SZ")))
    assert plan(view(pairings=[p], gone=[p.id])).actions == []


def test_an_activity_deleted_in_kizen_retires_its_pairing_and_leaves_the_calendar() -> None:
    d = want(due=LATER)  # even a calendar change is not sent to a deleted activity
    p = paired(want())
    settle = Settle(p, "deleted in Kizen; the calendar item is left alone", settled="deleted")
    assert plan(view(d, pairings=[p], kizen=[kizen(p, deleted=True)])).actions == [settle]
    assert plan(view(pairings=[p], kizen=[kizen(p, deleted=True)], gone=[p.id])).actions == [settle]


# --- section 4: completion -------------------------------------------------------------------------


def test_an_activity_completed_in_kizen_is_written_back_to_a_writable_lead() -> None:
    d = want(writable=True, source=rules(write_back=True))
    p = paired(d)
    done = kizen(p, completed=True, logged_activity_id="l1")
    assert plan(view(d, pairings=[p], kizen=[done])).actions == [WriteBack(p, "l1")]


def test_an_activity_completed_in_kizen_settles_logged_when_there_is_no_write_back() -> None:
    logged = "completed in Kizen"
    for d, written in (
        (want(writable=True, source=rules(write_back=False)), False),  # the source turned it off
        (want(writable=False, source=rules(write_back=True)), False),  # an ICS feed
        (want(writable=True, source=rules(write_back=True)), True),  # written back already
    ):
        p = paired(d, written_back=written)
        done = kizen(p, completed=True, logged_activity_id="l1")
        assert plan(view(d, pairings=[p], kizen=[done])).actions == [Settle(p, logged, settled="logged")]
    p = paired(want())
    assert plan(view(pairings=[p], kizen=[kizen(p, completed=True)])).actions == [Settle(p, logged, settled="logged")]


def test_completion_beats_a_calendar_move() -> None:
    p = paired(want())
    d = want(due=LATER, note="changed")
    done = kizen(p, LATER + timedelta(hours=1), completed=True)
    assert plan(view(d, pairings=[p], kizen=[done])).actions == [Settle(p, "completed in Kizen", settled="logged")]


def test_a_todo_completed_in_the_calendar_is_logged() -> None:
    p = paired(want(kind="VTODO"))
    d = want(kind="VTODO", completed=True, due=LATER)  # not moved first: logged as it is
    assert plan(view(d, pairings=[p])).actions == [Log(p, d)]


def test_an_event_that_ended_is_logged_when_the_source_logs_past_events() -> None:
    past = NOW - timedelta(hours=2)
    d = want(due=past, source=rules(log_past_events=True))
    p = paired(d)
    assert plan(view(d, pairings=[p])).actions == [Log(p, d)]
    running = want(due=NOW - timedelta(minutes=30), source=rules(log_past_events=True))  # ends at 12:30
    assert plan(view(running, pairings=[paired(running)])).actions == []
    off = want(due=past)
    assert plan(view(off, pairings=[paired(off)])).actions == []  # off by default
    todo = want(due=past, kind="VTODO", source=rules(log_past_events=True))
    assert plan(view(todo, pairings=[paired(todo)])).actions == []  # a to-do is logged when completed


# --- section 4: activities made in Kizen ------------------------------------------------------------


def test_an_activity_made_in_kizen_for_an_importing_source_is_imported() -> None:
    made = foreign("k1")
    assert plan(view(foreign=[made])).actions == [Import(made)]


def test_an_activity_made_in_kizen_and_paired_already_is_not_imported_again() -> None:
    p = paired(want(), activity_id="k1")
    assert plan(view(want(), pairings=[p], foreign=[foreign("k1")])).actions == []


# --- section 5: conflicts, per policy ----------------------------------------------------------------


def both_moved(policy: str, **options: Any) -> tuple[list[Any], Pairing, Desired]:
    """The calendar moved the item later, Kizen moved it earlier."""
    d = want(due=LATER, source=rules(policy=policy), **{"writable": True, **options})
    p = paired(want())
    return plan(view(d, pairings=[p], kizen=[kizen(p, EARLIER)])).actions, p, d


def test_both_moved_under_the_calendar_policy_records_it_and_the_calendar_wins() -> None:
    actions, p, d = both_moved("calendar")
    recorded = RecordConflict(p, "due", iso(LATER), iso(EARLIER), "calendar")
    assert actions == [Update(p, d, {"due": iso(LATER)}), recorded]


def test_both_moved_under_the_crm_policy_records_it_and_kizen_wins() -> None:
    actions, p, d = both_moved("crm")
    recorded = RecordConflict(p, "due", iso(LATER), iso(EARLIER), "crm")
    assert actions == [recorded, MoveInCalendar(p, d, EARLIER)]


def test_both_moved_under_the_crm_policy_on_a_read_only_item_lets_kizens_time_stand() -> None:
    actions, p, d = both_moved("crm", writable=False)
    recorded = RecordConflict(p, "due", iso(LATER), iso(EARLIER), "crm")
    stands = Settle(p, READ_ONLY, kizen_seen={"due": iso(EARLIER)})
    assert actions == [recorded, stands]


def test_both_moved_under_the_manual_policy_writes_no_time_but_other_fields_flow() -> None:
    actions, p, d = both_moved("manual")
    assert actions == [RecordConflict(p, "due", iso(LATER), iso(EARLIER), "manual")]
    actions, p, d = both_moved("manual", note="new note")
    recorded = RecordConflict(p, "due", iso(LATER), iso(EARLIER), "manual")
    assert actions == [Update(p, d, {"note": "new note"}), recorded]


def test_a_conflict_resolved_for_the_calendar_is_applied_once() -> None:
    d = want(due=LATER, writable=True, source=rules(policy="manual"))
    p = paired(want())
    resolved = conflict(p, "calendar")
    actions = plan(view(d, pairings=[p], kizen=[kizen(p, EARLIER)], conflicts=[resolved])).actions
    assert actions == [Update(p, d, {"due": iso(LATER)}, conflict=7)]


def test_a_conflict_resolved_for_kizen_moves_the_calendar_item() -> None:
    d = want(due=LATER, writable=True, source=rules(policy="manual"))
    p = paired(want())
    resolved = conflict(p, "crm")
    actions = plan(view(d, pairings=[p], kizen=[kizen(p, EARLIER)], conflicts=[resolved])).actions
    assert actions == [MoveInCalendar(p, d, EARLIER, conflict=7)]


def test_an_open_or_applied_conflict_is_no_decision() -> None:
    d = want(due=LATER, writable=True, source=rules(policy="manual"))
    p = paired(want())
    for status in ("open", "applied"):
        waiting = replace(conflict(p, "calendar"), status=status)
        actions = plan(view(d, pairings=[p], kizen=[kizen(p, EARLIER)], conflicts=[waiting])).actions
        assert actions == [RecordConflict(p, "due", iso(LATER), iso(EARLIER), "manual")], status


def test_a_resolved_conflict_of_another_occurrence_is_not_applied_here() -> None:
    d = want(due=LATER, writable=True, source=rules(policy="manual"))
    p = paired(want())
    other = replace(conflict(p, "calendar"), occurrence=OccurrenceId("other"))
    actions = plan(view(d, pairings=[p], kizen=[kizen(p, EARLIER)], conflicts=[other])).actions
    assert actions == [RecordConflict(p, "due", iso(LATER), iso(EARLIER), "manual")]


# --- section 5: what is watched, and what is not decided ------------------------------------------------


def test_a_pairing_overdue_past_the_watch_is_left_as_it_is() -> None:
    old = NOW - timedelta(days=91)
    p = paired(want(due=old))
    expired = Settle(p, "overdue for over 90 days; left as it is in Kizen", settled="expired")
    assert plan(view(pairings=[p], watch=timedelta(days=90))).actions == [expired]
    recent = paired(want(due=NOW - timedelta(days=89)))
    assert plan(view(want(due=NOW - timedelta(days=89)), pairings=[recent], watch=timedelta(days=90))).actions == []


def test_a_pairing_out_of_the_window_or_of_an_unread_source_is_followed_later() -> None:
    p = paired(want())
    assert plan(view(pairings=[p])).actions == []  # not desired, not gone: nothing to decide
    assert plan(view(pairings=[p], kizen=[kizen(p, LATER)])).actions == []


def test_nothing_is_decided_for_a_pairing_kizen_could_not_be_read_for() -> None:
    p = paired(want())
    assert plan(view(want(due=LATER), pairings=[p], kizen=[])).actions == []
    assert plan(view(pairings=[p], kizen=[], gone=[p.id])).actions == []  # not even a delete


def test_a_held_uid_is_neither_created_updated_nor_deleted() -> None:
    new, moved = want("new"), want("moved", due=LATER)
    p, q = paired(want("moved")), paired(want("gone"), activity_id="a2")
    held = frozenset({"new", "moved", "gone"})
    assert plan(view(new, moved, pairings=[p, q], gone=[q.id], held=held)).actions == []
    assert plan(view(new, moved, pairings=[p, q], gone=[q.id])).actions == [
        Create(new),
        Delete(q, GONE),
        Update(p, moved, {"due": iso(LATER)}),
    ]


# --- beside the table: what this cycle may not touch, the safety rails, a failed Kizen ------------------


def test_nothing_is_created_for_an_occurrence_whose_activity_may_exist_already() -> None:
    maybe, new = want("maybe"), want("new")
    assert plan(view(maybe, new, uncreated=frozenset({maybe.id}))).actions == [Create(new)]


def test_nothing_is_done_for_a_pairing_whose_intent_is_unsettled() -> None:
    p = paired(want())
    assert plan(view(want(due=LATER), pairings=[p], unsettled=frozenset({p.id}))).actions == []
    assert plan(view(pairings=[p], gone=[p.id], unsettled=frozenset({p.id}))).actions == []


def test_a_pairing_waits_while_its_lead_source_is_unread_or_another_source_is_named() -> None:
    moved = want(due=LATER)
    p = paired(want())
    expected = [Update(p, moved, {"due": iso(LATER)})]
    assert plan(view(moved, pairings=[p], unread=frozenset({"bob"}))).actions == expected
    assert plan(view(moved, pairings=[p], unread=frozenset({"ada"}))).actions == []
    assert plan(view(moved, pairings=[p], only=frozenset({"ada"}))).actions == expected
    assert plan(view(moved, pairings=[p], only=frozenset({"bob", "grace"}))).actions == []
    assert plan(view(moved, pairings=[p], only=frozenset({"bob", "ada"}))).actions == expected  # a team
    leaderless = replace(p, lead=None)
    assert plan(view(pairings=[leaderless], kizen=[kizen(p, deleted=True)], only=frozenset({"bob"}))).actions != []
    bob = frozenset({"bob"})
    assert plan(view(foreign=[foreign()], only=bob, unread=frozenset({"ada"}))).actions == [Import(foreign())]


def test_a_pairing_without_a_lead_is_planned_only_by_a_cycle_that_keeps_what_no_source_leads() -> None:
    leaderless = replace(paired(want()), lead=None)
    deleted = [kizen(paired(want()), deleted=True)]
    assert plan(view(pairings=[leaderless], kizen=deleted, only=frozenset({"bob"}))).actions != []
    assert plan(view(pairings=[leaderless], kizen=deleted, only=frozenset({"bob"}), unled=False)).actions == []


def gone_ones(count: int) -> list[Pairing]:
    return [paired(want(f"item{n}"), activity_id=f"a{n}") for n in range(count)]


def test_a_run_that_would_delete_most_of_a_source_holds_its_deletions_and_says_so() -> None:
    pairings, new = gone_ones(11), want("new")
    decided = plan(view(new, pairings=pairings, gone=[p.id for p in pairings[:6]]))
    assert decided.actions == [Create(new)]
    assert set(decided.stopped) == set(decided.stops) == {"ada"}
    assert decided.stops["ada"].startswith("would delete 6 of 11 activities (2026-11-22 12:00 UTC)")
    assert decided.stopped["ada"].endswith("; 6 deletion(s) held")
    forced = plan(view(new, pairings=pairings, gone=[p.id for p in pairings[:6]], guard=Guard(force=True)))
    assert forced.actions == [Create(new), *(Delete(p, GONE) for p in pairings[:6])] and forced.stopped == {}


def test_the_share_counts_a_sources_open_pairings_only() -> None:
    pairings = gone_ones(11)
    retired = [
        replace(p, id=OccurrenceId(f"old{n}"), activity_id=f"old{n}", settled="logged")
        for n, p in enumerate(gone_ones(20))
    ]
    decided = plan(view(pairings=[*pairings, *retired], gone=[p.id for p in pairings[:6]]))
    assert decided.actions == [] and "would delete 6 of 11 activities" in decided.stopped["ada"]


def test_a_recorded_stop_holds_until_its_source_is_read_with_nothing_to_delete() -> None:
    pairings = gone_ones(3)
    stop = {"ada": "the calendar came back empty"}
    held = plan(view(pairings=pairings, gone=[pairings[0].id], guard=Guard(held=stop, read=frozenset({"ada"}))))
    assert held.actions == [] and held.stopped == {"ada": "the calendar came back empty; 1 deletion(s) held"}
    assert held.stops == stop  # recorded again with its first reason
    assert held.cleared == frozenset()
    unread = plan(view(pairings=pairings, guard=Guard(held=stop)))
    assert unread.cleared == frozenset() and unread.stopped == {}  # not read: nothing known, the stop stays
    back = plan(view(pairings=pairings, guard=Guard(held=stop, read=frozenset({"ada"}))))
    assert back.cleared == {"ada"} and back.stopped == {} and back.stops == {}
    forced = Guard(held=stop, force=True)
    assert plan(view(pairings=pairings, guard=forced)).cleared == frozenset()  # forced, but not read: it stays
    forced = Guard(held=stop, force=True, read=frozenset({"ada"}))
    assert plan(view(pairings=pairings, gone=[pairings[0].id], guard=forced)).cleared == {"ada"}


def test_a_stop_without_a_clock_reading_names_no_time() -> None:
    pairings = gone_ones(2)
    decided = plan(view(pairings=pairings, gone=[pairings[0].id], guard=Guard(emptied=frozenset({"ada"})), now=None))
    assert decided.stops == {"ada": "the calendar came back empty; run with --force-delete if that is right"}


def test_an_emptied_calendar_holds_even_one_deletion() -> None:
    pairings = gone_ones(2)
    decided = plan(view(pairings=pairings, gone=[pairings[0].id], guard=Guard(emptied=frozenset({"ada"}))))
    assert decided.actions == [] and "the calendar came back empty" in decided.stops["ada"]
    allowed = Guard(emptied=frozenset({"ada"}), allowed=frozenset({"ada"}))
    assert plan(view(pairings=pairings, gone=[pairings[0].id], guard=allowed)).actions == [Delete(pairings[0], GONE)]


def test_a_cycle_that_could_not_use_kizen_sends_nothing_but_still_decides_its_stops() -> None:
    pairings, new = gone_ones(11), want("new")
    decided = plan(view(new, pairings=pairings, gone=[p.id for p in pairings[:6]], kizen_failed=True))
    assert decided.actions == [] and decided.held == 1 and set(decided.stops) == {"ada"}
    assert plan(view(new)).held == 0


def test_a_field_someone_edited_in_kizen_is_theirs_from_then_on() -> None:
    p = replace(paired(want()), kizen_seen={"due": iso(DUE), "note": "Intro call", "contacts": []})
    current = {"note": "Edited by hand", "contacts": [], "notifications": ["x"]}
    assert edited_in_kizen(p, {"note": "New", "contacts": ["c"]}, current) == {"note"}
    assert edited_in_kizen(p, {"contacts": ["c"]}, current) == set()  # the note is not being written
    assert edited_in_kizen(p, {"notifications": []}, current) == set()  # never seen in Kizen: no edit known


# --- section 2 and 5: a changed series, k-th to k-th --------------------------------------------------------


def test_a_single_item_that_became_a_series_keeps_its_activity_for_the_first_occurrence() -> None:
    p = paired(want("item"))
    first = want("item", DUE, slot="20261203T140000Z")
    second = want("item", DUE + timedelta(days=7), slot="20261210T140000Z")
    assert plan(view(first, second, pairings=[p], gone=[p.id])).actions == [Reschedule(p, first), Create(second)]


def test_a_shifted_series_moves_each_activity_to_the_occurrence_of_its_rank() -> None:
    week = timedelta(days=7)
    old = [paired(want("w", DUE + k * week, slot=f"{(DUE + k * week):%Y%m%dT%H%M%SZ}"), f"a{k}") for k in range(3)]
    new = [
        want("w", DUE + k * week + timedelta(hours=1), slot=f"{(DUE + k * week + timedelta(hours=1)):%Y%m%dT%H%M%SZ}")
        for k in range(3)
    ]
    actions = plan(view(*reversed(new), pairings=old, gone=[p.id for p in old])).actions
    assert actions == [Reschedule(old[k], new[k]) for k in range(3)]


def test_a_series_slot_in_the_past_is_not_matched_but_deleted() -> None:
    past = NOW - timedelta(hours=5)
    p = paired(want("w", past, slot=f"{past:%Y%m%dT%H%M%SZ}"))
    new = want("w", DUE, slot=f"{DUE:%Y%m%dT%H%M%SZ}")
    assert plan(view(new, pairings=[p], gone=[p.id])).actions == [Create(new), Delete(p, GONE)]


# --- the edges mutation testing found -----------------------------------------------------------------


def test_a_calendar_that_catches_up_with_kizens_time_is_remembered() -> None:
    p = replace(paired(want()), kizen_seen={"due": iso(LATER), "employee_id": "e-ada"}, due=LATER)  # Kizen's stood
    agree = Settle(p, "both sides agree", kizen_seen={"due": iso(LATER)}, calendar_seen={"due": iso(LATER)})
    assert plan(view(want(due=LATER), pairings=[p])).actions == [agree]


def test_an_event_is_logged_from_the_moment_it_ends_and_one_without_a_length_from_its_start() -> None:
    ended = want(due=NOW - timedelta(hours=1), source=rules(log_past_events=True))  # ends at NOW exactly
    assert plan(view(ended, pairings=[paired(ended)])).actions == [Log(paired(ended), ended)]
    instant = want(due=NOW - timedelta(minutes=1), duration=None, source=rules(log_past_events=True))
    assert plan(view(instant, pairings=[paired(instant)])).actions == [Log(paired(instant), instant)]


def test_a_lost_slot_waits_by_its_slot_time_not_its_original_due() -> None:
    late = END + timedelta(days=3)
    # rescheduled once by a series change: its original due is the old slot's, inside the window
    p = paired(want("weekly", late, slot=f"{late:%Y%m%dT%H%M%SZ}", original_due=DUE))
    assert plan(view(pairings=[p], gone=[p.id])).actions == []


def slotted(uid: str, when: datetime) -> Desired:
    return want(uid, when, slot=f"{when:%Y%m%dT%H%M%SZ}")


def test_every_item_is_planned_whatever_comes_before_it() -> None:
    done_todo, new = want("a-todo", kind="VTODO", completed=True), want("b-new")
    assert plan(view(done_todo, new)).actions == [Create(new)]  # a to-do done before syncd saw it skips only itself
    settled, moved = paired(want("a"), "a1", settled="logged"), paired(want("b"), "a2")
    assert plan(view(want("a"), want("b", LATER), pairings=[settled, moved])).actions == [
        Update(moved, want("b", LATER), {"due": iso(LATER)})
    ]
    old, later = paired(want("a", NOW - timedelta(days=91)), "a1"), paired(want("b"), "a2")
    expired = Settle(old, "overdue for over 90 days; left as it is in Kizen", settled="expired")
    actions = plan(view(want("b", LATER), pairings=[old, later], watch=timedelta(days=90))).actions
    assert actions == [expired, Update(later, want("b", LATER), {"due": iso(LATER)})]
    beyond = paired(slotted("a", END + timedelta(days=1)), "a1")
    actions = plan(view(want("b", LATER), pairings=[beyond, later], gone=[beyond.id])).actions
    assert actions == [Update(later, want("b", LATER), {"due": iso(LATER)})]


def test_imports_come_in_a_stable_order() -> None:
    first, second = foreign("k1"), foreign("k2")
    assert plan(view(foreign=[second, first])).actions == [Import(first), Import(second)]


def test_the_watch_ends_only_once_it_is_over() -> None:
    p = paired(want(due=NOW - timedelta(days=90)))
    assert plan(view(want(due=NOW - timedelta(days=90)), pairings=[p], watch=timedelta(days=90))).actions == []


def test_a_slot_lost_at_the_window_end_exactly_waits_and_takes_no_part_in_a_series_change() -> None:
    edge = paired(slotted("w", END), "a-edge")
    assert plan(view(pairings=[edge], gone=[edge.id])).actions == []
    # shifted two days earlier: the edge's new slot enters the window, but the edge is not matched to it
    p = paired(slotted("w", DUE), "a0")
    new = [slotted("w", DUE - timedelta(days=2)), slotted("w", END - timedelta(days=2))]
    actions = plan(view(*new, pairings=[p, edge], gone=[p.id, edge.id])).actions
    assert actions == [Reschedule(p, new[0]), Create(new[1])]


def test_a_series_change_matches_slots_from_now_on_now_included() -> None:
    p = paired(slotted("w", NOW), "a0")  # its slot starts now
    new = slotted("w", NOW + timedelta(hours=1))
    assert plan(view(new, pairings=[p], gone=[p.id])).actions == [Reschedule(p, new)]
    moved_to_now = slotted("w", NOW)
    q = paired(slotted("w", NOW + timedelta(hours=1)), "a0")
    assert plan(view(moved_to_now, pairings=[q], gone=[q.id])).actions == [Reschedule(q, moved_to_now)]


def test_two_changed_series_and_a_new_item_are_each_planned_on_their_own() -> None:
    a = paired(slotted("a", DUE), "a0")
    b = paired(slotted("b", DUE), "b0")
    new_a, new_b, single = slotted("a", LATER), slotted("b", LATER), want("c")
    both = [kizen(a), kizen(b)]
    assert plan(view(new_a, new_b, single, pairings=[a, b], kizen=both, gone=[a.id, b.id])).actions == [
        Reschedule(a, new_a),
        Reschedule(b, new_b),
        Create(single),
    ]
    for unread, read in ((a, b), (b, a)):  # Kizen unread for one series: it waits, the other goes on
        news = {a.id.uid: new_a, b.id.uid: new_b}
        actions = plan(view(new_a, new_b, single, pairings=[a, b], kizen=[kizen(read)], gone=[a.id, b.id])).actions
        assert actions == [Reschedule(read, news[read.id.uid]), Create(single)], unread.id.uid

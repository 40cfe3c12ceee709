"""The guards, called directly: the safety rails over a planned list of actions (as ``plan()``
calls them, recorded as a real run records them), and the journal settling a create whose
answer was lost. A real state file, the sandbox in-process as Kizen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.calendar.reading import CalendarView
from syncd.config import Config
from syncd.identifiers import imported_uid, provenance, with_provenance
from syncd.model import OccurrenceId
from syncd.sandbox import Fault, Sandbox
from syncd.state import Pairing, Settled, Store
from syncd.sync.actions import Action, Create, Delete, Guard
from syncd.sync.commit import commit_rails
from syncd.sync.plan import GONE, Plan
from syncd.sync.rails import rails
from syncd.sync.recovery import SLACK, Recovery
from syncd.wiring import sandbox_client
from tests import backends
from tests.backends import Backend, open_state
from tests.conftest import MEETING
from tests.plans import DUE, HERE, LATER, NOW, iso, paired, want


def config(**sync: Any) -> Config:
    sources = [
        {"name": name, "type": "ics", "owner": f"{name}@example.com", "url": f"{name}.ics", **extra}
        for name, extra in (("ada", {}), ("bob", {}), ("free", {"allow_mass_delete": True}))
    ]
    return Config.model_validate({"kizen": {"sandbox": {}}, "sync": sync, "sources": sources})


@dataclass
class Guards:
    state: Store
    box: Sandbox
    safety: Recovery
    config: Config
    folder: Path

    def journal(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Each intent of this kind: its status and outcome, in order."""
        rows = backends.CURRENT.rows(
            self.folder, f"SELECT status, outcome FROM journal WHERE kind = '{kind}' ORDER BY id"
        )
        return [(status, json.loads(outcome) if outcome else {}) for status, outcome in rows]

    def rails(
        self, actions: list[Action], pairings: list[Pairing], view: CalendarView, **options: bool
    ) -> tuple[list[Action], dict[str, str]]:
        """The rails' decision, recorded as a real run records it (a dry run records nothing)."""
        guard = Guard.of(self.config, self.state.rails(), view.read, view.emptied, force=options.get("force", False))
        decided = rails(actions, pairings, guard, NOW)
        if not options.get("dry_run", False):
            commit_rails(self.state, Plan(decided.actions, decided.stopped, decided.stops, decided.cleared))
        return decided.actions, decided.stopped


@pytest.fixture
def guards(tmp_path: Path, backend: Backend) -> Iterator[Guards]:
    """The rails over a real state store, on each backend."""
    with Sandbox() as box:
        state = open_state(tmp_path)
        client = sandbox_client(box, sleep=lambda _: None)
        try:
            yield Guards(state, box, Recovery(config(), state, client, clock=lambda: NOW), config(), tmp_path)
        finally:
            client.http.close()
            state.close()


def pairings_of(source: str, count: int) -> list[Pairing]:
    where = want().lead.location
    lead = type(where)(source, where.collection, "x.ics")
    return [paired(want(f"{source}{n}", location=lead), f"{source}-a{n}") for n in range(count)]


def deleting(pairings: list[Pairing], count: int) -> list[Action]:
    return [Delete(p, GONE) for p in pairings[:count]]


def read(*sources: str, emptied: tuple[str, ...] = ()) -> CalendarView:
    return CalendarView(read=set(sources), emptied=set(emptied))


# --- the mass-delete share --------------------------------------------------------------------


def test_deleting_more_than_the_share_of_a_source_over_the_minimum_is_held(guards: Guards) -> None:
    ada = pairings_of("ada", 11)
    create: Action = Create(want("new"))
    kept, stopped = guards.rails([*deleting(ada, 6), create], ada, read("ada"))  # 6 of 11: over half
    assert kept == [create]
    assert set(stopped) == {"ada"} and "would delete 6 of 11 activities" in stopped["ada"]
    assert "6 deletion(s) held" in stopped["ada"] and "ada" in guards.state.rails()


def test_deleting_up_to_the_share_passes(guards: Guards) -> None:
    ada = pairings_of("ada", 12)
    actions = deleting(ada, 6)  # exactly half
    assert guards.rails(actions, ada, read("ada")) == (actions, {})
    assert guards.state.rails() == {}


def test_the_share_is_the_configured_one(guards: Guards) -> None:
    guards.config = config(mass_delete_share=0.2)
    ada = pairings_of("ada", 11)
    kept, stopped = guards.rails(deleting(ada, 3), ada, read("ada"))  # 27 %
    assert kept == [] and set(stopped) == {"ada"}
    guards.state.clear_rail("ada")
    assert guards.rails(deleting(ada, 2), ada, read("ada")) == (deleting(ada, 2), {})  # 18 %


def test_a_source_at_or_under_the_minimum_may_delete_everything(guards: Guards) -> None:
    ada = pairings_of("ada", 10)
    assert guards.rails(deleting(ada, 10), ada, read("ada")) == (deleting(ada, 10), {})
    guards.config = config(mass_delete_minimum=3)
    kept, stopped = guards.rails(deleting(ada, 6), ada, read("ada"))
    assert kept == [] and set(stopped) == {"ada"}


def test_the_share_is_counted_per_source(guards: Guards) -> None:
    ada, bob = pairings_of("ada", 11), pairings_of("bob", 11)
    actions = [*deleting(ada, 6), *deleting(bob, 5)]
    kept, stopped = guards.rails(actions, [*ada, *bob], read("ada", "bob"))
    assert kept == deleting(bob, 5) and set(stopped) == {"ada"}


# --- an emptied calendar ------------------------------------------------------------------------


def test_a_calendar_that_came_back_empty_holds_even_a_few_deletions(guards: Guards) -> None:
    ada = pairings_of("ada", 3)
    kept, stopped = guards.rails(deleting(ada, 3), ada, read("ada", emptied=("ada",)))
    assert kept == [] and "the calendar came back empty" in stopped["ada"]


# --- overrides ---------------------------------------------------------------------------------------


def test_force_and_allow_mass_delete_let_the_deletions_through(guards: Guards) -> None:
    ada, free = pairings_of("ada", 11), pairings_of("free", 11)
    assert guards.rails(deleting(ada, 11), ada, read("ada", emptied=("ada",)), force=True) == (deleting(ada, 11), {})
    assert guards.rails(deleting(free, 11), free, read("free", emptied=("free",))) == (deleting(free, 11), {})
    assert guards.state.rails() == {}


# --- held across runs --------------------------------------------------------------------------------


def test_a_stop_holds_on_later_runs_until_forced(guards: Guards) -> None:
    ada = pairings_of("ada", 11)
    guards.rails(deleting(ada, 11), ada, read("ada", emptied=("ada",)))
    first = guards.state.rails()["ada"]
    kept, stopped = guards.rails(deleting(ada, 1), ada, read("ada"))  # one deletion, the calendar not empty
    assert kept == [] and stopped["ada"].startswith(first)
    assert guards.rails(deleting(ada, 1), ada, read("ada"), dry_run=True, force=True)[0] == deleting(ada, 1)
    assert guards.state.rails() == {"ada": first}  # a dry run decides nothing
    assert guards.rails(deleting(ada, 1), ada, read("ada"), force=True) == (deleting(ada, 1), {})
    assert guards.state.rails() == {}


def test_a_stop_clears_once_its_source_has_nothing_to_delete(guards: Guards) -> None:
    ada = pairings_of("ada", 11)
    guards.rails(deleting(ada, 11), ada, read("ada", emptied=("ada",)))
    assert guards.rails([], ada, read()) == ([], {})  # not read this cycle: nothing known, the stop stays
    assert "ada" in guards.state.rails()
    assert guards.rails([], ada, read("ada"), dry_run=True) == ([], {})
    assert "ada" in guards.state.rails()
    assert guards.rails([], ada, read("ada")) == ([], {})  # the calendar is back
    assert guards.state.rails() == {}


def test_a_dry_run_shows_the_stop_and_records_nothing(guards: Guards) -> None:
    ada = pairings_of("ada", 11)
    kept, stopped = guards.rails(deleting(ada, 11), ada, read("ada", emptied=("ada",)), dry_run=True)
    assert kept == [] and "ada" in stopped  # shown; the next real run, seeing the empty calendar, records it
    assert guards.state.rails() == {}


# --- the journal: a create whose answer was lost ---------------------------------------------------


def lost_create(guards: Guards, source: str = "ada", uid: str = "item", *, role: bool = False) -> tuple[str, Any]:
    """A create intent of ``source`` left pending, as if the answer to its POST was lost
    (``role``: assigned to a role, so it names no employee)."""
    desired = want(uid)
    line = provenance(source, desired.id)
    ada = str(guards.box.world.api_user.id)
    payload = {
        "source": source,
        "due": iso(DUE),
        "activity_type_id": MEETING,
        "employee_id": None if role else ada,
        "provenance": line,
        "desired": {"fields": desired.fields.seen(), "lead": vars(desired.lead.location), "original_due": iso(DUE)},
    }
    guards.state.intend("create", desired.id, payload)
    return line, desired.id


def kizen_requests(guards: Guards) -> list[tuple[str, str, dict[str, str]]]:
    """The Kizen requests the guards make from now on: method, path and query."""
    sent: list[tuple[str, str, dict[str, str]]] = []
    guards.safety.kizen.http.event_hooks["request"].append(
        lambda r: sent.append((r.method, r.url.path, dict(r.url.params)))
    )
    return sent


def test_a_lost_create_is_found_by_its_provenance_line(guards: Guards) -> None:
    """Where it was sent first: its employee's activities at exactly its due time, one list and
    one read of the candidate; the pairing is the create's, the intent done with the activity."""
    line, identity = lost_create(guards)
    guards.box.user().create("meeting", DUE, note="Grace's own", assignee="grace@example.com")
    guards.box.user().create("call", DUE, note="Another type")
    taken = guards.box.user().create("meeting", DUE, note="Paired already")
    guards.state.save_pairing(paired(want("another"), taken["id"]))
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", line), original_due=DUE)
    sent = kizen_requests(guards)
    assert guards.safety.settle_journal() == set()
    pairing = guards.state.pairing(identity)
    assert pairing is not None and pairing.activity_id == made["id"] and pairing.activity_type_id == MEETING
    assert (pairing.original_due, pairing.due, pairing.changes, pairing.changed_at) == (DUE, DUE, 1, NOW)
    assert guards.state.pending_intents() == []
    assert guards.journal("create") == [("done", {"activity_id": made["id"], "found": True})]
    (method, path, query), read = sent[0], sent[1:]
    assert (method, path) == ("GET", "/api/activities/scheduled-activity")
    assert query["employee_ids"] == str(guards.box.world.api_user.id) and query["completed"] == "false"
    assert (query["from_date"], query["to_date"]) == (iso(DUE - SLACK), iso(DUE + SLACK))
    assert read == [("GET", f"/api/activities/scheduled-activity/{made['id']}", {})]  # no other candidate read


def test_a_lost_create_assigned_to_a_role_is_looked_for_among_everyones_activities_at_its_time(
    guards: Guards,
) -> None:
    line, identity = lost_create(guards, role=True)
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", line), original_due=DUE)
    sent = kizen_requests(guards)
    assert guards.safety.settle_journal() == set()
    pairing = guards.state.pairing(identity)
    assert pairing is not None and pairing.activity_id == made["id"]
    (method, path, query), read = sent[0], sent[1:]
    assert (method, path) == ("GET", "/api/activities/scheduled-activity") and "employee_ids" not in query
    assert (query["from_date"], query["to_date"]) == (iso(DUE - SLACK), iso(DUE + SLACK))
    assert read == [("GET", f"/api/activities/scheduled-activity/{made['id']}", {})]  # found by the first look


@pytest.mark.parametrize("moved", [LATER, NOW - timedelta(hours=12)], ids=["later", "into-the-lookback"])
def test_a_lost_create_moved_in_kizen_before_this_run_is_found_and_paired_with_both_times(
    guards: Guards, moved: datetime
) -> None:
    line, identity = lost_create(guards)
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", line), original_due=DUE)
    guards.box.user().reschedule(made["id"], moved)  # not where it was sent any more: the wider look finds it
    assert guards.safety.settle_journal() == set()
    pairing = guards.state.pairing(identity)
    assert pairing is not None and pairing.activity_id == made["id"]
    assert (pairing.original_due, pairing.due) == (DUE, moved)


def test_a_look_alike_activity_without_the_line_is_not_taken_for_the_lost_create(guards: Guards) -> None:
    line, identity = lost_create(guards)
    other = f"{provenance('ada', type(identity)('another'))}"
    guards.box.user().create("meeting", DUE, note="Intro call")  # same time, type and employee: made by hand
    guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", other))  # another occurrence's
    assert guards.safety.settle_journal() == set()
    assert guards.state.pairing(identity) is None  # abandoned: the create is sent again
    assert guards.state.pending_intents() == []
    assert guards.journal("create") == [("abandoned", {"found": False})]


# --- the edges mutation testing found -----------------------------------------------------------------

FORCE = "run with --force-delete if that is right"


def test_a_stop_names_when_it_fired_and_how_to_lift_it(guards: Guards) -> None:
    ada = pairings_of("ada", 11)
    _, stopped = guards.rails(deleting(ada, 11), ada, read("ada"))
    assert stopped["ada"] == f"would delete 11 of 11 activities (2026-11-22 12:00 UTC); {FORCE}; 11 deletion(s) held"
    _, stopped = guards.rails([], ada, read("ada", emptied=("ada",)))  # still empty, nothing to delete: no count
    assert stopped["ada"] == f"would delete 11 of 11 activities (2026-11-22 12:00 UTC); {FORCE}"


def test_a_single_activity_counts_as_a_share_of_one(guards: Guards) -> None:
    guards.config = config(mass_delete_minimum=0, mass_delete_share=0.6)
    ada = pairings_of("ada", 1)
    kept, stopped = guards.rails(deleting(ada, 1), ada, read("ada"))
    assert kept == [] and set(stopped) == {"ada"}


def test_each_source_is_decided_on_its_own(guards: Guards) -> None:
    ada, bob = pairings_of("ada", 11), pairings_of("bob", 11)
    guards.state.stop("ada", "held before")
    guards.state.stop("bob", "held before")
    assert guards.rails([], [*ada, *bob], read("ada", "bob"), force=True) == ([], {})
    assert guards.state.rails() == {}  # both cleared
    guards.state.stop("ada", "held before")
    kept, stopped = guards.rails(deleting(bob, 11), [*ada, *bob], read("ada", "bob"))
    assert kept == [] and set(stopped) == {"bob"} and set(guards.state.rails()) == {"bob"}


def test_a_stop_of_a_source_removed_from_the_config_holds_its_deletions(guards: Guards) -> None:
    gone = pairings_of("old", 3)
    guards.state.stop("old", "held before")
    kept, stopped = guards.rails(deleting(gone, 3), gone, read())
    assert kept == [] and stopped == {"old": "held before; 3 deletion(s) held"}


def test_a_lost_create_completed_in_kizen_meanwhile_is_found(guards: Guards) -> None:
    line, identity = lost_create(guards)
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", line) + "\n")
    guards.box.user().complete(made["id"])
    assert guards.safety.settle_journal() == set()
    pairing = guards.state.pairing(identity)
    assert pairing is not None and pairing.activity_id == made["id"]


def test_a_lost_create_is_found_behind_an_activity_already_paired_at_the_same_time(guards: Guards) -> None:
    line, identity = lost_create(guards)
    guards.box.user().create("call", DUE, note="A call at the same time")  # another type
    taken = guards.box.user().create("meeting", DUE, note="Another call")
    guards.state.save_pairing(paired(want("another"), taken["id"]))
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Intro call", line))
    assert guards.safety.settle_journal() == set()
    pairing = guards.state.pairing(identity)
    assert pairing is not None and pairing.activity_id == made["id"]


# --- the journal: a log whose answer was lost ---------------------------------------------------------


def lost_log(guards: Guards, reason: str | None, uid: str = "item") -> tuple[str, Pairing]:
    """An open pairing whose log intent is left pending, as if the answer to its log was lost
    (``reason`` None: an intent written before intents named one)."""
    made = guards.box.user().create("meeting", DUE, note="Intro call")
    pairing = paired(want(uid), made["id"])
    guards.state.save_pairing(pairing)
    named = {"reason": reason} if reason is not None else {}
    guards.state.intend("log", pairing.id, {"activity_id": made["id"], **named}, made["id"])
    return made["id"], pairing


def test_a_lost_log_that_reached_kizen_is_settled_logged_with_its_reason(guards: Guards) -> None:
    activity_id, pairing = lost_log(guards, "the event happened")
    logged = guards.box.user().complete(activity_id)  # what the lost log did
    assert guards.safety.settle_journal() == set()
    settled = guards.state.pairing(pairing.id)
    assert settled is not None and settled.settled == "logged" and settled.settled_reason == "the event happened"
    assert settled.logged_activity_id == str(logged["id"]) and settled.written_back
    assert guards.journal("log") == [("done", {"logged_activity_id": str(logged["id"]), "found": True})]


def test_a_lost_log_written_before_intents_named_a_reason_is_settled_as_completed_in_the_calendar(
    guards: Guards,
) -> None:
    activity_id, pairing = lost_log(guards, None)
    guards.box.user().complete(activity_id)
    assert guards.safety.settle_journal() == set()
    settled = guards.state.pairing(pairing.id)
    assert settled is not None and settled.settled_reason == "completed in the calendar"


def test_a_cycle_of_some_sources_settles_only_the_intents_of_those_sources(guards: Guards) -> None:
    """A worker's team cycle (``only``): its sources' creates, and the logs of the pairings they
    lead (a log intent names no source); another team's are in flight elsewhere, and an intent
    no source leads is settled by the cycle that keeps what no source leads (``common``)."""
    lost_create(guards, "ada", "ours")
    _, theirs = lost_create(guards, "bob", "theirs")
    lost_log(guards, "the event happened")  # names no source: its pairing's lead is ada's
    orphan = lost_log(guards, "the event happened", "orphan")[1].id
    backends.CURRENT.execute(guards.folder, "DELETE FROM pairings WHERE uid = 'orphan'")
    team = replace(guards.safety, only=frozenset({"ada"}), common=False)
    assert team.settle_journal() == set()
    assert {intent.id_ for intent in guards.state.pending_intents()} == {theirs, orphan}
    assert replace(team, common=True).settle_journal() == set()
    assert [intent.id_ for intent in guards.state.pending_intents()] == [theirs]


def test_a_lost_log_that_never_arrived_is_abandoned_and_the_pairing_stays_open(guards: Guards) -> None:
    _, pairing = lost_log(guards, "completed in the calendar")
    assert guards.safety.settle_journal() == set()
    kept = guards.state.pairing(pairing.id)
    assert kept is not None and kept.settled is None and kept.logged_activity_id is None
    assert guards.journal("log") == [("abandoned", {"logged": False})]  # the plan logs it again


def test_a_lost_log_of_an_activity_gone_from_kizen_is_abandoned(guards: Guards) -> None:
    activity_id, pairing = lost_log(guards, "the event happened")
    guards.box.user().delete(activity_id)
    assert guards.safety.settle_journal() == set()
    kept = guards.state.pairing(pairing.id)
    assert kept is not None and kept.settled is None  # the plan sees the activity gone
    assert guards.journal("log") == [("abandoned", {"logged": False})]


def test_a_lost_log_whose_pairing_is_gone_is_abandoned(guards: Guards) -> None:
    activity_id, pairing = lost_log(guards, "the event happened")
    guards.box.user().complete(activity_id)
    backends.CURRENT.execute(guards.folder, f"DELETE FROM pairings WHERE uid = '{pairing.id.uid}'")
    assert guards.safety.settle_journal() == set()
    assert guards.state.pairing(pairing.id) is None
    assert guards.journal("log") == [("abandoned", {"logged": False})]


# --- a meeting split between teams -------------------------------------------------------------------


def import_intent(guards: Guards, source: str, activity_id: str) -> None:
    """An import of a Kizen activity into ``source``'s calendar, its item's write in flight."""
    record = {"source": source, "collection": f"{source}.ics", "due": iso(DUE)}
    guards.state.intend("import", OccurrenceId(f"kizen-{activity_id}"), record, activity_id)


def test_an_import_is_done_once_paired_and_abandoned_when_its_calendar_read_in_full_lacks_it(guards: Guards) -> None:
    """Only imports are settled here: a create left pending (its source read, its activity id
    none) waits for the journal's own settling, and an import whose calendar was not read waits."""
    lost_create(guards, "ada", "pending-create")
    for name in ("paired", "missing", "unread"):
        import_intent(guards, "bob" if name == "unread" else "ada", f"act-{name}")
    guards.state.save_pairing(replace(paired(want("kizen-act-paired"), "act-paired"), created_by_syncd=False))
    guards.safety.settle_imports(read("ada"))
    assert guards.journal("import") == [
        ("done", {"found": True}), ("abandoned", {"found": False}), ("pending", {})
    ]  # fmt: skip
    assert guards.journal("create") == [("pending", {})]


def test_a_team_cycle_settles_only_its_own_sources_imports(guards: Guards) -> None:
    import_intent(guards, "bob", "act-theirs")
    import_intent(guards, "ada", "act-ours")
    replace(guards.safety, only=frozenset({"ada"}), common=False).settle_imports(read("ada", "bob"))
    assert guards.journal("import") == [("pending", {}), ("abandoned", {"found": False})]


def test_after_the_read_an_imported_item_is_paired_and_counted_and_a_dry_run_pairs_nothing(guards: Guards) -> None:
    made = guards.box.user().create("call", DUE, note="Made in Kizen")
    item = want(imported_uid(str(made["id"])))
    sent = kizen_requests(guards)
    assert guards.safety.pair_found({item.id: item}, [], CalendarView(), NOW, dry_run=True) == (0, {item.id})
    assert sent == [] and guards.state.pairings() == []  # a dry run reads nothing more and writes nothing
    assert guards.safety.pair_found({item.id: item}, [], CalendarView(), NOW, dry_run=False) == (1, {item.id})
    (pairing,) = guards.state.pairings()
    assert (pairing.id, pairing.activity_id, pairing.created_by_syncd) == (item.id, str(made["id"]), False)


def test_an_adoption_kizen_fails_is_a_failed_step_and_nothing_is_created_this_cycle(guards: Guards) -> None:
    """A source not yet rebuilt looks for what a lost state store made; when Kizen fails it,
    creating now could duplicate that, so every identity waits for the next cycle."""
    steps: list[str] = []
    recovery = replace(guards.safety, failed=lambda step, _error: steps.append(step))
    item, other = want("item"), want("other", LATER)
    guards.box.faults.script(Fault.UNAVAILABLE, method="GET", path="/api/", times=50)
    found = recovery.pair_found({item.id: item, other.id: other}, [], CalendarView(), NOW, dry_run=False)
    assert found == (0, {item.id, other.id})
    assert steps == ["looking for the activities made before the state store was lost"]


def test_an_occurrence_whose_line_an_earlier_rebuild_read_is_paired_to_that_activity_alone(guards: Guards) -> None:
    """After the rebuild (ada is rebuilt): an occurrence that shows up with a provenance line the
    rebuild read is paired to its activity, once that activity still carries the line and no
    pairing holds it; every line looked at is forgotten, so none costs a read again."""
    first, back, gone, edited, taken, also = (want(uid, DUE + timedelta(hours=n)) for n, uid in enumerate("abcdef"))
    line = {d.id.uid: provenance("ada", d.id) for d in (first, back, gone, edited, taken, also)}
    made = guards.box.user().create("meeting", DUE, note=with_provenance("Back", line["b"]))
    again = guards.box.user().create("meeting", DUE, note=with_provenance("Also back", line["f"]))
    other = guards.box.user().create("meeting", DUE, note=with_provenance("Edited", provenance("ada", want("x").id)))
    held = guards.box.user().create("meeting", DUE, note=with_provenance("Taken", line["e"]))
    guards.state.save_pairing(paired(want("holder"), held["id"]))
    for uid, activity_id in (
        ("b", made["id"]),
        ("c", "00000000-0000-4000-8000-000000000000"),
        ("d", other["id"]),
        ("e", held["id"]),
        ("f", again["id"]),
    ):
        guards.state.remember("provenance", line[uid], str(activity_id))
    guards.state.mark_rebuilt({"ada"})
    wanted = {d.id: d for d in (first, back, gone, edited, taken, also)}  # "a" first: it has no line to look at
    assert guards.safety.adopt(wanted, [], NOW) == 2
    assert [(p.id.uid, p.activity_id, p.changed_at) for p in guards.state.pairings()] == [
        ("holder", held["id"], None), ("b", made["id"], NOW), ("f", again["id"], NOW)
    ]  # fmt: skip
    assert all(guards.state.lookup("provenance", text) is None for text in line.values())


def test_the_journal_leaves_imports_to_the_read_and_abandons_an_intent_of_a_kind_it_does_not_know(
    guards: Guards,
) -> None:
    """An import is settled once the calendars are read (``settle_imports``); an intent written by
    another syncd, of a kind this one does not know, is abandoned: its action is planned again."""
    import_intent(guards, "ada", "act-import")
    guards.state.intend("write-back", OccurrenceId("item"), {"source": "ada"})
    assert guards.safety.settle_journal() == set()
    assert guards.journal("import") == [("pending", {})]
    assert guards.journal("write-back") == [("abandoned", {"replanned": True})]


def test_only_an_open_meeting_with_copies_in_this_teams_sources_and_anothers_is_named(
    guards: Guards, caplog: pytest.LogCaptureFixture
) -> None:
    """A team's cycle names what it shares with another team; not a meeting of two other teams
    (their cycles name it), nor one already settled (nothing more is done with it), nor one whose
    other copy is in a source no longer configured."""
    sources = [
        {"name": name, "type": "ics", "owner": f"{name}@example.com", "url": f"{name}.ics", "team": team}
        for name, team in (("ada", "a"), ("bob", "b"), ("cy", "c"))
    ]
    teams = Config.model_validate({"kizen": {"sandbox": {}}, "sources": sources})

    def shared(uid: str, *names: str, **changes: Any) -> Pairing:
        return paired(want(uid), locations=tuple(replace(HERE, source=name) for name in names), **changes)

    meetings = [
        shared("theirs", "bob", "cy"),  # passed over first: the meetings after it are still looked at
        shared("ours", "ada", "bob"),
        shared("done", "ada", "cy", settled=Settled.LOGGED),
        shared("alone", "ada"),
        shared("unknown", "ada", "removed"),  # a source gone from the config has no team to split
    ]
    cycle = replace(guards.safety, config=teams, only=frozenset({"ada"}), common=False)
    with caplog.at_level("WARNING", logger="syncd.sync.recovery"):
        cycle.warn_split_meetings(meetings)
        replace(cycle, only=None).warn_split_meetings(meetings)  # a whole cycle splits nothing
    assert [record.getMessage() for record in caplog.records] == [
        "ours  is shared by sources of the teams a, b: sources that share meetings must share a team"
    ]

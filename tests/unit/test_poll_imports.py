"""What the poll makes of an activity created in Kizen, to import into its owner's calendar.

Its note's first line is the event's summary (the type's name when the note is empty), the rest
its description; it lasts as long as the type's calendar duration says (30 minutes when the type
gives none). An activity syncd made (its provenance line) is not imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from syncd.identifiers import provenance, with_provenance
from syncd.model import OccurrenceId
from syncd.sandbox import Sandbox, load_world
from syncd.state import Pairing, Settled
from syncd.sync.actions import Foreign
from syncd.sync.poll import Poll
from syncd.wiring import sandbox_client
from tests.backends import open_state
from tests.unit.test_safety import config

DUE = datetime(2026, 12, 2, 10, tzinfo=UTC)


@pytest.fixture
def kizen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Poll]]:
    """The sandbox, its Follow-up type without a calendar duration, and a poll of it."""
    default = load_world()
    types = tuple(
        t.model_copy(update={"calendar_sync_duration": None}) if t.api_name == "follow_up" else t
        for t in default.activity_types
    )
    with Sandbox(default.model_copy(update={"activity_types": types})) as box:
        state = open_state(tmp_path_factory.mktemp("state"))
        client = sandbox_client(box, sleep=lambda _: None)
        try:
            yield box, Poll(config(), state, client, failed=lambda _step, _error: None)
        finally:
            client.http.close()
            state.close()


def imported(kizen: tuple[Sandbox, Poll], activity_type: str, note: str) -> list[Foreign]:
    box, poll = kizen
    made = box.user().create(activity_type, DUE, note=note)
    poll._consider_import(str(made["id"]), "ada", "https://dav.example/ada/office/")
    return poll.foreign


def test_the_notes_first_line_is_the_summary_and_the_rest_the_description(kizen: tuple[Sandbox, Poll]) -> None:
    (foreign,) = imported(kizen, "call", "Follow up with Charles\nBring the quote\nand the contract\n")
    assert (foreign.summary, foreign.description) == ("Follow up with Charles", "Bring the quote\nand the contract")
    assert (foreign.due, foreign.minutes, foreign.source) == (DUE, 15, "ada")  # the Call type's 15 minutes


def test_an_activity_without_a_note_is_summarised_by_its_type(kizen: tuple[Sandbox, Poll]) -> None:
    (foreign,) = imported(kizen, "meeting", "")
    assert (foreign.summary, foreign.description, foreign.minutes) == ("Meeting", "", 30)


def test_a_type_without_a_calendar_duration_gives_half_an_hour(kizen: tuple[Sandbox, Poll]) -> None:
    (foreign,) = imported(kizen, "follow_up", "Chase the quote")
    assert foreign.minutes == 30 and foreign.summary == "Chase the quote"


def test_an_activity_syncd_made_is_not_imported(kizen: tuple[Sandbox, Poll]) -> None:
    line = provenance("ada", OccurrenceId("call-1"))
    assert imported(kizen, "call", with_provenance("Intro call", line)) == []


def team_requests(poll: Poll) -> list[str]:
    """The paths of the requests the poll's client sends from now on."""
    seen: list[str] = []
    poll.kizen.http.event_hooks["request"].append(lambda request: seen.append(request.url.path))
    return seen


def test_an_owners_employee_id_comes_from_the_team_once(kizen: tuple[Sandbox, Poll]) -> None:
    box, poll = kizen
    sent = team_requests(poll)
    ada = str(box.world.api_user.id)
    assert poll._employee_of("Ada@Example.com") == ada and poll._employee_of("ada@example.com") == ada
    assert sent == ["/api/team"]
    assert poll._employee_of("nobody@example.com") is None and sent == ["/api/team"] * 2


def test_an_owners_employee_id_the_state_remembers_needs_no_request(kizen: tuple[Sandbox, Poll]) -> None:
    _, poll = kizen
    poll.state.remember("employee", "ada@example.com", "e-remembered")
    sent = team_requests(poll)
    assert poll._employee_of("ADA@example.com") == "e-remembered" and sent == []


def test_an_importers_activity_a_pairing_holds_is_not_read_nor_imported(kizen: tuple[Sandbox, Poll]) -> None:
    """Another team's pairing (or a settled one) holds it: the state says so in one query, so the
    importing source's team needs neither every pairing of the business nor a GET for it."""
    box, poll = kizen
    held = box.user().create("call", DUE, note="Paired by another team")
    free = box.user().create("call", DUE, note="Made in Kizen")
    employee = str(held["employee"]["id"])
    poll.state.save_pairing(Pairing(OccurrenceId("bobs-call"), str(held["id"]), "t", DUE, DUE, settled=Settled.LOGGED))
    requests = team_requests(poll)
    poll.activities([], DUE, {employee: ("ada", "https://dav.example/ada/office/")})
    assert [f.activity_id for f in poll.foreign] == [str(free["id"])]
    assert not any(path.endswith(str(held["id"])) for path in requests)

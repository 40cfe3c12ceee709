"""What Kizen is sent for a calendar item's type, assignee and contacts, and the look-ups behind it.

A real state store and the sandbox in-process: each look-up is a request the sandbox answers,
remembered in the state so the next run (a new :class:`Payloads` on the same state) asks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from syncd.config import Config, load
from syncd.errors import ItemError
from syncd.sandbox import Sandbox
from syncd.state import Store, open_store
from syncd.sync.payloads import Payloads
from syncd.wiring import sandbox_client
from tests.plans import want

ADA = "16cfdf6d-5b70-4d9b-bd41-59940ce4897c"
GRACE = "f1b39a8d-5f73-48da-a1bd-6316da78fa5e"
ROLE = "82b34792-8738-4bc3-89ba-183fb5ac81f0"
MEETING = "1473d9d0-2ae9-42bd-af7d-93363ab14aeb"
FOLLOW_UP = "ea4379f9-f1d1-4857-b4ea-5e5f36016dc1"
CHARLES = "20e2c5d9-a16e-4dc9-acf0-7cd4d1d8d925"
CHARLES_EMAIL = "charles@customer.example"


@dataclass
class Lookups:
    """A run's Payloads over the state, and the Kizen requests made so far (method and path)."""

    config: Config
    state: Store
    box: Sandbox
    sent: list[str]

    def payloads(self) -> Payloads:
        """A new run's payloads: nothing in memory, only what the state remembers."""
        client = sandbox_client(self.box)
        client.http.event_hooks["request"].append(lambda r: self.sent.append(f"{r.method} {r.url.path}"))
        return Payloads(self.config, self.state, client)


@pytest.fixture
def lookups(tmp_path: Path) -> Iterator[Lookups]:
    path = tmp_path / "config.toml"
    path.write_text(
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n[sync]\nstate = "state.sqlite"\n'
        '[[sources]]\nname = "ada"\ntype = "ics"\nowner = "ada@example.com"\nurl = "ada.ics"\n'
    )
    config = load(path)
    state = open_store(config.sync.state)
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        try:
            yield Lookups(config, state, box, [])
        finally:
            state.close()


def typed(activity_type: str) -> Any:
    return replace(want("call-1"), activity_type_id=activity_type)


def failure(call: Any, *args: Any) -> ItemError:
    with pytest.raises(ItemError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    "given", [MEETING, MEETING.upper(), "Meeting", "MEETING", "meeting", "Follow-up", "FOLLOW_UP", "follow_up"]
)
def test_an_activity_type_is_found_by_id_name_or_api_name_in_any_case(lookups: Lookups, given: str) -> None:
    expected = FOLLOW_UP if given.lower().startswith("follow") else MEETING
    assert lookups.payloads().type_id(typed(given)) == expected


def test_the_activity_types_are_read_once_per_run(lookups: Lookups) -> None:
    payloads = lookups.payloads()
    for given in ("meeting", "Call", FOLLOW_UP):
        payloads.type_id(typed(given))
    assert lookups.sent == ["GET /api/activities"]


def test_an_unknown_activity_type_fails_the_item_naming_its_source_and_uid(lookups: Lookups) -> None:
    error = failure(lookups.payloads().type_id, typed("Demo"))
    assert (error.source, error.uid, error.reason) == ("ada", "call-1", "no activity type 'Demo' in Kizen")


def test_the_owner_is_the_assignee_by_default_and_the_team_is_read_once_then_remembered(lookups: Lookups) -> None:
    assert lookups.payloads().assignee(want("one")) == {"employee_id": UUID(ADA)}
    assert lookups.sent == ["GET /api/team"]
    grace = want("two", assignee={"kind": "email", "value": "Grace@Example.com"})
    assert lookups.payloads().assignee(grace) == {"employee_id": UUID(GRACE)}
    assert lookups.sent == ["GET /api/team"]  # a later run finds every employee in the state


def test_an_assignee_who_is_not_an_employee_fails_the_item_with_the_likely_cause(lookups: Lookups) -> None:
    stranger = want("one", assignee={"kind": "email", "value": "nobody@example.com"})
    error = failure(lookups.payloads().assignee, stranger)
    assert (error.source, error.uid) == ("ada", "one")
    assert error.reason == (
        "nobody@example.com is not a Kizen employee the API user can see"
        " (does the key have the all-team-members permission?)"
    )


def test_a_role_is_assigned_by_its_id_with_no_look_up(lookups: Lookups) -> None:
    by_role = want("one", assignee={"kind": "role", "value": ROLE})
    assert lookups.payloads().assignee(by_role) == {"role_id": UUID(ROLE)}
    assert lookups.sent == []


def test_a_role_given_by_name_fails_the_item_asking_for_its_id(lookups: Lookups) -> None:
    by_name = want("one", assignee={"kind": "role", "value": "Account Executives"})
    error = failure(lookups.payloads().assignee, by_name)
    assert (error.source, error.uid, error.reason) == ("ada", "one", "give role 'Account Executives' by its id")


def test_contacts_are_linked_by_email_in_any_case_and_remembered(lookups: Lookups) -> None:
    item = want("one", contacts=["Charles@Customer.example"])
    (link,) = lookups.payloads().contacts(item)
    assert link.entity.id == UUID(CHARLES) and link.custom_object.name == lookups.config.sync.contacts_object
    asked = list(lookups.sent)
    assert asked and all(a.startswith("GET /api/records/client_client/lookup") for a in asked)
    again = lookups.payloads()
    assert [link.entity.id for link in again.contacts(want("two", contacts=[CHARLES_EMAIL.upper()]))] == [UUID(CHARLES)]
    assert lookups.sent == asked and again.unknown_contacts == 0  # remembered: no second look-up


def test_an_unknown_contact_is_left_off_counted_and_not_looked_up_again(lookups: Lookups) -> None:
    item = want("one", contacts=["stranger@elsewhere.example", CHARLES_EMAIL])
    payloads = lookups.payloads()
    assert [link.entity.id for link in payloads.contacts(item)] == [UUID(CHARLES)]
    assert payloads.unknown_contacts == 1
    asked = list(lookups.sent)
    again = lookups.payloads()
    assert [link.entity.id for link in again.contacts(item)] == [UUID(CHARLES)]
    assert again.unknown_contacts == 1 and lookups.sent == asked  # "not in Kizen" is remembered too
    again.contacts(want("two", contacts=["other@elsewhere.example"]))
    assert again.unknown_contacts == 2  # the run's count, over all its items


def test_unknown_contacts_fail_the_item_when_its_mapping_says_so(lookups: Lookups) -> None:
    item = want("one", contacts=["stranger@elsewhere.example", "other@elsewhere.example"], unknown_contacts="fail")
    error = failure(lookups.payloads().contacts, item)
    assert (error.source, error.uid) == ("ada", "one")
    assert error.reason == "unknown contacts: stranger@elsewhere.example, other@elsewhere.example"


def test_the_body_carries_assignee_notifications_and_contacts(lookups: Lookups) -> None:
    item = want(
        "one",
        contacts=[CHARLES_EMAIL],
        notifications=[{"type": "email", "time_amount": 15, "time_unit": "minute"}],
    )
    body = lookups.payloads().body(item)
    assert body["employee_id"] == UUID(ADA) and [n.time_amount for n in body["notifications"]] == [15]
    assert [link.entity.id for link in body["associated_entities"]] == [UUID(CHARLES)]

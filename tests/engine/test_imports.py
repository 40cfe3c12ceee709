"""Imports from Kizen interrupted or failed half-way, against a real Radicale: never a second activity.

An imported calendar item's UID is ``<activity id>@kizen.syncd``: it belongs to that activity,
whatever the state store remembers of it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import icalendar
import pytest

from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.errors import ItemError, PreconditionFailed, SourceError
from syncd.state import Pairing
from syncd.sync.actions import FIELDS
from syncd.sync.report import Report
from tests import backends
from tests.backends import lose_state, open_state
from tests.engine.test_caldav_cycle import EVENT, NOW, Setup, radicale, setup, xandikos  # noqa: F401 (the fixtures)


class Killed(BaseException):
    """Stands for the process being killed: nothing in syncd catches it."""


def calendar_uids(setup: Setup) -> list[str]:
    """The UID of every object in the collection, as the server holds it."""
    body = '<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'  # Xandikos wants a body (415 without)
    listing = setup.http.request(
        "PROPFIND", f"{setup.home}desk/", content=body, headers={"Depth": "1", "Content-Type": "application/xml"}
    )
    hrefs = sorted(set(re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</", listing.text)))
    uids = []
    for href in hrefs:
        for event in icalendar.Calendar.from_ical(setup.http.get(href).text).walk("VEVENT"):
            uids.append(str(event["UID"]))
    return sorted(uids)


def activities(setup: Setup) -> int:
    return setup.box.service.list_scheduled({}, 0, 1000)[0]


def made_in_kizen(setup: Setup) -> str:
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    made = setup.box.user().create("call", datetime(2026, 12, 2, 10, tzinfo=UTC), note="Follow up with Charles")
    return str(made["id"])


def pending(setup: Setup) -> list[str]:
    state = open_state(setup.folder)
    try:
        return [intent.kind for intent in state.pending_intents()]
    finally:
        state.close()


def test_an_import_killed_before_its_pairing_is_saved_is_paired_next_run(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = made_in_kizen(setup)
    store = backends.CURRENT.store_class()
    save = store.save_pairing

    def killed_on_import(self: Any, pairing: Pairing) -> None:
        if pairing.activity_id == made:
            raise Killed
        save(self, pairing)

    monkeypatch.setattr(store, "save_pairing", killed_on_import)
    with pytest.raises(Killed):
        setup.run()
    monkeypatch.undo()
    assert calendar_uids(setup) == sorted(["call-1", f"{made}@kizen.syncd"])
    report = setup.run()
    assert report.clean and report.actions == [] and activities(setup) == 2  # no second activity, no 412
    assert pending(setup) == [] and setup.run().actions == []
    setup.box.user().reschedule(made, datetime(2026, 12, 2, 15, tzinfo=UTC))
    assert setup.run().counts() == {"MoveInCalendar": 1}  # paired as an import: Kizen's move flows


@pytest.mark.parametrize("arrived", [True, False], ids=["answer lost", "never arrived"])
def test_a_calendar_write_failing_during_an_import_is_settled_without_duplicate(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, arrived: bool
) -> None:
    made = made_in_kizen(setup)
    create = CalDAVSource.create

    def fails(self: CalDAVSource, collection_url: str, uid: str, ical: str) -> object:
        if arrived:
            create(self, collection_url, uid, ical)
        raise SourceError(self.name, "the connection was dropped")

    monkeypatch.setattr(CalDAVSource, "create", fails)
    first: Report | None = None
    try:
        first = setup.run()
    except SourceError:
        pass  # however the run reports it, the intent is left
    assert first is None or not first.clean
    monkeypatch.undo()
    assert pending(setup) == ["import"]
    report = setup.run()
    assert report.clean and report.counts() == ({} if arrived else {"Import": 1})
    assert calendar_uids(setup) == sorted(["call-1", f"{made}@kizen.syncd"]) and activities(setup) == 2
    assert pending(setup) == [] and setup.run().actions == []


def test_an_imported_item_is_paired_again_after_a_lost_state_store(setup: Setup) -> None:
    made = made_in_kizen(setup)
    assert setup.run().counts() == {"Import": 1}
    lose_state(setup.folder)
    report = setup.run()
    assert report.clean and "Create" not in report.counts() and "Import" not in report.counts()
    assert activities(setup) == 2 and calendar_uids(setup) == sorted(["call-1", f"{made}@kizen.syncd"])
    assert setup.run().actions == []


def test_an_import_is_journaled_and_paired_as_kizens(setup: Setup) -> None:
    made = made_in_kizen(setup)
    assert setup.run().counts() == {"Import": 1}
    state = open_state(setup.folder)
    try:
        pairing = state.pairing_of(made)
    finally:
        state.close()
    call = setup.box.service.get_scheduled(made)
    assert pairing is not None and pairing.id.uid == f"{made}@kizen.syncd" and not pairing.created_by_syncd
    assert pairing.activity_type_id == call["activity_object"]["id"] and pairing.hands_off == FIELDS
    assert pairing.due == pairing.original_due == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert pairing.changes == 1 and pairing.changed_at == NOW
    assert pairing.lead is not None and pairing.locations == (pairing.lead,) and pairing.lead.source == "ada"
    ((status, uid, activity_id, payload, outcome),) = backends.CURRENT.rows(
        setup.folder, "SELECT status, uid, activity_id, payload, outcome FROM journal WHERE kind = 'import'"
    )
    assert (status, uid, activity_id) == ("done", pairing.id.uid, made)
    assert json.loads(payload) == {
        "source": "ada",
        "collection": pairing.lead.collection,
        "due": "2026-12-02T10:00:00Z",
    }
    assert json.loads(outcome) == {"href": pairing.lead.href}
    written = icalendar.Calendar.from_ical(setup.http.get(pairing.lead.href).text)
    (event,) = written.walk("VEVENT")
    assert str(written["PRODID"]) == "-//syncd//Kizen activity//EN" and event["DTSTAMP"].dt == NOW


def test_an_import_refused_because_its_object_is_there_pairs_that_object(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 412 on the import's PUT (If-None-Match) means an earlier PUT of it arrived: it is ours."""
    made = made_in_kizen(setup)
    create = CalDAVSource.create

    def arrived_before(self: CalDAVSource, collection_url: str, uid: str, ical: str) -> object:
        location, _etag = create(self, collection_url, uid, ical)
        raise PreconditionFailed(location.href)

    monkeypatch.setattr(CalDAVSource, "create", arrived_before)
    report = setup.run()
    monkeypatch.undo()
    assert report.clean and report.counts() == {"Import": 1}
    state = open_state(setup.folder)
    try:
        pairing = state.pairing_of(made)
    finally:
        state.close()
    assert pairing is not None and pairing.lead is not None and pairing.lead.source == "ada"
    assert pairing.lead.href.endswith(".ics") and setup.http.get(pairing.lead.href).status_code == 200
    assert pending(setup) == [] and setup.run().actions == [] and activities(setup) == 2


def test_an_import_the_calendar_refuses_fails_and_is_not_left_pending(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = made_in_kizen(setup)

    def refused(self: CalDAVSource, collection_url: str, uid: str, ical: str) -> object:
        raise ItemError(self.name, uid, "the server refused the object")

    monkeypatch.setattr(CalDAVSource, "create", refused)
    report = setup.run()
    monkeypatch.undo()
    assert [f.identity.uid for f in report.failures] == [f"{made}@kizen.syncd"]
    assert pending(setup) == []
    ((status, outcome),) = backends.CURRENT.rows(
        setup.folder, "SELECT status, outcome FROM journal WHERE kind = 'import'"
    )
    assert (status, json.loads(outcome)) == ("failed", {"error": "the server refused the object"})

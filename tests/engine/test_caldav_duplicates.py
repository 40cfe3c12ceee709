"""A paired item whose UID turns up twice in its CalDAV collection (a real Radicale): left alone.

Radicale refuses a PUT that would repeat a UID, as servers should; other servers and clients
that write the store directly do not. The twin is written into Radicale's folder, which it
serves from the next request on, as such a server would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox
from tests.backends import open_state
from tests.connectors.radicale import Radicale, quiet
from tests.engine.test_caldav_cycle import EVENT, Setup


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    quiet()
    with Radicale(tmp_path_factory.mktemp("radicale")) as running:
        yield running


@pytest.fixture
def setup(tmp_path: Path, server: Radicale) -> Iterator[Setup]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        made = Setup(tmp_path, server, box, loopback=False)
        yield made
        made.http.close()


@pytest.mark.parametrize("moved_to", ["20261204T150000", "20270410T150000"], ids=["in the window", "beyond it"])
def test_a_paired_item_that_gains_a_duplicate_uid_is_left_alone_and_reported(setup: Setup, moved_to: str) -> None:
    setup.put("call-1.ics", EVENT)
    assert setup.run().counts() == {"Create": 1}
    activity = setup.activity("Intro call")
    setup.put("call-1.ics", EVENT.replace("20261203T15", moved_to[:11]))  # the paired item moves ...
    twin = setup.dav.folder / "collection-root" / setup.user / "desk" / "copy.ics"
    twin.write_text(EVENT.replace("SUMMARY:Intro call", "SUMMARY:Someone else's call"))  # ... and gets a twin
    report = setup.run()
    assert report.actions == [] and report.outcomes == []
    assert {q[1].uid for q in report.quarantined} == {"call-1"} and len(report.quarantined) == 2
    assert setup.activity("Intro call") == activity  # not moved, not deleted, nothing else created
    assert len(setup.box.service.list_scheduled({}, 0, 10)[1]) == 1
    state = open_state(setup.folder)
    (pairing,) = state.pairings()
    state.close()
    assert pairing.settled is None  # still paired: it syncs again once the duplicate is gone
    setup.box.user().complete(activity["id"])
    assert setup.run().actions == []  # not even the write-back of a completion, while it is ambiguous
    setup.http.delete(f"/{setup.user}/desk/copy.ics").raise_for_status()
    assert setup.run().counts() == {"WriteBack": 1}

"""Isolation at three levels: one item, one source, one action fails alone and the run goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import syncd.calendar.reading
from syncd.calendar.connectors.ics import IcsSource
from syncd.errors import SourceError
from syncd.kizen import ActivitiesClient, NewScheduledActivity, ScheduledActivity
from syncd.model import Cursor
from syncd.sandbox import Sandbox
from tests.backends import open_state
from tests.connectors.radicale import Radicale
from tests.engine.test_caldav_cycle import EVENT, Setup
from tests.engine.test_cycle import World, by_note, calendar, vevent


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box)


def runs(world: World) -> dict[str, dict[str, Any]]:
    state = open_state(world.folder)
    try:
        return state.last_runs()
    finally:
        state.close()


def failures(world: World) -> dict[str, tuple[str, str]]:
    state = open_state(world.folder)
    try:
        return {f.uid: (f.kind, f.reason) for f in state.failures()}
    finally:
        state.close()


# --- item level ----------------------------------------------------------------------------------


def test_odd_items_are_quarantined_with_their_reasons_and_the_rest_of_the_source_syncs(world: World) -> None:
    world.feed(
        calendar(
            vevent("good", "20261203T140000Z", "Intro call"),
            "BEGIN:VEVENT\nUID:no-start\nSUMMARY:When?\nEND:VEVENT\n",
            vevent("two-starts", "20261204T090000Z", "Twice", "DTSTART:20261204T100000Z"),
            vevent("rules", "20261123T090000Z", "Two rules", "RRULE:FREQ=WEEKLY;COUNT=2", "RRULE:FREQ=DAILY;COUNT=2"),
        )
    )
    report = world.run()
    assert sorted((s, i.uid, r) for s, i, r in report.quarantined) == [
        ("ada", "no-start", "a VEVENT without DTSTART"),
        ("ada", "two-starts", "2 DTSTART properties in one VEVENT (RFC 5545 allows one)"),
    ]
    assert report.counts() == {"Create": 4}  # the good one, and the two rules' 3 distinct slots
    assert not report.failed_sources and runs(world)["ada"]["status"] == "ok"
    assert failures(world)["no-start"] == ("quarantined", "a VEVENT without DTSTART")
    again = world.run()
    assert again.actions == [] and len(again.quarantined) == 2


def test_a_paired_item_that_turns_unreadable_keeps_its_activity_and_is_logged_once(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.feed(calendar(vevent("call", "20261203T140000Z", "Intro call"), vevent("other", "20261204T140000Z", "Other")))
    assert world.run().counts() == {"Create": 2}
    before = by_note(world, "Intro call")
    import syncd.calendar.occurrences as occurrences

    real = occurrences._occurrence

    def breaks(c: Any, ident: Any, *args: Any) -> Any:
        if ident.uid == "call":
            raise RuntimeError("cannot read this one")
        return real(c, ident, *args)

    monkeypatch.setattr(occurrences, "_occurrence", breaks)
    world.feed(calendar(vevent("call", "20261205T140000Z", "Intro call"), vevent("other", "20261206T140000Z", "Other")))
    caplog.set_level(logging.DEBUG)
    report = world.run()
    assert report.counts() == {"Update": 1}  # "other" moved; "call" is neither moved nor deleted
    assert [(i.uid, r) for _, i, r in report.quarantined] == [
        ("call", "cannot be expanded: RuntimeError: cannot read this one")
    ]
    assert by_note(world, "Intro call") == before
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["source ada, UID call: cannot be expanded: RuntimeError: cannot read this one"]


def test_an_item_whose_mapping_raises_is_quarantined_and_the_others_are_mapped(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = syncd.calendar.reading.apply_rules

    def breaks(occurrence: Any, *args: Any) -> Any:
        if occurrence.summary == "Odd":
            raise KeyError("attendee")
        return real(occurrence, *args)

    monkeypatch.setattr(syncd.calendar.reading, "apply_rules", breaks)
    world.feed(calendar(vevent("a", "20261203T140000Z", "Fine"), vevent("odd", "20261204T140000Z", "Odd")))
    caplog.set_level(logging.DEBUG)
    report = world.run()
    assert report.counts() == {"Create": 1} and report.clean
    assert [(s, i.uid, r) for s, i, r in report.quarantined] == [
        ("ada", "odd", "cannot be mapped: KeyError: 'attendee'")
    ]
    assert failures(world)["odd"] == ("quarantined", "cannot be mapped: KeyError: 'attendee'")
    traced = [r for r in caplog.records if r.exc_info]
    assert [r.levelno for r in traced] == [logging.DEBUG]


# --- source level --------------------------------------------------------------------------------


class Broken(IcsSource):
    """A feed whose reading fails in a way nobody foresaw."""

    def changes(self, collection_url: str, since: Cursor, known: object = None) -> Any:
        raise KeyError("etag")


def test_an_unforeseen_exception_in_one_source_fails_that_source_alone(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.feed(calendar(vevent("a", "20261203T140000Z", "Ada's call")), name="ada")
    world.feed(calendar(vevent("g", "20261203T150000Z", "Grace's call")), name="grace")
    caplog.set_level(logging.DEBUG)
    report = world.run(connectors={"grace": Broken("grace", str(world.feeds["grace"]))})
    assert report.failed_sources == {"grace": "cannot be read: KeyError: 'etag'"}
    assert report.counts() == {"Create": 1} and by_note(world, "Ada's call")
    finished = runs(world)
    assert (finished["ada"]["status"], finished["grace"]["status"]) == ("ok", "failed")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "source grace: cannot be read: KeyError: 'etag'"
    ]
    assert world.run().counts() == {"Create": 1}  # read again next run


# --- action level ----------------------------------------------------------------------------------


def raising_for(note: str, error: Exception) -> Callable[..., ScheduledActivity]:
    real = ActivitiesClient.create

    def create(self: ActivitiesClient, activity: NewScheduledActivity) -> ScheduledActivity:
        if activity.note.startswith(note):
            raise error
        return real(self, activity)

    return create


def test_an_unforeseen_exception_in_one_action_fails_that_item_alone_and_the_run_finishes(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.feed(calendar(*(vevent(uid, f"2026120{n}T140000Z", uid.title()) for n, uid in enumerate("abc", 3))))
    monkeypatch.setattr(ActivitiesClient, "create", raising_for("B", RuntimeError("the client broke")))
    caplog.set_level(logging.DEBUG)
    report = world.run()
    assert report.counts() == {"Create": 2}
    assert [(o.identity.uid, o.detail) for o in report.failures] == [("b", "RuntimeError: the client broke")]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["create b failed: RuntimeError: the client broke"]
    assert [r.levelno for r in caplog.records if r.exc_info] == [logging.DEBUG]
    finished = runs(world)["ada"]
    assert finished["status"] != "running" and finished["errors"] == ["b : RuntimeError: the client broke"]
    assert failures(world)["b"] == ("failed", "RuntimeError: the client broke")
    monkeypatch.undo()
    assert world.run().counts() == {"Create": 1}
    assert sorted(a["note"].split("\n")[0] for a in world.activities()) == ["A", "B", "C"]


def test_a_source_error_in_one_action_fails_that_item_alone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.feed(calendar(vevent("a", "20261203T140000Z", "A"), vevent("b", "20261204T140000Z", "B")))
    monkeypatch.setattr(ActivitiesClient, "create", raising_for("A", SourceError("ada", "the connection dropped")))
    report = world.run()
    assert report.counts() == {"Create": 1}
    assert [(o.identity.uid, o.detail) for o in report.failures] == [("a", "source 'ada': the connection dropped")]
    assert runs(world)["ada"]["status"] != "running"


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    from tests.connectors.radicale import quiet

    quiet()
    with Radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


def test_a_caldav_5xx_during_one_write_back_fails_that_item_alone(
    tmp_path: Path, radicale: Radicale, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        setup = Setup(tmp_path, radicale, box, loopback=False)
        setup.put("call-1.ics", EVENT)
        setup.put("call-2.ics", EVENT.replace("UID:call-1", "UID:call-2").replace("Intro call", "Second call"))
        assert setup.run().counts() == {"Create": 2}
        for note in ("Intro call", "Second call"):
            box.user().complete(setup.activity(note)["id"])
        app = radicale._app

        def unavailable_for_call_2(environ: dict[str, Any], start_response: Any) -> Any:
            if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].endswith("/call-2.ics"):
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"try later"]
            return app(environ, start_response)

        monkeypatch.setattr(radicale, "_app", unavailable_for_call_2)
        report = setup.run()
        assert report.counts() == {"WriteBack": 1}
        (failed,) = report.failures
        assert failed.identity.uid == "call-2" and "HTTP 503" in failed.detail
        assert str(setup.get("call-1.ics").walk("VEVENT")[0]["SUMMARY"]) == "✓ Intro call"
        state = open_state(tmp_path)
        try:
            assert state.last_runs()["ada"]["status"] != "running"
        finally:
            state.close()
        monkeypatch.undo()
        assert setup.run().counts() == {"WriteBack": 1}  # retried, and done
        assert str(setup.get("call-2.ics").walk("VEVENT")[0]["SUMMARY"]) == "✓ Second call"
        setup.http.close()

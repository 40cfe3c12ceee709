"""Remembered expansions: an unchanged calendar object is not parsed again, and nothing changes for it.

Over the memory connector and the sandbox, with the state store a real SQLite file. Random
histories make edits (single events, weekly and daily series with overrides and EXDATEs, to-dos,
unreadable objects, the same UID in two objects), moves the clock by minutes to days, and changes
the window's length; at every sync, what the calendars are read as (the occurrences, what is gone,
quarantined, held, skipped and capped, the Desired set) and the plan are compared with a copy of
the state whose remembered expansions were emptied.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.calendar.connectors.memory import MemorySource
from syncd.calendar.mapping import load_rules
from syncd.calendar.reading import CalendarView, desire, read_sources
from syncd.calendar.remembered import _occurrence
from syncd.config import load
from syncd.model import Location, Occurrence, OccurrenceId
from syncd.sandbox import Sandbox
from syncd.state import StateStore
from tests.cycles import run_cycle

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
COLLECTION = "memory://ada/desk/"
ROOT = Path(__file__).resolve().parents[2]


def config_text(state: str, horizon: int) -> str:
    return (
        '[kizen.sandbox]\ndata = "unused.sqlite"\n'
        f'[sync]\nstate = "{state}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        f'internal_domains = ["example.com"]\nhorizon_days = {horizon}\nlookback_days = 1\n'
        '[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "https://dav.invalid/ada/"\n'
    )


def vcalendar(*components: str) -> str:
    return (
        "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//remembered//EN", *components, "END:VCALENDAR"])
        + "\r\n"
    )


def stamp(when: datetime) -> str:
    return f"{when:%Y%m%dT%H%M%SZ}"


def vevent(uid: str, start: datetime, summary: str, *extra: str) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART:{stamp(start)}", "DURATION:PT30M"]
    return "\r\n".join([*lines, f"SUMMARY:{summary}", "ORGANIZER:mailto:ada@example.com", *extra, "END:VEVENT"])


def vtodo(uid: str, due: datetime, summary: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VTODO",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"DUE:{stamp(due)}",
            f"SUMMARY:{summary}",
            "END:VTODO",
        ]
    )


def view_of(view: CalendarView) -> dict[str, Any]:
    """What a read found, in a form to compare (lists sorted: their order is the reading's)."""
    return {
        "occurrences": {i: sorted(c, key=repr) for i, c in view.occurrences.items()},
        "gone": view.gone,
        "quarantined": sorted(view.quarantined, key=repr),
        "held": view.held,
        "skipped": sorted(view.skipped, key=repr),
        "capped": sorted(view.capped, key=repr),
        "read": view.read,
        "failed": view.failed,
    }


class History:
    """A calendar, a clock and a state file, edited and synced as a drawn history says."""

    def __init__(self, folder: Path, box: Sandbox, data: st.DataObject) -> None:
        self.folder, self.box, self.data = folder, box, data
        self.calendar = MemorySource("ada", (COLLECTION,))
        self.now = NOW
        self.horizon = 60
        self.counter = 0
        self._write_configs()

    def _write_configs(self) -> None:
        (self.folder / "config.toml").write_text(config_text("state.sqlite", self.horizon))
        (self.folder / "reference.toml").write_text(config_text("reference.sqlite", self.horizon))

    def _put(self, href: str, text: str) -> None:
        self.calendar.put(COLLECTION, href, text)

    def _hrefs(self, *prefixes: str) -> list[str]:
        return sorted(h for h in self.calendar._objects[COLLECTION] if h.startswith(prefixes or ("",)))

    def _when(self, hours: int) -> datetime:
        # at 17 past the hour: the clock (ticks of whole minutes from 12:00) never puts a window's
        # bound on one, so what a sync remembers holds for a read at the same time
        return self.now.replace(minute=17, second=0, microsecond=0) + timedelta(hours=hours)

    def edit(self) -> None:
        """One random edit of the calendar."""
        kinds = ["event", "event", "series", "todo", "broken"]
        kinds += ["duplicate"] if self._hrefs("ev") else []
        kinds += ["move", "move", "delete"] if self._hrefs("ev", "series") else []
        kind = self.data.draw(st.sampled_from(kinds))
        self.counter += 1
        if kind == "event":
            hours = self.data.draw(st.integers(-60, 24 * 66))
            self._put(f"ev{self.counter}.ics", vcalendar(vevent(f"ev{self.counter}", self._when(hours), "Call")))
        elif kind == "series":
            self._series()
        elif kind == "todo":
            hours = self.data.draw(st.integers(-30, 24 * 66))
            self._put(f"todo{self.counter}.ics", vcalendar(vtodo(f"todo{self.counter}", self._when(hours), "Task")))
        elif kind == "broken":
            self._broken(self.data.draw(st.sampled_from(["no DTSTART", "not iCalendar", "unknown zone"])))
        elif kind == "duplicate":  # the same UID in a second object: both are quarantined until one goes
            href = self.data.draw(st.sampled_from(self._hrefs("ev")))
            self._put(f"copy-{href}", self.calendar.text(COLLECTION, href).replace("SUMMARY:", "SUMMARY:Copy "))
        elif kind == "move":
            self._move(self.data.draw(st.sampled_from(self._hrefs("ev", "series"))))
        else:
            self.calendar.remove(COLLECTION, self.data.draw(st.sampled_from(self._hrefs("ev", "series"))))

    def _series(self) -> None:
        uid, start = f"series{self.counter}", self._when(self.data.draw(st.integers(-24 * 20, 24 * 66)))
        freq = self.data.draw(st.sampled_from(["WEEKLY", "DAILY"]))
        count = self.data.draw(st.sampled_from(["", ";COUNT=4", ";COUNT=12"]))
        step = timedelta(days=7 if freq == "WEEKLY" else 1)
        extra = [f"RRULE:FREQ={freq}{count}"]
        extra += [f"EXDATE:{stamp(start + step)}"] if self.data.draw(st.booleans()) else []
        components = [vevent(uid, start, "Review", *extra)]
        moved = self.data.draw(st.sampled_from([None, -30, 5, 24 * 70]))
        if moved is not None:  # the third slot moved
            slot = start + 2 * step
            components.append(vevent(uid, slot + timedelta(hours=moved), "Moved", f"RECURRENCE-ID:{stamp(slot)}"))
        self._put(f"{uid}.ics", vcalendar(*components))

    def _broken(self, kind: str) -> None:
        uid = f"broken{self.counter}"
        if kind == "no DTSTART":
            text = vcalendar(f"BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:No start\r\nEND:VEVENT")
        elif kind == "not iCalendar":
            text = "this is not a calendar\r\n"
        else:
            text = vcalendar(
                f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART;TZID=Nowhere/Else:{self._when(5):%Y%m%dT%H%M%S}\r\n"
                "SUMMARY:Somewhere\r\nEND:VEVENT"
            )
        self._put(f"{uid}.ics", text)

    def _move(self, href: str) -> None:
        calendar = icalendar.Calendar.from_ical(self.calendar.text(COLLECTION, href))
        event = next(c for c in calendar.walk("VEVENT") if "RECURRENCE-ID" not in c)
        start = event["DTSTART"].dt + timedelta(hours=self.data.draw(st.sampled_from([-26, -3, 2, 30, 24 * 40])))
        event.pop("DTSTART")
        event.add("DTSTART", start)
        self._put(href, calendar.to_ical().decode())

    def tick(self) -> None:
        self.now += timedelta(minutes=self.data.draw(st.sampled_from([1, 90, 60 * 20, 60 * 24 * 2, 60 * 24 * 6])))
        if self.data.draw(st.integers(0, 3)) == 3:  # now and then the window's length changes
            self.horizon = 90 - self.horizon
            self._write_configs()

    def read(self, name: str) -> tuple[dict[str, Any], int]:
        config = load(self.folder / name)
        state = StateStore(config.sync.state)
        try:
            pairings = {p.id: p for p in state.pairings(open_only=True)}
            view = read_sources(config, state, lambda _source: self.calendar, self.now, pairings.values())
            desired, skips = desire(config, load_rules(list(config.sync.mappings)), view, pairings)
            return {**view_of(view), "desired": desired, "skips": sorted(skips, key=repr)}, view.parsed
        finally:
            state.close()

    def sync(self) -> None:
        """Reads and plans as the state remembers, and with a copy of it whose expansions were
        emptied: the same; then syncs for real (which remembers more)."""
        with (
            sqlite3.connect(self.folder / "state.sqlite") as source,
            sqlite3.connect(self.folder / "reference.sqlite") as copy,
        ):
            source.backup(copy)
        with sqlite3.connect(self.folder / "reference.sqlite") as copy:
            copy.execute("DELETE FROM expansions")
        reference, _ = self.read("reference.toml")
        remembered, _ = self.read("config.toml")
        assert remembered == reference
        connectors: dict[str, Any] = {"ada": self.calendar}
        planned = run_cycle(self.folder / "reference.toml", self.box, self.now, dry_run=True, connectors=connectors)
        report = run_cycle(self.folder / "config.toml", self.box, self.now, connectors=connectors)
        assert report.actions == planned.actions


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_remembered_expansions_read_and_plan_as_a_full_expansion_does(data: st.DataObject) -> None:
    folder = Path(tempfile.mkdtemp(prefix="syncd-remembered-"))
    try:
        with Sandbox() as box:
            history = History(folder, box, data)
            for _ in range(data.draw(st.integers(3, 8), label="objects")):
                history.edit()
            run_cycle(folder / "config.toml", box, history.now, connectors={"ada": history.calendar})
            for _ in range(data.draw(st.integers(2, 6), label="cycles")):
                for _ in range(data.draw(st.integers(0, 2), label="edits")):
                    history.edit()
                history.tick()
                history.sync()
            assert history.read("config.toml")[1] == 0  # a read with nothing changed expands nothing
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- a cycle with no change parses nothing ------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text icalendar is asked to parse, as syncd's expansion asks it."""
    calls: list[str] = []
    parse = icalendar.Calendar.from_ical

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(text if isinstance(text, str) else text.decode())
        return parse(text, *args, **kwargs)

    monkeypatch.setattr(icalendar.Calendar, "from_ical", counting)
    return calls


def test_a_cycle_with_no_change_parses_nothing_and_a_moved_window_only_what_it_passed(
    tmp_path: Path, counted: list[str]
) -> None:
    (tmp_path / "config.toml").write_text(config_text("state.sqlite", 60))
    calendar = MemorySource("ada", (COLLECTION,))
    calendar.put(COLLECTION, "soon.ics", vcalendar(vevent("soon", NOW + timedelta(hours=3), "Soon")))
    calendar.put(COLLECTION, "later.ics", vcalendar(vevent("later", NOW + timedelta(days=20), "Later")))
    weekly = vevent("weekly", NOW + timedelta(days=2), "Weekly", "RRULE:FREQ=WEEKLY")
    calendar.put(COLLECTION, "weekly.ics", vcalendar(weekly))
    calendar.put(COLLECTION, "task.ics", vcalendar(vtodo("task", NOW + timedelta(days=5), "Task")))
    calendar.put(COLLECTION, "broken.ics", "not a calendar\r\n")
    with Sandbox() as box:

        def cycle(now: datetime) -> Any:
            counted.clear()
            return run_cycle(tmp_path / "config.toml", box, now, connectors={"ada": calendar})

        first = cycle(NOW)
        assert first.counts()["Create"] == 12 and len(counted) == 5  # 9 weekly, 1 soon, 1 later, 1 task
        assert [q[1].uid for q in first.quarantined] == ["broken.ics"]
        again = cycle(NOW + timedelta(minutes=5))
        assert again.actions == [] and counted == []
        assert [q[1].uid for q in again.quarantined] == ["broken.ics"]  # still reported, from what is remembered
        # a day on: "soon" left the window (followed once, then remembered too), nothing else moved
        past = cycle(NOW + timedelta(days=1, hours=4))
        assert {text.split("UID:")[1].split("\r\n")[0] for text in counted} == {"soon"}
        assert cycle(NOW + timedelta(days=1, hours=5)).actions == [] and counted == []
        assert past.quarantined == again.quarantined
        # an edit is parsed, the rest is not
        calendar.put(COLLECTION, "later.ics", vcalendar(vevent("later", NOW + timedelta(days=21), "Later")))
        moved = cycle(NOW + timedelta(days=1, hours=6))
        assert moved.counts() == {"Update": 1} and len(counted) == 1 and "UID:later" in counted[0]


def test_a_dry_run_remembers_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(config_text("state.sqlite", 60))
    calendar = MemorySource("ada", (COLLECTION,))
    calendar.put(COLLECTION, "soon.ics", vcalendar(vevent("soon", NOW + timedelta(hours=3), "Soon")))
    with Sandbox() as box:
        run_cycle(tmp_path / "config.toml", box, NOW, connectors={"ada": calendar}, dry_run=True)
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            assert db.execute("SELECT count(*) FROM expansions").fetchone() == (0,)
        run_cycle(tmp_path / "config.toml", box, NOW, connectors={"ada": calendar})
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            assert db.execute("SELECT count(*) FROM expansions").fetchone() == (1,)


def test_every_field_of_an_occurrence_is_remembered() -> None:
    """A field added to Occurrence and not to the remembered form would read back as its default."""
    kept = set(_occurrence(Occurrence(OccurrenceId("u"), Location("ada", COLLECTION, "u.ics"), "VEVENT", NOW)))
    assert kept | {"location"} == {f.name for f in fields(Occurrence)}


def test_a_longer_window_is_expanded_anew(tmp_path: Path) -> None:
    """The window's length shapes every expansion: those remembered for another length are not used."""
    calendar = MemorySource("ada", (COLLECTION,))
    calendar.put(COLLECTION, "far.ics", vcalendar(vevent("far", NOW + timedelta(days=45), "Far")))
    with Sandbox() as box:
        (tmp_path / "config.toml").write_text(config_text("state.sqlite", 30))
        assert run_cycle(tmp_path / "config.toml", box, NOW, connectors={"ada": calendar}).actions == []
        (tmp_path / "config.toml").write_text(config_text("state.sqlite", 60))
        later = run_cycle(tmp_path / "config.toml", box, NOW + timedelta(minutes=1), connectors={"ada": calendar})
        assert later.counts() == {"Create": 1}

"""A state machine of random calendar and Kizen edits, crashes and a lost state store.

Over the memory connector (which keeps the connector contract) and the sandbox. After every clean
sync: each in-window occurrence has exactly one activity (unless its activity was deleted in
Kizen), no two activities claim one occurrence, no logged activity changed, nothing was deleted
that DESIGN does not call for, and a second sync plans nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from syncd.calendar.connectors.memory import MemorySource
from syncd.calendar.occurrences import Window, expand_all
from syncd.config import load
from syncd.identifiers import provenance
from syncd.model import Location, Resource
from syncd.sandbox import Fault, Sandbox
from syncd.sync.report import Report
from tests.backends import Backend, lose_state, open_state, state_exists, state_of
from tests.cycles import run_cycle

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
COLLECTION = "memory://ada/desk/"
ROOT = Path(__file__).resolve().parents[2]


def ics(uid: str, start: datetime, summary: str, rule: str = "") -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//machine//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
    ]
    lines += [
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        "DURATION:PT30M",
        f"SUMMARY:{summary}",
        "ORGANIZER:mailto:ada@example.com",
    ]
    lines += [rule] if rule else []
    return "\r\n".join([*lines, "END:VEVENT", "END:VCALENDAR"]) + "\r\n"


class SyncMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="syncd-machine-"))
        self.box = Sandbox()
        self.calendar = MemorySource("ada", (COLLECTION,))
        (self.folder / "config.toml").write_text(
            '[kizen.sandbox]\ndata = "unused.sqlite"\n'
            f'[sync]\nstate = "{state_of(self.folder)}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\n'
            '[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "https://dav.invalid/ada/"\n'
        )
        self.config = load(self.folder / "config.toml")
        self.counter = 0
        self.deleted_in_kizen: set[str] = set()  # provenance lines whose activity a user deleted
        self.logged: dict[str, dict[str, Any]] = {}  # completed activities as they were
        self.crash_pending = False
        self.synced_once = False

    def teardown(self) -> None:
        if hasattr(self, "box"):
            self.box.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- the calendar ---------------------------------------------------------------------------

    @rule(day=st.integers(1, 50), hour=st.integers(7, 18), weekly=st.integers(0, 4))
    def add_event(self, day: int, hour: int, weekly: int) -> None:
        self.counter += 1
        uid = f"ev{self.counter}"
        rule_line = f"RRULE:FREQ=WEEKLY;COUNT={weekly}" if weekly > 1 else ""
        start = NOW.replace(hour=hour, minute=0) + timedelta(days=day)
        self.calendar.put(COLLECTION, f"{uid}.ics", ics(uid, start, f"Meeting {uid}", rule_line))

    def _objects(self) -> list[str]:
        return sorted(self.calendar._objects[COLLECTION])

    @precondition(lambda self: any(h.startswith("ev") for h in self._objects()))
    @rule(data=st.data(), shift=st.sampled_from([-26, -2, 1, 3, 50]))
    def move_event(self, data: st.DataObject, shift: int) -> None:
        href = data.draw(st.sampled_from([h for h in self._objects() if h.startswith("ev")]))
        calendar = icalendar.Calendar.from_ical(self.calendar.text(COLLECTION, href))
        event = calendar.walk("VEVENT")[0]
        start = event["DTSTART"].dt + timedelta(hours=shift)
        event.pop("DTSTART")
        event.add("DTSTART", start)
        self.calendar.put(COLLECTION, href, calendar.to_ical().decode())

    @rule(day=st.integers(1, 50))
    def add_todo(self, day: int) -> None:
        self.counter += 1
        uid = f"todo{self.counter}"
        due = NOW.replace(hour=16, minute=0) + timedelta(days=day)
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//machine//EN", "BEGIN:VTODO", f"UID:{uid}"]
        lines += [
            "DTSTAMP:20260101T000000Z",
            f"DUE:{due:%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Task {uid}",
            "END:VTODO",
            "END:VCALENDAR",
        ]
        self.calendar.put(COLLECTION, f"{uid}.ics", "\r\n".join(lines) + "\r\n")

    @precondition(lambda self: any(h.startswith("todo") for h in self._objects()))
    @rule(data=st.data())
    def complete_todo_in_calendar(self, data: st.DataObject) -> None:
        href = data.draw(st.sampled_from([h for h in self._objects() if h.startswith("todo")]))
        calendar = icalendar.Calendar.from_ical(self.calendar.text(COLLECTION, href))
        todo = calendar.walk("VTODO")[0]
        todo.pop("STATUS", None)
        todo.add("STATUS", "COMPLETED")
        self.calendar.put(COLLECTION, href, calendar.to_ical().decode())

    @precondition(lambda self: bool(self._objects()))
    @rule(data=st.data())
    def delete_event(self, data: st.DataObject) -> None:
        self.calendar.remove(COLLECTION, data.draw(st.sampled_from(self._objects())))

    # --- Kizen ----------------------------------------------------------------------------------

    def _open(self) -> list[dict[str, Any]]:
        return [a for a in self._activities() if a["completed_at"] is None]

    def _activities(self) -> list[dict[str, Any]]:
        return [self.box.service.get_scheduled(a["id"]) for a in self.box.service.list_scheduled({}, 0, 1000)[1]]

    @precondition(lambda self: bool(self._open()))
    @rule(data=st.data(), action=st.sampled_from(["delete", "complete", "reschedule", "note"]))
    def kizen_edit(self, data: st.DataObject, action: str) -> None:
        activity = data.draw(st.sampled_from(sorted(self._open(), key=lambda a: (a["due_datetime"], a["note"]))))
        user = self.box.user()
        if action == "delete":
            self.deleted_in_kizen.add(activity["note"].splitlines()[-1])
            user.delete(activity["id"])
        elif action == "complete":
            user.complete(activity["id"])
        elif action == "reschedule":
            user.reschedule(activity["id"], datetime.fromisoformat(activity["due_datetime"]) + timedelta(hours=5))
        else:
            user.edit_note(activity["id"], "Edited in Kizen\n" + activity["note"].splitlines()[-1])

    # --- failures -------------------------------------------------------------------------------

    @rule(
        method=st.sampled_from(["POST", "PATCH", "DELETE"]),
        fault=st.sampled_from([Fault.DROP_AFTER, Fault.DROP_BEFORE]),
    )
    def crash_next_write(self, method: str, fault: Fault) -> None:
        self.box.faults.script(fault, method=method)
        self.crash_pending = True

    @precondition(lambda self: self.synced_once)
    @rule()
    def lose_state_store(self) -> None:
        lose_state(self.folder)

    # --- syncing --------------------------------------------------------------------------------

    def _run(self) -> Report:
        return run_cycle(self.folder / "config.toml", self.box, NOW, connectors={"ada": self.calendar})

    @rule()
    def sync(self) -> None:
        before = {a["id"]: a for a in self._activities()}
        self._run()
        self.synced_once = True
        if self.crash_pending:  # a crashing cycle must be healed by the next clean one
            self.box.faults.clear()
            self.crash_pending = False
            self._run()
        self._check(before)

    def _check(self, before: dict[str, dict[str, Any]]) -> None:
        activities = self._activities()
        lines = [a["note"].splitlines()[-1] for a in activities]
        assert len(lines) == len(set(lines)), f"two activities for one occurrence: {lines}"
        resources = [
            Resource(Location("ada", COLLECTION, h), e, t) for h, (e, t) in self.calendar._objects[COLLECTION].items()
        ]
        window = Window(NOW - self.config.sync.lookback, NOW + self.config.sync.horizon)
        # a to-do completed before syncd saw it open is not due: it gets no activity
        expected = {provenance("ada", o.id) for o in expand_all(resources, window).occurrences if not o.completed}
        missing = expected - set(lines) - self.deleted_in_kizen
        assert not missing, f"occurrences without an activity: {missing}"
        now = {a["id"]: a for a in activities}
        for activity_id, was in self.logged.items():
            assert now.get(activity_id) == was, "a completed activity changed"
        for activity_id, old in before.items():
            if activity_id not in now:
                line = old["note"].splitlines()[-1]
                assert line in self.deleted_in_kizen or line not in expected, "an activity deleted without cause"
        self.logged.update({a["id"]: a for a in activities if a["completed_at"] is not None})
        state = open_state(self.folder)  # the state agrees with Kizen
        for pairing in state.pairings(open_only=True):
            activity = now.get(pairing.activity_id)
            assert activity is not None and activity["completed_at"] is None, f"open pairing, gone activity: {pairing}"
            assert pairing.kizen_seen["due"] == activity["due_datetime"], (pairing.kizen_seen, activity["due_datetime"])
        state.close()
        again = self._run()
        assert again.actions == [], f"a second sync still plans {again.actions}"

    @invariant()
    def state_store_opens(self) -> None:
        if self.synced_once and state_exists(self.folder):
            open_state(self.folder).close()


MACHINE = settings(
    max_examples=40,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; explore more with a bigger max_examples locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_the_sync_machine_keeps_its_invariants(backend: Backend) -> None:
    """The machine on each state backend (a fresh state per example: its own folder)."""
    run_state_machine_as_test(SyncMachine, settings=MACHINE)

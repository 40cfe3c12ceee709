"""The fault matrix's scenarios, each a function ``(folder, size, seed) -> Result``.

Each one syncs a calendar, changes both sides while faults are injected (Kizen's answers, the
CalDAV server, the syncd process, the state database), converges without faults, and checks the
invariants. The tests and ``python -m tests.faults`` call the same functions; :data:`CI` keeps
the whole matrix within about a minute on two shared cores, :data:`SOAK` is the long one.
"""

from __future__ import annotations

import functools
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd.errors import StateError
from syncd.identifiers import provenance
from syncd.model import OccurrenceId
from syncd.sandbox import Fault, FaultPlan
from tests.faults.harness import Dav, Hook, Result, Scene, scene, until, vcalendar, vevent
from tests.faults.invariants import Expect, Record, Verdict, count_rows, rows


@dataclass(frozen=True)
class Size:
    name: str
    items: int  # events of the bulk (ICS) calendars
    kills: int  # SIGKILLs per killed scenario
    fault_runs: int  # runs under random Kizen faults
    caldav_items: int  # events of the CalDAV calendars
    imports: int  # activities made in Kizen for an importing source
    cli: bool = False  # also each state-database fault under the command line, as a process
    seeds: tuple[int, ...] = (1,)


CI = Size("ci", items=120, kills=2, fault_runs=4, caldav_items=16, imports=6)
SOAK = Size("soak", items=1000, kills=6, fault_runs=10, caldav_items=80, imports=40, cli=True, seeds=(1, 2, 3))

RATES = {
    Fault.RATE_LIMITED: 0.05,
    Fault.SERVER_ERROR: 0.02,
    Fault.BAD_GATEWAY: 0.02,
    Fault.UNAVAILABLE: 0.03,
    Fault.DROP_BEFORE: 0.02,
    Fault.DROP_AFTER: 0.03,
}


@dataclass
class Calendar:
    """One source's events as the scenario made them, and what Kizen must show for each."""

    source: str
    start: datetime
    events: dict[str, datetime] = field(default_factory=dict)  # uid -> start
    kizen_moved: dict[str, datetime] = field(default_factory=dict)  # uid -> the due Kizen set
    logged: set[str] = field(default_factory=set)
    conflicted: set[str] = field(default_factory=set)  # moved in Kizen while the calendar's move was unsynced
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)  # uid -> more lines

    def fill(self, count: int, *, span_days: float = 50) -> None:
        step = span_days * 24 * 60 / max(count, 1)
        for n in range(count):
            self.events[f"e{n}"] = self.start + timedelta(minutes=int(n * step) // 5 * 5)

    def text(self) -> str:
        return vcalendar(*(self.item(uid) for uid in self.events))

    def item(self, uid: str) -> str:
        extra = ("ORGANIZER:mailto:ada@example.com", *self.extra.get(uid, ()))
        return vevent(uid, self.events[uid], f"Event {uid}", *extra)

    def expected(self) -> dict[tuple[str, OccurrenceId], datetime]:
        return {
            (self.source, OccurrenceId(uid)): self.kizen_moved.get(uid, start) for uid, start in self.events.items()
        }

    def free(self) -> list[str]:
        """Events neither logged nor moved in Kizen: the calendar may change them freely."""
        return [u for u in self.events if u not in self.logged and u not in self.kizen_moved]

    def change(self, rng: random.Random, *, moves: int, deletes: int, adds: int) -> None:
        """Moves, deletes and adds events (never a logged one or one Kizen moved)."""
        free = self.free()
        for uid in rng.sample(free, min(moves, len(free))):
            self.events[uid] += timedelta(minutes=rng.choice((-90, -30, 45, 120, 24 * 60)))
        free = [u for u in self.free() if u in self.events]
        for uid in rng.sample(free, min(deletes, len(free))):
            del self.events[uid]
        for n in range(adds):
            uid = f"new{len(self.events)}-{n}-{rng.randrange(10**6)}"
            self.events[uid] = self.start + timedelta(days=rng.uniform(0, 50), minutes=0)
            self.events[uid] = self.events[uid].replace(second=0, microsecond=0)

    def expect(self, **more: object) -> Expect:
        window = (self.start - timedelta(days=2), self.start + timedelta(days=58))
        logged = frozenset((self.source, OccurrenceId(u)) for u in self.logged)
        return Expect(self.expected(), logged=logged, window=window, **more)  # type: ignore[arg-type]


def kizen_acts(s: Scene, cal: Calendar, rng: random.Random, *, completes: int, moves: int) -> dict[str, Record]:
    """People at work in Kizen: complete some activities, move others; returns the logged snapshot.

    Only activities the state has paired: one whose create's answer was lost is another case
    (``test_a_lost_create_moved_in_kizen_before_the_next_run_is_not_made_again``).
    """
    lines = s.by_line()
    paired = s.paired()
    made = {uid: lines.get(provenance(cal.source, OccurrenceId(uid))) for uid in cal.free()}
    ready = [uid for uid, r in made.items() if r is not None and r["completed_at"] is None and r["id"] in paired]
    chosen = rng.sample(ready, min(completes + moves, len(ready)))
    for uid in chosen[:completes]:
        record = made[uid]
        assert record is not None
        s.box.user().complete(record["id"], notes=f"done {uid}")
        cal.logged.add(uid)
        # a logged activity keeps its due: the calendar's later moves must not reach it
        cal.kizen_moved[uid] = _due(record)
    for uid in chosen[completes:]:
        record = made[uid]
        assert record is not None
        due = (cal.events[uid] + timedelta(hours=rng.choice((1, 3, 26)))).astimezone(UTC)
        s.box.user().reschedule(record["id"], due)
        if _due(record) == cal.events[uid]:
            cal.kizen_moved[uid] = due
        else:  # the calendar's move has not reached Kizen yet: both moved, the calendar's policy wins
            cal.conflicted.add(uid)
            s.faults["moved-on-both-sides"] += 1
    return s.snapshot()


def _due(record: Record) -> datetime:
    return datetime.fromisoformat(record["due_datetime"].replace("Z", "+00:00"))


def conflicts_recorded(s: Scene, cal: Calendar) -> Callable[[Verdict], None]:
    """Each event moved on both sides has its conflict recorded (the calendar's time is expected)."""

    def check(verdict: Verdict) -> None:
        recorded = {str(row[0]) for row in rows(s.state, "SELECT uid FROM conflicts")}
        for uid in sorted(cal.conflicted - recorded):
            verdict.disagreements.append(f"{uid}: moved on both sides, no conflict recorded")

    return check


# --- Kizen's answers -----------------------------------------------------------------------------


def kizen_faults(folder: Path, size: Size, seed: int, *, transport: str = "in-process") -> Result:
    """429, 500, 502, 503 and connections dropped before and after the write, at seeded rates.

    Runs under faults while the calendar changes (moves, deletes, additions, a logged activity's
    event moved) and people complete and move activities in Kizen; then converges.
    """
    with scene(folder, seed) as s:
        if transport == "loopback":
            s.kizen_url = s.box.serve().url
        cal = Calendar("ada", s.start)
        cal.fill(size.items if transport == "in-process" else size.items // 2)
        s.ics("ada", cal.text())
        s.box.faults.use(FaultPlan(seed=seed, rates=RATES))
        s.run()
        logged = kizen_acts(s, cal, s.rng, completes=max(2, size.items // 20), moves=max(2, size.items // 20))
        for uid in list(cal.logged)[:3]:  # the logged ones' events move too: Kizen's must stay as logged
            cal.events[uid] += timedelta(hours=2)
        for _ in range(size.fault_runs - 1):
            cal.change(s.rng, moves=size.items // 10, deletes=size.items // 20, adds=size.items // 20)
            s.ics("ada", cal.text())
            s.run()
        s.converge()
        return s.result(f"kizen-faults/{transport}", cal.expect(), logged)


def kizen_timeouts(folder: Path, size: Size, seed: int) -> Result:
    """Kizen too slow to answer within the client's timeout, over a real loopback socket.

    A stalled request is applied before its late answer (the client gave up: the write's outcome
    is unknown) or after the stall (the write lands after the client moved on). Each stalled one
    has landed before anything else happens between runs, as it would minutes apart.
    """
    with scene(folder, seed) as s:
        s.kizen_url = s.box.serve().url
        s.kizen_timeout = 0.25
        rng = random.Random(seed)
        release = threading.Event()
        handle = s.box.app.handle
        stalled = [0]  # requests still stalling
        lock = threading.Lock()

        def stall() -> None:
            with lock:
                stalled[0] += 1
            release.wait(0.4)

        def slow(request: Any) -> Any:
            roll = rng.random()
            try:
                if roll < 0.03:  # stall, then apply: the client has given up by then
                    s.faults["timeout-before-apply"] += 1
                    stall()
                    return handle(request)
                if roll < 0.06:  # apply, then stall: the answer comes too late
                    s.faults["timeout-after-apply"] += 1
                    answer = handle(request)
                    stall()
                    return answer
                return handle(request)
            finally:
                with lock:
                    stalled[0] -= roll < 0.06

        def landed() -> bool:
            with lock:
                return stalled[0] == 0

        s.box.app.handle = slow  # type: ignore[method-assign]
        cal = Calendar("ada", s.start)
        cal.fill(max(20, size.items // 3))
        s.ics("ada", cal.text())
        try:
            s.run()
            until(landed, what="the stalled requests to land")
            logged = kizen_acts(s, cal, s.rng, completes=3, moves=3)
            for _ in range(max(1, size.fault_runs // 2)):
                cal.change(s.rng, moves=len(cal.events) // 10, deletes=2, adds=2)
                s.ics("ada", cal.text())
                s.run()
                until(landed, what="the stalled requests to land")
        finally:
            release.set()
            s.box.app.handle = handle  # type: ignore[method-assign]
        s.converge()
        return s.result("kizen-timeouts", cal.expect(), logged)


# --- SIGKILL of the syncd process ------------------------------------------------------------------


def _holds(s: Scene, count: int) -> bool:
    return count_rows(s.kizen_path, "scheduled") >= count


def sigkill_sync(folder: Path, size: Size, seed: int) -> Result:
    """syncd killed at seeded Kizen requests of a large first sync, the calendar changing between.

    The second kill comes from outside, at a seeded count of activities in the sandbox's file.
    """
    with scene(folder, seed) as s:
        cal = Calendar("ada", s.start)
        cal.fill(size.items)
        s.ics("ada", cal.text())
        logged: dict[str, Record] = {}
        for n in range(size.kills):
            pending = len(cal.events) - len(s.paired())  # about one Kizen request each, and a few reads
            if n == 1:  # plain `python -m syncd`, killed from outside once Kizen holds that many more
                more = len(s.activities()) + s.rng.randint(1, max(2, pending))
                s.child(kill_when=functools.partial(_holds, s, more))
            else:
                s.child(f"kizen:*:{s.rng.randint(2, max(3, pending))}" + (":before" if n % 2 else ""))
            if n == 0:
                logged = kizen_acts(s, cal, s.rng, completes=3, moves=3)
            cal.change(s.rng, moves=size.items // 20, deletes=size.items // 40, adds=size.items // 40)
            s.ics("ada", cal.text())
        s.converge()
        return s.result("sigkill-sync", cal.expect(), logged)


def sigkill_rebuild(folder: Path, size: Size, seed: int) -> Result:
    """The state store lost after a full sync; the rebuilding run killed part-way, then restarted.

    Adoption reads each activity once (one GET), so the first kill point is among those GETs, the
    next ones at any Kizen request, the last at the k-th pairing saved; the calendar changes
    between the runs.
    """
    with scene(folder, seed) as s:
        cal = Calendar("ada", s.start)
        cal.fill(size.items)
        s.ics("ada", cal.text())
        s.run()
        logged = kizen_acts(s, cal, s.rng, completes=3, moves=3)
        s.run()
        s.lose_state()
        # the first kill among adoption's GETs; later runs may adopt again or not, so any request
        points = [f"kizen:GET:{s.rng.randint(size.items // 5, size.items * 4 // 5)}"]
        points += [f"kizen:*:{s.rng.randint(2, size.items // 2)}" for _ in range(size.kills - 2)]
        points.append(f"{s.saving_a_pairing()}:{s.rng.randint(2, size.items // 2)}")
        for point in points:
            s.child(point)
            cal.change(s.rng, moves=size.items // 40, deletes=0, adds=size.items // 40)
            s.ics("ada", cal.text())
        s.converge()
        return s.result("sigkill-rebuild", cal.expect(), logged)


# --- the CalDAV server ------------------------------------------------------------------------------


def _on_dav(s: Scene, dav: Dav, cal: Calendar, pushed: dict[str, str]) -> None:
    """Writes the calendar's changes to the server, one object each, as a calendar app would."""
    for uid in [u for u in pushed if u not in cal.events]:
        dav.delete(uid)
        del pushed[uid]
    for uid in cal.events:
        text = vcalendar(cal.item(uid))
        if pushed.get(uid) != text:
            dav.put(uid, text)
            pushed[uid] = text


def _caldav_scene(s: Scene, size: Size) -> tuple[Dav, Calendar, dict[str, str]]:
    dav = Dav(s.folder / "radicale")
    s.caldav("ada", f"{dav.url}/ada/", "ada", import_collection="Work")
    cal = Calendar("ada", s.start)
    cal.fill(size.caldav_items, span_days=40)
    pushed: dict[str, str] = {}
    _on_dav(s, dav, cal, pushed)
    return dav, cal, pushed


def _kizen_made(s: Scene, rng: random.Random, count: int, made: dict[str, datetime]) -> None:
    """People schedule activities in Kizen: an importing source must bring each into the calendar."""
    for n in range(count):
        due = (s.start + timedelta(days=rng.uniform(1, 40))).replace(second=0, microsecond=0)
        record = s.box.user().create("call", due, note=f"Made in Kizen {len(made)}-{n}\nBring the quote")
        made[record["id"]] = due


def radicale_restart(folder: Path, size: Size, seed: int) -> Result:
    """Radicale stopped for a whole run, then stopped at a seeded CalDAV write and restarted later.

    Pending then: write-backs of activities logged in Kizen, Kizen's moves of the organizer's
    events, activities made in Kizen to import, and moves made in the calendar.
    """
    with scene(folder, seed) as s:
        dav, cal, pushed = _caldav_scene(s, size)
        made: dict[str, datetime] = {}
        try:
            s.run()
            logged = kizen_acts(s, cal, s.rng, completes=max(2, size.caldav_items // 6), moves=2)
            _kizen_made(s, s.rng, max(2, size.imports // 2), made)
            cal.change(s.rng, moves=3, deletes=1, adds=2)
            _on_dav(s, dav, cal, pushed)
            dav.stop()
            s.faults["radicale-stopped"] += 1
            s.run()  # the source cannot be read: nothing of it may change
            dav.restart()
            _kizen_made(s, s.rng, max(2, size.imports // 2), made)
            logged = kizen_acts(s, cal, s.rng, completes=2, moves=2)
            writes = size.caldav_items // 4
            stop_at = s.rng.randint(1, max(1, writes - 2))

            def stop(*_: Any) -> None:
                dav.stop()
                s.faults["radicale-stopped-mid-run"] += 1

            def restart(*_: Any) -> None:
                dav.restart()
                s.faults["radicale-restarted-mid-run"] += 1

            s.connector_hooks = {"update": [Hook(stop_at, stop), Hook(stop_at + 2, restart)]}
            s.run()
            dav.restart()
            s.converge()
            expect = cal.expect(imported=made, importer="ada")
            extra = conflicts_recorded(s, cal)
            return s.result("radicale-restart", expect, logged, calendar=dav.items(), extra=extra)
        finally:
            dav.close()


def race_412(folder: Path, size: Size, seed: int) -> Result:
    """Another client edits the object between syncd's read and its write-back (a 412 for syncd).

    Each edit (a location added) must survive, and syncd's write-back or move must still land.
    """
    with scene(folder, seed) as s:
        dav, cal, pushed = _caldav_scene(s, size)
        try:
            s.run()
            logged = kizen_acts(s, cal, s.rng, completes=max(2, size.caldav_items // 5), moves=2)
            raced: list[str] = []

            def edit(location: Any, _etag: str, _ical: str) -> None:
                uid = location.href.rsplit("/", 1)[-1].removesuffix(".ics")
                cal.extra[uid] = (*cal.extra.get(uid, ()), f"LOCATION:Room {len(raced)}")
                text = vcalendar(cal.item(uid))
                dav.put(uid, text)
                pushed[uid] = text
                raced.append(uid)
                s.faults["412-race"] += 1

            s.connector_hooks = {"update": [Hook(n, edit) for n in range(1, size.caldav_items + 1, 2)]}
            s.run()
            s.converge()

            def edits_kept(verdict: Verdict) -> None:
                items = {str(i["UID"]): i for i in dav.items() if "RECURRENCE-ID" not in i}
                for n, uid in enumerate(raced):
                    if str(items[uid].get("LOCATION")) != f"Room {n}":
                        verdict.lost.append(f"{uid}: the other client's location is gone")

            return s.result("412-race", cal.expect(), logged, calendar=dav.items(), extra=edits_kept)
        finally:
            dav.close()


def sigkill_import(folder: Path, size: Size, seed: int) -> Result:
    """syncd killed while importing activities made in Kizen into a CalDAV calendar.

    Kill points: right after the k-th CalDAV object is made (nothing recorded yet), and before
    the k-th Kizen request; more activities are made in Kizen between the runs.
    """
    with scene(folder, seed) as s:
        dav, cal, _pushed = _caldav_scene(s, size)
        made: dict[str, datetime] = {}
        try:
            s.run()
            _kizen_made(s, s.rng, size.imports, made)
            points = [f"call:syncd.calendar.connectors.caldav:CalDAVSource.create:{s.rng.randint(1, size.imports)}"]
            points += [f"kizen:GET:{s.rng.randint(2, size.imports + 2)}:before" for _ in range(size.kills - 1)]
            for point in points:
                s.child(point)
                _kizen_made(s, s.rng, max(1, size.imports // 3), made)
            s.converge()
            return s.result("sigkill-import", cal.expect(imported=made, importer="ada"), {}, calendar=dav.items())
        finally:
            dav.close()


# --- the state database -----------------------------------------------------------------------------

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))  # the fault: the lock held this long
db.execute("COMMIT")
"""


def hold(s: Scene, seconds: float) -> subprocess.Popen[bytes]:
    """Another process takes the state database's write lock (BEGIN EXCLUSIVE) for ``seconds``."""
    marker = s.folder / f"held-{s.faults['state-locked']}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(s.state_path), str(marker), str(seconds)])
    until(marker.exists, what="the other process to hold the state database")
    s.faults["state-locked"] += 1
    return holder


def state_locked(folder: Path, size: Size, seed: int) -> Result:
    """The state database locked by another process for two seconds, at a run's start and mid-run.

    The state store waits up to its busy timeout (10 s), so each run must wait and finish.
    """
    with scene(folder, seed) as s:
        cal = Calendar("ada", s.start)
        cal.fill(size.items // 2)
        s.ics("ada", cal.text())
        s.run()
        logged = kizen_acts(s, cal, s.rng, completes=3, moves=3)
        holders: list[subprocess.Popen[bytes]] = []
        try:
            cal.change(s.rng, moves=size.items // 20, deletes=2, adds=size.items // 20)
            s.ics("ada", cal.text())
            holders.append(hold(s, 2.0))
            s.run()
            holders[-1].wait(timeout=60)  # released, whether the run waited for it or not
            cal.change(s.rng, moves=size.items // 20, deletes=2, adds=size.items // 20)
            s.ics("ada", cal.text())
            s.kizen_hooks = [Hook(s.rng.randint(3, size.items // 20), lambda _: holders.append(hold(s, 2.0)))]
            s.run()
            for holder in holders:
                holder.wait(timeout=60)
            if size.cli:
                cal.change(s.rng, moves=3, deletes=1, adds=3)
                s.ics("ada", cal.text())
                holders.append(hold(s, 4.0))  # longer: the process takes a second or two to start
                s.child()
        finally:
            for holder in holders:
                holder.wait(timeout=60)
        s.converge()
        return s.result("state-locked", cal.expect(), logged)


def state_full(folder: Path, size: Size, seed: int) -> Result:
    """The state database's file system full (SQLite's max_page_count) part-way through a run.

    A full state store is told in one line (a StateError) and the items not recorded are settled
    by the next run; nothing may escape as a traceback.
    """
    with scene(folder, seed) as s:
        cal = Calendar("ada", s.start)
        cal.fill(size.items // 2)
        s.ics("ada", cal.text())
        s.run()
        logged = kizen_acts(s, cal, s.rng, completes=3, moves=3)
        for pages in (3, 1):
            cal.change(s.rng, moves=size.items // 20, deletes=2, adds=size.items // 4)
            s.ics("ada", cal.text())
            s.faults["state-full"] += 1
            s.run(state_pages=pages, allowed=(StateError,))
        if size.cli:
            cal.change(s.rng, moves=3, deletes=1, adds=size.items // 4)
            s.ics("ada", cal.text())
            s.faults["state-full"] += 1
            s.child(state_pages=2)
        s.converge()
        return s.result("state-full", cal.expect(), logged)


Scenario = Callable[[Path, Size, int], Result]
SCENARIOS: dict[str, Scenario] = {
    "kizen-faults/in-process": lambda f, z, n: kizen_faults(f, z, n),
    "kizen-faults/loopback": lambda f, z, n: kizen_faults(f, z, n, transport="loopback"),
    "kizen-timeouts": kizen_timeouts,
    "radicale-restart": radicale_restart,
    "412-race": race_412,
    "sigkill-sync": sigkill_sync,
    "sigkill-rebuild": sigkill_rebuild,
    "sigkill-import": sigkill_import,
    "state-locked": state_locked,
    "state-full": state_full,
}

"""The fault matrix's harness: one business in a folder, its runs, its faults, and the totals.

A :class:`Scene` holds a config, the sandbox's SQLite file (the in-process Kizen of every run,
the killed process's included, so what a dead process wrote stays written) and the state file.
A run is either in-process (:meth:`Scene.run`, the cycle ``syncd run --once`` runs, with hooks
at chosen Kizen requests or connector calls) or ``syncd`` as a real process killed at a chosen
point (:meth:`Scene.child`, see :mod:`tests.faults.child`). :meth:`Scene.converge` then runs
without faults until a run is clean and plans nothing, and :mod:`tests.faults.invariants` says
what broke. Everything listens on 127.0.0.1 only; waits poll with a deadline.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import icalendar
from pydantic import SecretStr

from syncd.calendar.connectors import connect
from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.config import load
from syncd.errors import SyncdError
from syncd.identifiers import provenance
from syncd.kizen import ActivitiesClient, Credentials, http_client
from syncd.model import OccurrenceId
from syncd.runner import Cycle
from syncd.sandbox import FaultPlan, Sandbox
from syncd.state import StateStore, Store, open_store
from syncd.sync.report import Report
from tests.backends import Backend
from tests.connectors.radicale import Radicale, delete, mkcalendar, put, quiet
from tests.faults.invariants import Expect, Record, Verdict, check, kizen_records, logged_snapshot, provenance_of, rows
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings" / "default.toml"
BACKEND = Backend("sqlite")  # where a new scene keeps its state (the matrix sets it per scenario)
T = TypeVar("T")


def until(check_: Callable[[], T | None], deadline: float = 30.0, what: str = "it") -> T:
    """Polls ``check_`` until it returns something truthy; fails after ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while True:
        found = check_()
        if found:
            return found
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(uid: str, start: datetime, summary: str, *extra: str) -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART:{stamp(start)}", "DURATION:PT30M"]
    return "BEGIN:VEVENT\r\n" + "\r\n".join([*lines, f"SUMMARY:{summary}", *extra]) + "\r\nEND:VEVENT\r\n"


def vcalendar(*items: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd faults//EN\r\n" + "".join(items) + "END:VCALENDAR\r\n"


def process_wait(process: subprocess.Popen[Any], seconds: float) -> None:
    """Waits for the process to end, at most ``seconds`` (a poll's interval, not a fixed sleep)."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Result:
    """One scenario's totals."""

    scenario: str
    seed: int
    faults: Counter[str]
    runs: int
    verdict: Verdict
    errors: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.errors

    def describe(self) -> str:
        errors = "".join(f"\n  error: {e}" for e in self.errors[:8])
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        return (
            f"{self.scenario} (seed {self.seed}, {self.runs} runs, faults: {faults})\n{self.verdict.describe()}{errors}"
        )


@dataclass
class Hook:
    """Calls ``action`` before the ``at``-th matching call (Kizen request, or connector method)."""

    at: int
    action: Callable[..., None]  # called with the request, or the method's arguments
    method: str = "*"
    seen: int = 0


@dataclass
class Scene:
    """One business in ``folder``: its config, sandbox file, state file, and what happened to it."""

    folder: Path
    seed: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # name -> its [[sources]] table
    faults: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kizen_url: str | None = None  # the sandbox's loopback server, for real sockets
    kizen_timeout: float | None = None  # the client's timeout over loopback
    kizen_hooks: list[Hook] = field(default_factory=list)
    connector_hooks: dict[str, list[Hook]] = field(default_factory=dict)  # method name -> hooks
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.kizen_path = self.folder / "sandbox.sqlite"
        self.state_path = self.folder / "state.sqlite"  # on SQLite; see ``state``
        self.backend = BACKEND
        self.state = BACKEND.state(self.folder)  # the file, or the scene's PostgreSQL database
        self.config_path = self.folder / "config.toml"
        self.box = Sandbox(data=self.kizen_path)
        self.rng = random.Random(self.seed)
        self.start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
        handle = self.box.app.handle

        def hooked(request: Any) -> Any:
            for hook in self.kizen_hooks:
                if hook.method in ("*", request.method):
                    hook.seen += 1
                    if hook.seen == hook.at:
                        hook.action(request)
            return handle(request)

        self.box.app.handle = hooked  # type: ignore[method-assign]

    def close(self) -> None:
        self.box.close()

    # --- the config -----------------------------------------------------------------------------

    def ics(self, name: str, text: str) -> None:
        """Writes an ICS file source's calendar (made a source the first time)."""
        (self.folder / f"{name}.ics").write_text(text)
        self.sources.setdefault(
            name, f'[[sources]]\nname = "{name}"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{name}.ics"\n'
        )

    def caldav(self, name: str, url: str, username: str, *, import_collection: str | None = None) -> None:
        write_secret(self.folder / "password", "unused\n")
        table = (
            f'[[sources]]\nname = "{name}"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{url}"\n'
            f'username = "{username}"\npassword_file = "password"\nallow_private_network = true\n'
        )
        if import_collection:
            table += f'import_from_crm = true\nimport_collection = "{import_collection}"\n'
        self.sources[name] = table

    def write_config(self) -> None:
        self.config_path.write_text(
            '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
            f'[sync]\nstate = "{self.state}"\nmappings = ["{MAPPINGS}"]\ninternal_domains = ["example.com"]\n'
            'zone = "Europe/Berlin"\n' + "".join(self.sources.values())
        )

    # --- runs -----------------------------------------------------------------------------------

    def client(self) -> ActivitiesClient:
        if self.kizen_url:
            timeout = httpx.Timeout(self.kizen_timeout or 30.0, connect=5.0)
            http = http_client(self.kizen_url, timeout=timeout)
        else:
            http = http_client("http://sandbox.invalid", transport=self.box.transport())
        world = self.box.world
        credentials = Credentials(SecretStr(world.business.api_key), str(world.business.id), str(world.api_user.id))
        return ActivitiesClient(http, credentials, sleep=lambda _: None)

    def run(
        self, *, state_pages: int | None = None, allowed: tuple[type[SyncdError], ...] = (), **options: Any
    ) -> Report | None:
        """One in-process cycle, as ``run --once``; an exception it lets out is recorded, not raised.

        A cycle reports what failed in its report, so any exception out of it is an error of the
        scenario (a traceback, or with a :class:`SyncdError` a run ended early, items unsynced),
        but for the ``allowed`` ones: a message the scenario expects (noted).
        """
        self.write_config()
        self.runs += 1
        config = load(self.config_path)
        client = self.client()
        state: Store | None = None
        cycle: Cycle | None = None
        try:
            state = open_store(config.sync.state)
            if state_pages is not None:
                assert isinstance(state, StateStore), "a full disk is SQLite's scenario"
                (pages,) = state.db.execute("PRAGMA page_count").fetchone()
                state.db.execute(f"PRAGMA max_page_count = {int(pages) + state_pages}")
            cycle = Cycle(config, state, client)
            if self.connector_hooks:
                for source in config.sources:
                    if source.type == "caldav":
                        cycle.connectors[source.name] = self._hooked(connect(source, client.http))
            with state.lock("faults"):
                return cycle.run(**options)
        except allowed as error:
            self.notes.append(f"run {self.runs}: syncd: {error}")
        except Exception as error:  # the run ended early: a traceback, or items left unsynced
            self.errors.append(f"run {self.runs} raised {type(error).__name__}: {error}")
        finally:
            if cycle is not None:
                for name, connector in cycle.connectors.items():
                    if name not in cycle._opened and isinstance(connector, CalDAVSource):  # ours, hooked
                        connector.close()
                cycle.close()
            client.http.close()
            if state is not None:
                state.close()
        return None

    def _hooked(self, connector: Any) -> Any:
        for name, hooks in self.connector_hooks.items():
            original = getattr(connector, name)

            def wrapper(*args: Any, _original: Any = original, _hooks: list[Hook] = hooks, **kwargs: Any) -> Any:
                for hook in _hooks:
                    hook.seen += 1
                    if hook.seen == hook.at:
                        hook.action(*args, **kwargs)
                return _original(*args, **kwargs)

            setattr(connector, name, wrapper)
        return connector

    def child(
        self,
        *kills: str,
        state_pages: int | None = None,
        kill_when: Callable[[], bool] | None = None,
        deadline: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """``syncd run --once`` as a real process, killed at a point (see :mod:`tests.faults.child`).

        Without kill points or a state limit it is plain ``python -m syncd``; ``kill_when`` is
        polled while it runs, and the process is sent SIGKILL from outside once it holds.
        """
        self.write_config()
        self.runs += 1
        hooks = [part for spec in kills for part in ("--kill", spec)]
        if state_pages is not None:
            hooks += ["--state-pages", str(state_pages)]
        command = ["-m", "tests.faults.child", *hooks, "--"] if hooks else ["-m", "syncd"]
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        with (self.folder / f"run-{self.runs}.log").open("w+") as log:
            process = subprocess.Popen(
                [sys.executable, *command, "--config", str(self.config_path), "run", "--once"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env={**os.environ, "PYTHONPATH": path},
            )
            give_up = time.monotonic() + deadline
            while process.poll() is None:
                if kill_when is not None and kill_when():
                    process.send_signal(signal.SIGKILL)
                    kill_when = None
                if time.monotonic() > give_up:
                    process.kill()
                    self.errors.append(f"run {self.runs} still running after {deadline} s")
                process_wait(process, 0.01)
            log.seek(0)
            done = subprocess.CompletedProcess(process.args, int(process.returncode), log.read(), "")
        if done.returncode == -9:
            self.faults["sigkill"] += 1
        elif done.returncode not in (0, 1, 2):
            self.errors.append(f"run {self.runs} exited {done.returncode}")
        if "Traceback (most recent call last)" in done.stdout:
            last = done.stdout.strip().splitlines()[-1]
            self.errors.append(f"run {self.runs} printed a traceback: {last}")
        return done

    def converge(self, limit: int = 5) -> Report | None:
        """Runs without faults or hooks until one is clean and plans nothing (at most ``limit``)."""
        self.box.faults.use(FaultPlan())
        self.box.faults.clear()
        self.kizen_hooks.clear()
        self.connector_hooks.clear()
        report: Report | None = None
        for _ in range(limit):
            report = self.run()
            if report is not None and report.clean and not report.actions:
                return report
        detail = "raised" if report is None else f"{len(report.actions)} actions, {len(report.failures)} failures"
        if report is not None:
            detail += "".join(f"; {o.identity.uid}: {o.detail}" for o in report.failures[:3])
            detail += "".join(f"; {name}: {why}" for name, why in {**report.failed_sources, **report.stopped}.items())
        self.errors.append(f"did not converge in {limit} runs (last: {detail})")
        return report

    # --- Kizen's side ---------------------------------------------------------------------------

    def activities(self) -> dict[str, Record]:
        return kizen_records(self.kizen_path)[0]

    def by_line(self) -> dict[str, Record]:
        """Kizen's activities by their provenance line (the last of them, if several)."""
        return {provenance_of(r["note"]): r for r in self.activities().values() if provenance_of(r["note"])}

    def activity_of(self, source: str, identity: OccurrenceId) -> Record | None:
        """The activity syncd made for an occurrence, found by its provenance line."""
        return self.by_line().get(provenance(source, identity))

    def paired(self) -> set[str]:
        """The activities the state has paired."""
        if self.backend.count(self.folder, "pairings") == 0:
            return set()
        return {row[0] for row in rows(self.state, "SELECT activity_id FROM pairings")}

    def lose_state(self) -> None:
        """The state store is lost (a lost disk, an empty database restored)."""
        self.backend.lose(self.folder)
        self.faults["state-lost"] += 1

    def saving_a_pairing(self) -> str:
        """The kill point of the state store's ``save_pairing``, on this scene's backend."""
        if self.backend.server is None:
            return "call:syncd.state:StateStore.save_pairing"
        return "call:syncd.state.postgres:PostgresStore.save_pairing"

    def snapshot(self) -> dict[str, Record]:
        return logged_snapshot(self.kizen_path)

    def injected(self) -> Counter[str]:
        """Faults the sandbox injected so far, by kind."""
        return Counter(fault.value for _, _, fault in self.box.faults.injected)

    def result(
        self,
        name: str,
        expect: Expect,
        logged: dict[str, Record],
        *,
        calendar: list[icalendar.cal.Component] | None = None,
        extra: Callable[[Verdict], None] | None = None,
    ) -> Result:
        """Converged or not, checks the invariants and gives the totals."""
        verdict = check(self.kizen_path, self.state, expect, logged, calendar=calendar)
        if extra is not None:
            extra(verdict)
        faults = self.faults + self.injected()
        return Result(name, self.seed, faults, self.runs, verdict, self.errors, time.monotonic() - self.started)


class Dav:
    """A Radicale of the scenario's own, restartable on its port and storage, and one user's calendar."""

    def __init__(self, folder: Path, user: str = "ada") -> None:
        quiet()
        self.folder, self.user = folder, user
        self.server = Radicale(folder).start()
        self.port = int(self.server.url.rsplit(":", 1)[1])
        self.url = self.server.url
        self.http = self.server.client(user)
        self.path = f"/{user}/desk/"
        mkcalendar(self.http, self.path, name="Work")
        self.up = True

    def stop(self) -> None:
        if self.up:
            self.http.close()
            self.server.stop()
            self.up = False

    def restart(self) -> None:
        if not self.up:
            self.server = Radicale(self.folder, port=self.port).start()
            self.http = self.server.client(self.user)
            self.up = True

    def close(self) -> None:
        self.stop()

    def put(self, uid: str, ical: str) -> None:
        put(self.http, f"{self.path}{uid}.ics", ical)

    def delete(self, uid: str) -> None:
        delete(self.http, f"{self.path}{uid}.ics")

    def items(self) -> list[icalendar.cal.Component]:
        """Every event and to-do of the calendar, as the server holds them now."""
        answer = self.http.get(self.path)
        answer.raise_for_status()
        calendar = icalendar.Calendar.from_ical(answer.text)
        return [c for c in calendar.walk() if c.name in ("VEVENT", "VTODO")]


@contextmanager
def scene(folder: Path, seed: int) -> Iterator[Scene]:
    made = Scene(folder, seed)
    try:
        yield made
    finally:
        made.close()

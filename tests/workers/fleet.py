"""Workers as real processes (``syncd worker``) on one PostgreSQL state, over ICS file sources in
teams with a meeting shared inside each team, Kizen being the sandbox's loopback server.

What the tests check comes from three records kept by others: procrastinate's own jobs and
events (:meth:`Fleet.attempts`), the runs the cycles record in the state (:meth:`Fleet.runs`),
and the sandbox (its activities and the requests it answered).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from syncd.sandbox import Sandbox
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]
OWNERS = ("ada", "grace", "alan")  # the default seed's employees
T = TypeVar("T")
SECRETS = ("feed-token", "status-secret", "webhook-secret")  # each file holds "NAME-of-the-fleet-..."


def until(check: Callable[[], T | None], deadline: float = 90.0, what: str = "") -> T:
    """Polls ``check`` until it returns something truthy, or fails after ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < give_up, f"gave up waiting{': ' + what if what else ''}"
        time.sleep(0.2)


@dataclass
class Attempt:
    """One run of a job by a worker, from procrastinate's events: started until it ended (or was
    taken back for another worker)."""

    job: int
    lock: str
    started: datetime
    ended: datetime | None
    outcome: str


@dataclass
class Fleet:
    """``teams`` teams of ``per_team`` ICS sources each, ``events`` calendar items of their own per
    source and one meeting shared by every source of a team; workers started by :meth:`start`."""

    folder: Path
    box: Sandbox
    kizen_url: str
    state: str
    teams: int = 4
    per_team: int = 5
    events: int = 3
    interval: float = 1
    concurrency: int = 8  # [kizen] concurrency: 1 makes a first cycle long enough to be killed in
    serving: bool = False  # a feed of every owner's activities, the status page and the webhook
    owners: tuple[str, ...] = OWNERS  # the sources' owners in turn (names of employees @example.com)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0))

    def sources(self) -> dict[str, str]:
        """Source name -> its team."""
        return {f"t{t}-s{s}": f"t{t}" for t in range(self.teams) for s in range(self.per_team)}

    def expected(self) -> Counter[str]:
        """The first line of every activity's note the fleet should make, once each."""
        notes = Counter(f"{team} review" for team in set(self.sources().values()))
        notes.update(f"{name} call {n}" for name in self.sources() for n in range(self.events))
        return notes

    def write(self) -> Path:
        write_secret(self.folder / "key", self.box.world.business.api_key)
        config = [
            f'[kizen]\nbase_url = "{self.kizen_url}"\nbusiness_id = "{self.box.world.business.id}"\n'
            f'user_id = "{self.box.world.api_user.id}"\napi_key_file = "key"\nconcurrency = {self.concurrency}\n'
            f'[sync]\nstate = "{self.state}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\nzone = "Europe/Berlin"\n'
            f"[daemon]\ninterval_seconds = {self.interval}\njitter_seconds = 0\n"
        ]
        if self.serving:
            for name in SECRETS:
                write_secret(self.folder / name, f"{name}-of-the-fleet-0123456789abcdef")
            config.append('status_secret_file = "status-secret"\nwebhook_secret_file = "webhook-secret"\n')
            owners = ", ".join(f'"{o}@example.com"' for o in OWNERS)
            config.append(f'[[feeds]]\nname = "team"\ntoken_file = "feed-token"\nemployees = [{owners}]\n')
        owner_of = self.owner_of()
        members: dict[str, set[str]] = {}
        for name, team in self.sources().items():
            members.setdefault(team, set()).add(owner_of[name])
        for name, team in self.sources().items():
            owner = owner_of[name]
            config.append(
                f'[[sources]]\nname = "{name}"\ntype = "ics"\nowner = "{owner}@example.com"\n'
                f'url = "{name}.ics"\nteam = "{team}"\n'
            )
            (self.folder / f"{name}.ics").write_text(self._calendar(name, team, sorted(members[team])))
        path = self.folder / "config.toml"
        path.write_text("".join(config))
        return path

    def owner_of(self) -> dict[str, str]:
        """Source name -> its owner (the owners in turn)."""
        return {name: self.owners[index % len(self.owners)] for index, name in enumerate(self.sources())}

    def _calendar(self, name: str, team: str, members: list[str]) -> str:
        """The source's own events, and its team's meeting: organized by the first of the team's
        owners by name, every one of them attending."""
        stamp = "%Y%m%dT%H%M%SZ"
        day = int(team[1:]) % 30 + 1
        attendees = "".join(f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{o}@example.com\n" for o in members)
        organizer = members[0]
        items = [
            f"BEGIN:VEVENT\nUID:{team}-review\nDTSTAMP:20260101T000000Z\n"
            f"DTSTART:{(self.now + timedelta(days=day)):{stamp}}\nSUMMARY:{team} review\n"
            f"ORGANIZER:mailto:{organizer}@example.com\n{attendees}END:VEVENT\n"
        ]
        for n in range(self.events):
            start = self.now + timedelta(days=day + n // 20, hours=n % 20 + 1)
            items.append(
                f"BEGIN:VEVENT\nUID:{name}-{n}\nDTSTAMP:20260101T000000Z\nDTSTART:{start:{stamp}}\n"
                f"SUMMARY:{name} call {n}\nEND:VEVENT\n"
            )
        return "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\n" + "".join(items) + "END:VCALENDAR\n"

    def start(self, name: str, *options: str) -> subprocess.Popen[bytes]:
        """Starts ``syncd worker`` as a process of its own; its output goes to ``NAME.log``."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.folder / f"{name}.log", "ab") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "syncd",
                    "--config",
                    str(self.folder / "config.toml"),
                    "worker",
                    "--port",
                    "0",
                    *options,
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        self.workers[name] = process
        return process

    def url(self, name: str, timeout: float = 30) -> str:
        """Where the worker serves (the line it prints once it listens)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"syncd worker \S+ on (http://\S+)", (self.folder / f"{name}.log").read_text())
            if found:
                return found.group(1)
            time.sleep(0.1)
        raise AssertionError(f"worker {name} did not start serving: {(self.folder / f'{name}.log').read_text()}")

    def stop(self, name: str) -> int:
        """SIGTERM: the worker finishes its cycles in flight and exits; its exit code."""
        process = self.workers[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    def close(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    # --- the records -----------------------------------------------------------------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.state, autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(sql.encode(), params).fetchall()]

    def runs(self) -> list[tuple[str, str, datetime, datetime | None]]:
        """Every run the cycles recorded: source, status, started, finished."""
        return [
            (source, status, datetime.fromisoformat(started), datetime.fromisoformat(finished) if finished else None)
            for source, status, started, finished in self.rows(
                "SELECT source, status, started_at, finished_at FROM runs ORDER BY id"
            )
        ]

    def synced(self, times: int) -> bool:
        """Whether every source has at least ``times`` runs finished ok (False before the state has tables)."""
        try:
            self.runs()
        except psycopg.errors.UndefinedTable:
            return False
        ok = Counter(source for source, status, _, finished in self.runs() if status == "ok" and finished)
        return all(ok[name] >= times for name in self.sources())

    def attempts(self) -> list[Attempt]:
        """Every run of a team's cycle, from procrastinate's events, in the order they started."""
        found: list[Attempt] = []
        open_: dict[int, Attempt] = {}
        events = self.rows(
            "SELECT e.job_id, j.lock, e.type::text, e.at FROM procrastinate_events e "
            "JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.task_name = 'syncd.sync_team' ORDER BY e.id"
        )
        for job, lock, kind, at in events:
            if kind == "started":
                open_[job] = Attempt(job, lock, at, None, "running")
                found.append(open_[job])
            elif kind in ("succeeded", "failed", "deferred_for_retry", "aborted") and job in open_:
                attempt = open_.pop(job)
                attempt.ended, attempt.outcome = at, kind
        return found

    def job_statuses(self, task: str = "syncd.sync_team") -> Counter[str]:
        return Counter(
            status
            for (status,) in self.rows("SELECT status::text FROM procrastinate_jobs WHERE task_name = %s", (task,))
        )

    def team_lock_holders(self) -> dict[str, int]:
        """The pid of each worker process holding a team's lock now (from its connection's name)."""
        found = {}
        for (name,) in self.rows(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
        ):
            match = re.match(r"pid (\d+) on .*team (\S+)", name or "")
            if match:
                found[match.group(2)] = int(match.group(1))
        return found

    def notes(self) -> Counter[str]:
        """The first line of every activity's note in the sandbox."""
        service = self.box.service
        items = service.list_scheduled({}, 0, 10_000)[1]
        return Counter(service.get_scheduled(item["id"])["note"].splitlines()[0] for item in items)


def overlapping(intervals: list[tuple[datetime, datetime | None]]) -> list[tuple[Any, Any]]:
    """The pairs of intervals (in start order) of which one starts before the one before it ended."""
    ordered = sorted(intervals, key=lambda pair: pair[0])
    return [
        (before, after)
        for before, after in zip(ordered, ordered[1:], strict=False)
        if before[1] is None or after[0] < before[1]
    ]

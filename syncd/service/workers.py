"""Workers: syncd's cycles as tasks of procrastinate, on the PostgreSQL state (``syncd worker``).

procrastinate keeps its jobs in the same PostgreSQL database as the state, so many workers on
many machines share one queue with no second server to run. The unit of work is a team, the
sources that share meetings (``team`` on ``[[sources]]``; the sources that name none are the team
``default``): no two workers may sync one shared meeting at once, and no two sync one team.

- :func:`sync_team` runs one cycle over a team's sources (:class:`syncd.runner.Cycle` with
  ``only`` its sources). Its jobs carry the team's procrastinate ``lock`` (no two run at once,
  whichever workers fetch them) and ``queueing_lock`` (at most one waits, so ticks never pile
  jobs up behind a slow team); the cycle also holds the team's advisory lock in the state
  (:meth:`PostgresStore.team_lock`), so even a job run twice by mistake never runs twice at once.
- The tick, every ``[daemon] interval_seconds`` (as a cron: the longest period of whole seconds,
  minutes or hours that fits in the interval and divides the minute, hour or day), defers one
  :func:`sync_team` per team of the config. procrastinate defers each tick once, whichever
  workers run.
- The reconciliation, every ``[daemon] reconcile_hours`` (daily), defers one cycle per team that
  also finds its calendars anew (under the same team lock; its own queueing lock, so a waiting
  ordinary cycle does not crowd it out).
- The takeover, on the same schedule as the tick: jobs whose worker stopped sending heartbeats (killed, its
  machine gone) are set to run again, and any worker takes them; the cycle that runs them
  settles the journal the dead one left (:mod:`syncd.sync.recovery`).
- A 429 (or a ``Retry-After``) that one worker's Kizen client gets is recorded in the state, and
  every worker's client of that business waits it out too (:class:`syncd.kizen.limiter.SharedLimiter`).
- Ended jobs are forgotten after a week (daily), so the queue's tables stay small.
- What belongs to no source (pairings whose calendar copies are all gone, pruning) is kept by
  the cycles of one team only, the first by name, so no two workers do it at once.

A worker holds the state's sync lock shared for its whole life: workers run side by side, and a
``syncd run`` of the whole state is refused while any runs (and a worker while it runs).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from syncd.config import Config
from syncd.errors import ConfigError, StateError
from syncd.state import is_url

if TYPE_CHECKING:
    import procrastinate

    from syncd.state.postgres import PostgresStore
    from syncd.sync.report import Report

log = logging.getLogger(__name__)

QUEUE = "syncd"
SYNC_TEAM = "syncd.sync_team"
KEEP_JOBS_HOURS = 7 * 24  # ended jobs are forgotten after a week (looked at daily)
STALLED_SECONDS = 30.0  # a worker silent this long is taken for dead, and its jobs run again


def lock_of(team: str) -> str:
    """The procrastinate lock (and queueing lock) of a team's jobs."""
    return f"team/{team}"


def keeper(config: Config) -> str | None:
    """The team whose cycles keep what belongs to no source: the first by name."""
    return min(config.teams(), default=None)


def cron_of(seconds: float) -> str:
    """A cron (procrastinate's, seconds in a sixth column) that fires about every ``seconds``:
    the longest period of whole seconds, minutes or hours not longer than ``seconds`` that
    divides the minute, hour or day (one second at least)."""
    whole = max(1, int(seconds))

    def longest(limit: int, whole_of: int) -> int:
        return max(n for n in range(1, whole_of + 1) if whole_of % n == 0 and n <= limit)

    if whole < 60:
        return f"* * * * * */{longest(whole, 60)}"
    if whole < 3600:
        return f"*/{longest(whole // 60, 60)} * * * *"
    return f"0 */{longest(whole // 3600, 24)} * * *"


def sync_team(
    config: Config, team: str, *, reconcile: bool = False, clock: Callable[[], datetime] | None = None
) -> Report | None:
    """One cycle of a team's sources, holding the team's lock in the state; ``reconcile`` (the
    daily reconciliation) also finds the team's calendars anew.

    Returns None for a team the config no longer has (its jobs were deferred before a change).

    Raises:
        StateError: another cycle of the team holds its lock, or the state cannot be opened.
    """
    from syncd.runner import Cycle
    from syncd.state.postgres import PostgresStore
    from syncd.wiring import kizen_client

    sources = config.teams().get(team)
    if not sources:
        log.warning("team %s: not in the config (any more); nothing to sync", team)
        return None
    state = PostgresStore(str(config.sync.state))
    try:
        with state.team_lock(team, f"worker, team {team}"):
            kizen, close = kizen_client(config, holds=state)  # a 429 to any worker slows them all
            cycle = Cycle(config, state, kizen, team=team, common=team == keeper(config))
            if clock is not None:
                cycle.clock = clock
            began = time.perf_counter()
            try:
                report = cycle.run(only=sources, reconcile=reconcile)
                log.info("team %s: %d source(s) in %.1f s", team, len(sources), time.perf_counter() - began)
                return report
            finally:
                cycle.close()
                close()
    finally:
        state.close()


def build_app(config: Config, *, stalled_seconds: float = STALLED_SECONDS) -> procrastinate.App:
    """The procrastinate app of a config: its connector on the state's database, its tasks."""
    import procrastinate
    from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
    from procrastinate.jobs import Status

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=str(config.sync.state)))
    cron = cron_of(config.daemon.interval_seconds)

    @app.task(name=SYNC_TEAM, queue=QUEUE)
    def sync_team_task(team: str, reconcile: bool = False) -> None:
        sync_team(config, team, reconcile=reconcile)

    async def defer_all(reconcile: bool) -> None:
        """Defers one cycle per team (a team whose cycle of that kind already waits gets no second one)."""
        for team in config.teams():
            waiting = lock_of(team) + ("/reconcile" if reconcile else "")
            try:
                await sync_team_task.configure(lock=lock_of(team), queueing_lock=waiting).defer_async(
                    team=team, reconcile=reconcile
                )
            except AlreadyEnqueued:
                log.debug("team %s: a cycle already waits", team)

    @app.periodic(cron=cron, periodic_id="tick")
    @app.task(name="syncd.tick", queue=QUEUE, queueing_lock="syncd.tick")
    async def tick(timestamp: int) -> None:
        await defer_all(reconcile=False)

    @app.periodic(cron=cron_of(config.daemon.reconcile_hours * 3600), periodic_id="reconcile")
    @app.task(name="syncd.reconcile", queue=QUEUE, queueing_lock="syncd.reconcile")
    async def reconcile(timestamp: int) -> None:
        """The daily reconciliation: one cycle per team that also finds its calendars anew."""
        await defer_all(reconcile=True)

    @app.periodic(cron=cron, periodic_id="takeover")
    @app.task(name="syncd.takeover", queue=QUEUE, queueing_lock="syncd.takeover")
    async def takeover(timestamp: int) -> None:
        """Runs again the jobs of workers that stopped sending heartbeats. A team whose next
        cycle already waits (its queueing lock taken) has the dead one's job failed instead:
        the waiting cycle does the same work, the journal the dead one left included."""
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds):
            log.warning("job %s (%s %s) of a worker gone silent: taken over", job.id, job.task_name, job.task_kwargs)
            try:
                await app.job_manager.retry_job(job)
            except UniqueViolation:
                await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)

    @app.periodic(cron="17 3 * * *", periodic_id="forget")
    @app.task(name="syncd.forget_jobs", queue=QUEUE, queueing_lock="syncd.forget_jobs")
    async def forget_jobs(timestamp: int) -> None:
        """Forgets the jobs (and their events) that ended over a week ago, daily."""
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_JOBS_HOURS, include_failed=True, include_aborted=True)

    return app


def apply_schema(url: str, app: procrastinate.App) -> None:
    """Applies procrastinate's schema to the database unless it is there; two workers starting
    at once take turns (a transaction advisory lock), so the second finds it applied."""
    import psycopg

    from syncd.state.postgres import advisory_key

    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key("procrastinate schema")])
        found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if found is None or found[0] is None:
            log.info("applying procrastinate's schema to the state's database")
            conn.execute(app.schema_manager.get_schema().encode())
        conn.commit()


def _store(config: Config) -> PostgresStore:
    if not is_url(config.sync.state):
        raise ConfigError(
            [
                'syncd worker needs [sync] state = "postgresql://..." (a state every worker shares); '
                "this config's state is a SQLite file: run `syncd run` instead"
            ]
        )
    try:
        import procrastinate  # noqa: F401 (only to tell its absence clearly)

        from syncd.state.postgres import PostgresStore
    except ImportError as exc:
        raise StateError(
            f"syncd worker needs {exc.name or 'procrastinate'}: install syncd's postgresql extra "
            "(pip install 'syncd[postgresql]')"
        ) from None
    return PostgresStore(str(config.sync.state))


def run_worker(
    config: Config,
    *,
    concurrency: int = 1,
    stalled_seconds: float = STALLED_SECONDS,
    name: str | None = None,
    **options: Any,
) -> None:
    """Runs a worker until SIGTERM or SIGINT (the cycles in flight finish first).

    Migrates the state, applies procrastinate's schema if absent, holds the sync lock shared,
    and runs ``concurrency`` jobs at once (each team cycle in a thread of its own). A worker
    silent for ``stalled_seconds`` (it sends a heartbeat every third of that) is taken for dead.

    Raises:
        ConfigError: the state is a SQLite file.
        StateError: the state cannot be opened, or a sync of the whole state (``syncd run``) holds its lock.
    """
    state = _store(config)
    try:
        with state.worker_lock("worker"):
            app = build_app(config, stalled_seconds=stalled_seconds)
            url = str(config.sync.state)
            apply_schema(url, app)
            worker = name or f"{socket.gethostname()}:{os.getpid()}"
            log.info(
                "worker %s: %d team(s), %d job(s) at once, a tick every %s (cron)",
                worker,
                len(config.teams()),
                concurrency,
                cron_of(config.daemon.interval_seconds),
            )
            app.run_worker(
                queues=[QUEUE],
                concurrency=concurrency,
                name=worker,
                update_heartbeat_interval=stalled_seconds / 3,
                stalled_worker_timeout=stalled_seconds,
                **options,
            )
    finally:
        state.close()
    log.info("worker stopped at %s", datetime.now(UTC).isoformat(timespec="seconds"))

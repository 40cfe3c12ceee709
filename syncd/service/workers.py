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
- The feeds, on the same schedule as the tick: one worker renders each from Kizen and the state
  and saves it there if its bytes changed (:func:`syncd.service.feed.refresh_feed`).
- A webhook's logged activity defers :func:`written_back`: the team of the paired activity gets a
  cycle (under its lock; every team when the activity is not syncd's), which writes it back.
- Ended jobs are forgotten after a week (daily), so the queue's tables stay small.
- What belongs to no source (pairings whose calendar copies are all gone, pruning) is kept by
  the cycles of one team only, the first by name, so no two workers do it at once.

Each worker also serves (``[daemon] host`` and ``port``, or ``syncd worker --port``) what the daemon
serves, from the shared state, so a load balancer may send any request to any of them: the feeds as
saved (the same bytes, ETag and Last-Modified from each), the status page (the same facts; its form
tokens under a key derived from the status secret, so any worker accepts another's form),
``/healthz`` from the runs the state records, ``/metrics`` of the worker's own process (the team
cycles it ran, counted as the daemon counts its cycles), and the webhook.

A worker holds the state's sync lock shared for its whole life: workers run side by side, and a
``syncd run`` of the whole state is refused while any runs (and a worker while it runs).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncd.config import Config
from syncd.errors import ConfigError, StateError
from syncd.state import is_url

if TYPE_CHECKING:
    import procrastinate

    from syncd.service.feed import ComponentCache
    from syncd.service.web import Health, Metrics, WebApp
    from syncd.state import Store
    from syncd.state.postgres import PostgresStore
    from syncd.sync.report import Report

log = logging.getLogger(__name__)

QUEUE = "syncd"
SYNC_TEAM = "syncd.sync_team"
LOGGED = "syncd.logged"
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
    config: Config,
    team: str,
    *,
    reconcile: bool = False,
    clock: Callable[[], datetime] | None = None,
    metrics: Metrics | None = None,
) -> Report | None:
    """One cycle of a team's sources, holding the team's lock in the state; ``reconcile`` (the
    daily reconciliation) also finds the team's calendars anew; counted into ``metrics`` (the
    worker's ``/metrics``), if given.

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
                took = time.perf_counter() - began
                log.info("team %s: %d source(s) in %.1f s", team, len(sources), took)
                if metrics is not None:
                    metrics.count(report, sources, cycle.clock(), took)
                return report
            finally:
                cycle.close()
                close()
    finally:
        state.close()


def written_back(config: Config, logged_id: str) -> str | None:
    """The team whose cycle writes back a logged activity (a webhook's): that of its paired
    scheduled activity's calendar copy. None: Kizen cannot say which (not syncd's activity, or
    not readable now), and every team gets a cycle, as the daemon's poll does."""
    from syncd.errors import KizenError
    from syncd.state.postgres import PostgresStore
    from syncd.wiring import kizen_client

    state = PostgresStore(str(config.sync.state))
    try:
        kizen, close = kizen_client(config, holds=state)
        try:
            scheduled = kizen.get_logged(logged_id).scheduled_activity_id
        except KizenError as error:
            log.warning("logged activity %s: not read (%s); every team gets a cycle", logged_id, error)
            return None
        finally:
            close()
        pairing = state.pairing_of(str(scheduled)) if scheduled is not None else None
        source = pairing.lead_source if pairing is not None else None
        teams = {name: team for team, names in config.teams().items() for name in names}
        return teams.get(source) if source is not None else None
    finally:
        state.close()


def refresh_feeds(config: Config, caches: dict[str, ComponentCache], metrics: Metrics | None = None) -> None:
    """Renders every feed of the config and saves those whose bytes changed (``caches``: each
    feed's components, kept from one tick to the next); one that cannot be rendered keeps what
    the state holds (logged, counted into ``metrics``, and tried again at the next tick)."""
    from syncd.errors import unforeseen
    from syncd.service.feed import ComponentCache, refresh_feed
    from syncd.state.postgres import PostgresStore
    from syncd.sync.report import failure_kind
    from syncd.wiring import kizen_client

    state = PostgresStore(str(config.sync.state))
    try:
        kizen, close = kizen_client(config, holds=state)
        try:
            for feed in config.feeds:
                cache = caches.setdefault(feed.name, ComponentCache(config.sync.written_marker))
                try:
                    refresh_feed(config, state, kizen, feed, cache, _now())
                except Exception as error:  # noqa: BLE001 (a feed keeps its last good content)
                    log.error("feed %s not refreshed: %s", feed.name, unforeseen(error))
                    log.debug("the feed's traceback", exc_info=True)
                    if metrics is not None:
                        metrics.failures.labels(component="feed", kind=failure_kind(error)).inc()
        finally:
            close()
    finally:
        state.close()


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(
    config: Config, *, stalled_seconds: float = STALLED_SECONDS, metrics: Metrics | None = None
) -> procrastinate.App:
    """The procrastinate app of a config: its connector on the state's database, its tasks (the
    team cycles counted into ``metrics``, if given)."""
    import procrastinate
    from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
    from procrastinate.jobs import Status

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=str(config.sync.state)))
    cron = cron_of(config.daemon.interval_seconds)
    caches: dict[str, ComponentCache] = {}  # each feed's components, from one rendering to the next

    @app.task(name=SYNC_TEAM, queue=QUEUE)
    def sync_team_task(team: str, reconcile: bool = False) -> None:
        sync_team(config, team, reconcile=reconcile, metrics=metrics)

    async def defer_all(reconcile: bool, teams: Iterable[str] | None = None) -> None:
        """Defers one cycle per team (a team whose cycle of that kind already waits gets no second one)."""
        for team in config.teams() if teams is None else teams:
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

    @app.periodic(cron=cron, periodic_id="feeds")
    @app.task(name="syncd.feeds", queue=QUEUE, queueing_lock="syncd.feeds", lock="syncd.feeds")
    def feeds(timestamp: int) -> None:
        refresh_feeds(config, caches, metrics)

    @app.task(name=LOGGED, queue=QUEUE)
    async def logged(logged_id: str) -> None:
        """A webhook's logged activity: a cycle of the team that writes it back."""
        team = await asyncio.to_thread(written_back, config, logged_id)
        await defer_all(reconcile=False, teams=None if team is None else [team])

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


def health_of(config: Config, state: Store, started: datetime, now: datetime) -> Health:
    """``/healthz`` from the runs the state records, whichever worker ran them: a source is stale
    when no run of it ended ok for three intervals (counted from ``started`` before the first)."""
    from syncd.service.web import Health, SourceHealth

    stale_after = timedelta(seconds=3 * config.daemon.interval_seconds)
    runs, successes, kizen = state.last_runs(), state.last_successes(), state.component("kizen")

    def entry(success: datetime | None, error: str | None) -> SourceHealth:
        return SourceHealth(success, error, now - (success or started) > stale_after)

    sources = {}
    for source in config.sources:
        last = runs.get(source.name)
        failed = last is not None and last["status"] not in ("ok", "running")
        error = (last["errors"] or [last["status"]])[0] if last is not None and failed else None
        sources[source.name] = entry(successes.get(source.name), error)
    found = entry(kizen.last_success, kizen.last_error) if kizen is not None else entry(None, None)
    return Health(found, sources)


def web_app(config: Config, state: Store, queue: procrastinate.App, started: datetime, metrics: Metrics) -> WebApp:
    """What a worker serves, all of it from the shared state (the module's docstring says what)
    but ``metrics``, the worker's own; a webhook defers :data:`LOGGED` through ``queue``."""
    from syncd.model import Policy
    from syncd.service.feed import SavedFeeds
    from syncd.service.page import StatusPage
    from syncd.service.web import WebApp
    from syncd.status import facts

    secret = config.status_secret()
    key = hashlib.sha256(b"syncd status page form tokens\0" + secret.encode()).digest() if secret else None

    def on_logged(logged_id: str) -> None:
        queue.configure_task(LOGGED, queue=QUEUE).defer(logged_id=logged_id)

    def settle(conflict_id: int, keep: str) -> None:
        state.resolve_conflict(conflict_id, Policy.keeping(keep))

    return WebApp(
        feeds=config.feed_tokens(),
        render=SavedFeeds(state),
        webhook_secret=config.daemon.webhook_secret(),
        on_logged=on_logged,
        health=lambda: health_of(config, state, started, _now()),
        metrics=metrics,
        page=StatusPage(lambda: facts(config, state), settle, key=key),
        status_secret=secret,
    )


def run_worker(
    config: Config,
    *,
    concurrency: int = 1,
    stalled_seconds: float = STALLED_SECONDS,
    name: str | None = None,
    port: int | None = None,
    **options: Any,
) -> None:
    """Runs a worker until SIGTERM or SIGINT (the cycles in flight finish first).

    Migrates the state, applies procrastinate's schema if absent, holds the sync lock shared,
    serves on ``[daemon] host`` and ``port`` (``port`` given: that one instead), and runs
    ``concurrency`` jobs at once (each team cycle in a thread of its own). A worker
    silent for ``stalled_seconds`` (it sends a heartbeat every third of that) is taken for dead.

    Raises:
        ConfigError: the state is a SQLite file.
        StateError: the state cannot be opened, or a sync of the whole state (``syncd run``) holds its lock.
        PortUnavailable: the port to serve on is in use or cannot be listened on.
    """
    from syncd.service.serving import LoopbackServer
    from syncd.service.web import Metrics

    state = _store(config)
    try:
        with state.worker_lock("worker"), ExitStack() as serving:
            metrics = Metrics()
            app = build_app(config, stalled_seconds=stalled_seconds, metrics=metrics)
            url = str(config.sync.state)
            apply_schema(url, app)
            queue = build_app(config).open()  # the web side's own (synchronous) connections
            serving.callback(queue.close)
            where = config.daemon.port if port is None else port
            server = LoopbackServer(
                web_app(config, state, queue, _now(), metrics), config.daemon.host, where, setting="syncd worker --port"
            )
            server.start()
            serving.callback(server.stop)
            worker = name or f"{socket.gethostname()}:{os.getpid()}"
            log.info(
                "worker %s: %d team(s), %d job(s) at once, a tick every %s (cron); serving on %s",
                worker,
                len(config.teams()),
                concurrency,
                cron_of(config.daemon.interval_seconds),
                server.url,
            )
            print(f"syncd worker {worker} on {server.url}", flush=True)
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

"""``syncd run``: the same cycles as ``run --once``, on a schedule, behind one HTTP server (feeds,
webhook, health, metrics and the status page, whose reads and settlements open the state store
as ``syncd status`` and ``syncd conflicts resolve`` do).

APScheduler (3.x) fires one cycle of every source each interval (with jitter, missed runs
coalesced), so an interval costs one Kizen poll and one read of each collection however many sources
there are, and a periodic full reconciliation. Jobs only queue work: one worker (the main thread)
runs the cycles one at a time, webhook write-backs included, so no two actions ever touch one
pairing at once. A source that keeps failing backs off (doubling, up to an hour) without holding the
others up: the cycles leave it unread (its pairings wait) until its time comes. Kizen has a health
of its own: a cycle in which a step could not use Kizen is no success for any source it covered
(their ``last_success`` and ``runs{status="ok"}`` stay put), and ``/healthz`` answers 503 once Kizen
has gone three intervals without one. SIGTERM or SIGINT lets the action in flight finish, then the
daemon settles and exits 0. SIGHUP reloads the config file and its mapping files between cycles (see
``Daemon.reload``). The state store's lock is held for the daemon's whole life. Under systemd
(``Type=notify``) it tells READY=1 once it serves and its first cycles are queued, a STATUS= line
per cycle, STOPPING=1 when told to stop, and pings the watchdog from the worker loop only, so a
worker stuck in one cycle longer than ``WatchdogSec`` gets the daemon restarted.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from syncd.calendar.connectors import Source
from syncd.calendar.mapping import load_rules
from syncd.config import Config, load
from syncd.errors import ConfigError, PortUnavailable, StateError, SyncdError, unforeseen
from syncd.model import Policy
from syncd.runner import Cycle
from syncd.service.feed import ComponentCache, refresh_feed
from syncd.service.notify import notify, watchdog_interval
from syncd.service.page import StatusPage
from syncd.service.serving import LoopbackServer
from syncd.service.web import Health, Metrics, SourceHealth, WebApp
from syncd.state import RenderedFeed, open_store
from syncd.status import facts
from syncd.sync.report import Report, failure_kind
from syncd.wiring import feed_client, kizen_client

log = logging.getLogger(__name__)

POLL = "kizen"
RECONCILE = "*reconcile"  # a full cycle that also finds every source's calendars anew (no source has a '*')
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class _Health:
    last_success: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    resume_at: datetime | None = None


@dataclass
class _Feed:
    cache: ComponentCache
    rendered: RenderedFeed | None  # what is served: as saved in the state, until a refresh changes it


class Daemon:
    """One business's sync service."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        path: Path | None = None,
    ) -> None:
        """``path``: the config file, read again on SIGHUP (without it a SIGHUP is only logged)."""
        self.config = config
        self.path = path
        self.clock = clock
        self.started = clock()
        self.state = open_store(config.sync.state)
        self.kizen, self._close_kizen = kizen_client(config)
        self.metrics = Metrics()
        self.connectors: dict[str, Source] = {}
        self.http = feed_client()  # the process's one client for ICS feeds
        self.health = {s.name: _Health() for s in config.sources}
        self.kizen_health = _Health()
        self.feeds = {f.name: self._saved_feed(f.name) for f in config.feeds}
        self.stop = threading.Event()
        self._reload = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._work: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._time_kizen_requests()
        interval = timedelta(seconds=config.daemon.interval_seconds)
        self._stale_after = 3 * interval
        self.app = WebApp(
            feeds=config.feed_tokens(),
            render=self._render,
            webhook_secret=config.daemon.webhook_secret(),
            on_logged=lambda _logged_id: self.enqueue(POLL),  # re-read: the poll finds it and writes it back
            health=self._health,
            metrics=self.metrics,
            page=StatusPage(self._facts, self._settle),
            status_secret=config.status_secret(),
        )

    def _time_kizen_requests(self) -> None:
        """Every Kizen request's latency into the metrics, through the client's event hooks."""

        def started(request: httpx.Request) -> None:
            request.extensions["syncd_started"] = time.perf_counter()

        def answered(response: httpx.Response) -> None:
            began = response.request.extensions.get("syncd_started")
            if began is not None:
                self.metrics.kizen.labels(method=response.request.method).observe(time.perf_counter() - began)

        hooks = self.kizen.http.event_hooks
        self.kizen.http.event_hooks = {
            "request": [*hooks["request"], started],
            "response": [*hooks["response"], answered],
        }

    # --- running ------------------------------------------------------------------------------------

    def run(self) -> None:
        with self.state.lock("run (daemon)"):
            try:  # binds at once: a port in use stops the start, one line and exit 2
                server = LoopbackServer(
                    self.app, self.config.daemon.host, self.config.daemon.port, setting="[daemon] port"
                )
            except PortUnavailable:
                self.close()
                raise
            scheduler = self._scheduler = BackgroundScheduler(timezone=UTC)
            self._schedule(set())
            previous = {sig: signal.signal(sig, self._interrupted) for sig in (signal.SIGTERM, signal.SIGINT)}
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
            server.start()
            scheduler.start()
            log.info("syncd serving on %s; %d source(s)", server.url, len(self.config.sources))
            print(f"syncd daemon on {server.url}", flush=True)
            notify("READY=1", f"STATUS=serving on {server.url}; {len(self.config.sources)} source(s)")
            try:
                self.work()
            finally:
                scheduler.shutdown(wait=False)
                server.stop()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self.close()

    def _schedule(self, known: set[str]) -> None:
        """(Re)places the jobs: one cycle of every source each interval, so one Kizen poll and one
        read of each collection per interval however many sources there are, and the periodic
        reconciliation. A source not in ``known`` (a first start, a source a reload added) is
        synced at once."""
        assert self._scheduler is not None
        settings = self.config.daemon
        every = IntervalTrigger(seconds=settings.interval_seconds, jitter=settings.jitter_seconds or None)
        for job in self._scheduler.get_jobs():
            if job.id not in (POLL, "reconcile"):
                job.remove()  # a job of its own per source, as an older syncd scheduled
        first = {} if {s.name for s in self.config.sources} <= known else {"next_run_time": self.clock()}
        self._scheduler.add_job(
            self.enqueue, every, args=[POLL], id=POLL, coalesce=True, replace_existing=True, **first
        )
        reconcile = IntervalTrigger(hours=settings.reconcile_hours)
        self._scheduler.add_job(
            self.enqueue, reconcile, args=[RECONCILE], id="reconcile", coalesce=True, replace_existing=True
        )

    def enqueue(self, job: str) -> None:
        """Queues a cycle (a source's, or the Kizen poll's) unless the same one is waiting."""
        with self._lock:
            if job in self._queued:
                return
            self._queued.add(job)
        self._work.put(job)

    def work(self) -> None:
        """The one worker: runs queued cycles in order until told to stop, pinging the watchdog."""
        every = watchdog_interval()
        ping = time.monotonic()
        while not self.stop.is_set():
            if every is not None and time.monotonic() >= ping:
                notify("WATCHDOG=1")
                ping = time.monotonic() + every
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            try:
                job = self._work.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard(job)
            if not self.stop.is_set():
                report = self.cycle(None if job in (POLL, RECONCILE) else job, reconcile=job == RECONCILE)
                outcome = "done" if report is not None else "skipped or failed"
                notify(f"STATUS={job} cycle {outcome} at {self.clock():%Y-%m-%dT%H:%M:%SZ}")

    def cycle(self, only: str | None, *, reconcile: bool = False) -> Report | None:
        """One cycle, with its source's backoff, health and metrics; a crash is logged, not fatal.

        ``reconcile``: the periodic full reconciliation, which also finds the calendars anew.
        """
        now = self.clock()
        if only is not None:
            health = self.health.get(only)
            if health is None:  # queued before a reload took its source away
                return None
            if health.resume_at is not None and now < health.resume_at:
                return None
        resting = frozenset(
            name for name, h in self.health.items() if only is None and h.resume_at is not None and now < h.resume_at
        )
        began = self.clock()
        cycle = Cycle(
            self.config,
            self.state,
            self.kizen,
            clock=self.clock,
            connectors=self.connectors,
            http=self.http,
            stop=self.stop,
            skip=resting,
        )
        try:
            report = cycle.run(only=only, reconcile=reconcile)
        except SyncdError as error:  # foreseen (the state store full, or locked too long): one line
            log.error("sync cycle failed: %s", error)
            self.metrics.errors.labels(kind="cycle").inc()
            component = "state" if isinstance(error, StateError) else "cycle"
            self.metrics.failures.labels(component=component, kind=type(error).__name__).inc()
            return None
        except Exception as error:  # noqa: BLE001 (the daemon outlives one cycle's bug; the next one retries)
            log.error("sync cycle failed: %s: %s", type(error).__name__, error)
            log.debug("the failed cycle's traceback", exc_info=True)
            self.metrics.errors.labels(kind="cycle").inc()
            self.metrics.failures.labels(component="cycle", kind="unexpected").inc()
            return None
        self._account(report, only, now, (self.clock() - began).total_seconds(), resting)
        if only is None:
            self.refresh_feeds()
        return report

    def _account(
        self, report: Report, only: str | None, now: datetime, seconds: float, resting: frozenset[str] = frozenset()
    ) -> None:
        """Health and metrics of one cycle: a source succeeds only if it was read and Kizen used
        (one ``resting``, backing off, was not read: its health stays as it was)."""
        read = [s.name for s in self.config.sources if only in (None, s.name) and s.name not in resting]
        self.metrics.count(report, read, now, seconds)
        kizen = self.kizen_health
        if report.kizen_failures:
            kizen.failures, kizen.last_error = kizen.failures + 1, report.kizen_error
        else:
            kizen.failures, kizen.last_success = 0, now
        for name in read:
            health = self.health[name]
            if name in report.failed_sources or report.kizen_failures:
                health.failures += 1
                health.last_error = report.failed_sources.get(name) or report.kizen_error
                if name in report.failed_sources:  # the source's own failure: rest it (Kizen's is not its)
                    backoff = min(
                        timedelta(seconds=self.config.daemon.interval_seconds) * 2**health.failures, MAX_BACKOFF
                    )
                    health.resume_at = now + backoff
            else:
                health.failures, health.resume_at, health.last_success = 0, None, now

    def refresh_feeds(self) -> None:
        """Renders every feed from Kizen and the state, and saves those whose bytes changed; a feed
        that cannot be rendered keeps what it served, and the failure is logged and counted."""
        for feed in self.config.feeds:
            kept = self.feeds[feed.name]
            try:
                changed = refresh_feed(self.config, self.state, self.kizen, feed, kept.cache, self.clock())
                kept.rendered = changed or kept.rendered
            except Exception as error:  # noqa: BLE001 (a feed keeps its last good content)
                log.error("feed %s not refreshed: %s", feed.name, unforeseen(error))
                log.debug("the feed's traceback", exc_info=True)
                self.metrics.failures.labels(component="feed", kind=failure_kind(error)).inc()

    def _saved_feed(self, name: str) -> _Feed:
        return _Feed(ComponentCache(self.config.sync.written_marker), self.state.feed(name))

    def _render(self, name: str) -> RenderedFeed | None:
        """The feed as the last refresh left it (a 304 costs a comparison); before the first
        refresh, as the state saved it (None if it never was)."""
        return self.feeds[name].rendered

    def _source_health(self) -> dict[str, SourceHealth]:
        return {name: self._entry(health) for name, health in self.health.items()}

    def _health(self) -> Health:
        return Health(self._entry(self.kizen_health), self._source_health())

    def _entry(self, health: _Health) -> SourceHealth:
        """Stale: no success for three intervals (counted from the start before the first)."""
        last = health.last_success or self.started
        return SourceHealth(health.last_success, health.last_error, self.clock() - last > self._stale_after)

    def _facts(self) -> dict[str, Any]:
        """``syncd status``'s facts for the status page: its own read-only store, as ``status``
        opens one (the daemon's connection belongs to the worker thread)."""
        state = open_store(self.config.sync.state, read_only=True)
        try:
            return facts(self.config, state)
        finally:
            state.close()

    def _settle(self, conflict_id: int, keep: str) -> None:
        """The status page's decision, recorded as ``syncd conflicts resolve`` records it; the
        next cycle applies it."""
        state = open_store(self.config.sync.state)
        try:
            state.resolve_conflict(conflict_id, Policy.keeping(keep))
        finally:
            state.close()

    def reload(self) -> None:
        """Reads the config file and its mappings again, between cycles (asked for by SIGHUP).

        Sources, sync settings, feeds, the schedule and the webhook secret take effect at once; a
        new source is synced at once. A config that does not load (or whose mappings do not) is
        refused with one ERROR line and the running one kept. What the daemon holds for its whole
        life (its host and port, the state file and its lock, the Kizen client) keeps its old
        value, with a WARNING that a restart is needed.
        """
        if self.path is None:
            log.warning("SIGHUP ignored: no config file to read again")
            return
        notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            self._reread(self.path)
        finally:
            notify("READY=1")

    def _reread(self, path: Path) -> None:
        try:
            new = load(path)
            load_rules(list(new.sync.mappings))
            tokens, secret, status = new.feed_tokens(), new.daemon.webhook_secret(), new.status_secret()
        except ConfigError as error:
            log.error("config not reloaded (the running one is kept): %s", "; ".join(error.problems))
            return
        old = self.config
        fixed = [
            name
            for name, was, now in (
                ("[daemon] host", old.daemon.host, new.daemon.host),
                ("[daemon] port", old.daemon.port, new.daemon.port),
                ("[sync] state", old.sync.state, new.sync.state),
                ("[kizen]", old.kizen, new.kizen),
            )
            if was != now
        ]
        if fixed:
            log.warning("config reloaded, but %s changed: kept until a restart", ", ".join(fixed))
        new = new.model_copy(
            update={
                "kizen": old.kizen,
                "sync": new.sync.model_copy(update={"state": old.sync.state}),
                "daemon": new.daemon.model_copy(update={"host": old.daemon.host, "port": old.daemon.port}),
            }
        )
        before = {s.name: s for s in old.sources}
        for name in list(self.connectors):  # a changed or gone source connects anew
            if before.get(name) not in new.sources:
                self.connectors.pop(name).close()
        self.config = new
        self.health = {s.name: self.health.get(s.name) or _Health() for s in new.sources}
        self.feeds = {f.name: self.feeds.get(f.name) or self._saved_feed(f.name) for f in new.feeds}
        self._stale_after = 3 * timedelta(seconds=new.daemon.interval_seconds)
        self.app.renew(feeds=tokens, webhook_secret=secret, status_secret=status)
        if self._scheduler is not None:
            self._schedule(set(before) & {s.name for s in new.sources})
        log.info("config reloaded from %s; %d source(s)", path, len(new.sources))

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        self._reload.set()  # the worker reloads between cycles

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping: finishing the action in flight")
        notify("STOPPING=1", "STATUS=stopping: finishing the action in flight")
        self.stop.set()

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.http.close()
        self._close_kizen()
        self.state.close()

"""The daemon's one HTTP server: the feeds, Kizen's webhook, health and metrics (DESIGN 7 and 8).

A WSGI app (Werkzeug), served on loopback by :class:`syncd.service.serving.LoopbackServer` (waitress).

- ``GET /feeds/<token>.ics``: the token is a secret compared in constant time against every
  feed's; a wrong token and a missing feed get the same 404. gzip when asked, a strong ETag per
  representation, If-None-Match (``*`` too) and If-Modified-Since -> 304, Last-Modified; no
  Accept header needed.
- ``POST /webhooks/kizen/<secret>``: Kizen's ``activity.logged``. Kizen sets only a URL per
  activity type, so the secret rides in the path; it is compared in constant time and never
  logged. The body is a hint: only the logged activity's id is taken, and the daemon re-reads it.
- ``GET /status/<secret>`` and its form's ``POST``: the status page (:mod:`syncd.service.page`),
  behind a secret of its own, compared as the webhook's; a wrong one, or no page configured, is
  the same 404 as any unknown path.
- ``GET /healthz``: ``{"kizen": {...}, "sources": {name: {...}}}``, each entry's last success,
  last error and staleness; 503 when Kizen or a source is stale (no success for three intervals).
  It is unauthenticated, so the last error is only a category ("unreachable", "refused
  credentials", ...): the whole text, with hosts and ports, is in the logs and ``syncd status``.
- ``GET /metrics``: Prometheus text (OpenMetrics if the Accept header asks): runs, actions,
  failures by component and kind, each component's last-success time, calendar requests by
  source, ``syncd_build_info{version}``; units in the names (``_seconds``, ``_total``); no
  ``*_created`` series.

No input makes it answer 500 or raise into the server (waitress would log the path, and with
it the webhook's secret): a body too deep for the JSON parser is a 400, and anything unforeseen
is logged (redacted) and answered 500 without the path.
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd import __version__
from syncd.service.page import StatusPage
from syncd.state import RenderedFeed
from syncd.sync.report import Report, failure_kind

log = logging.getLogger(__name__)

_ROUTES = Map(
    [
        Rule("/feeds/<token>.ics", endpoint="feed", methods=["GET"]),
        Rule("/webhooks/kizen/<secret>", endpoint="webhook", methods=["POST"]),
        Rule("/status/<secret>", endpoint="status", methods=["GET", "POST"]),
        Rule("/healthz", endpoint="health", methods=["GET"]),
        Rule("/metrics", endpoint="metrics", methods=["GET"]),
    ]
)
MAX_WEBHOOK_BYTES = 64 * 1024


@dataclass(frozen=True)
class SourceHealth:
    last_success: datetime | None
    last_error: str | None
    stale: bool


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` shows: Kizen beside the sources (so no source name can shadow it)."""

    kizen: SourceHealth
    sources: Mapping[str, SourceHealth]

    @property
    def ok(self) -> bool:
        return not (self.kizen.stale or any(h.stale for h in self.sources.values()))


class Metrics:
    """The daemon's counters, in a registry of their own.

    ``syncd_failures_total{component, kind}``: component is ``kizen`` (kind ``unavailable``,
    ``auth``, ``rejected``, ``unexpected``), ``source`` (``unreadable``, ``stopped``), ``item``
    (``quarantined``, ``invalid``, ``precondition``, or a Kizen kind) or ``state``/``cycle`` (a cycle that
    ended in an error). ``syncd_last_success_timestamp_seconds{component, name}``: Unix time of
    the last cycle in which a source was synced, or no step failed to use Kizen.
    """

    def __init__(self) -> None:
        # process-wide: the *_created series are noise to an operator
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.runs = Counter("syncd_runs", "Sync cycles run", ["source", "status"], registry=self.registry)
        self.actions = Counter("syncd_actions", "Actions applied", ["kind"], registry=self.registry)
        self.errors = Counter("syncd_errors", "Items or sources that failed", ["kind"], registry=self.registry)
        self.conflicts = Counter("syncd_conflicts", "Conflicts recorded", registry=self.registry)
        self.failures = Counter(
            "syncd_failures", "Failures by component and kind", ["component", "kind"], registry=self.registry
        )
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When a component last succeeded (Unix time)",
            ["component", "name"],
            registry=self.registry,
        )
        self.duration = Histogram("syncd_run_seconds", "Cycle duration", registry=self.registry)
        self.kizen = Histogram(
            "syncd_kizen_request_seconds", "Kizen request latency", ["method"], registry=self.registry
        )
        self.calendar_requests = Counter(
            "syncd_calendar_requests", "Requests to the calendars (CalDAV, ICS)", ["source"], registry=self.registry
        )
        self.build = Info("syncd_build", "The running syncd", registry=self.registry)
        self.build.info({"version": __version__})
        self.calendar_read = Histogram(
            "syncd_calendar_read_seconds", "Time to read a source's calendars", ["source"], registry=self.registry
        )

    def count(self, report: Report, read: Iterable[str], now: datetime, seconds: float) -> None:
        """One cycle's counts: its duration, Kizen's and each ``read`` source's outcome (a source
        fails with its own failure or Kizen's), the failures by component and kind, the requests
        and the changes made."""
        self.duration.observe(seconds)
        for failure in report.kizen_failures:
            self.failures.labels(component="kizen", kind=failure.kind).inc()
        if not report.kizen_failures:
            self.last_success.labels(component="kizen", name="kizen").set(now.timestamp())
        for name in read:
            if name in report.failed_sources or report.kizen_failures:
                self.runs.labels(source=name, status="failed").inc()
                if name in report.failed_sources:
                    self.failures.labels(component="source", kind="unreadable").inc()
            else:
                self.runs.labels(source=name, status="ok").inc()
                self.last_success.labels(component="source", name=name).set(now.timestamp())
        if report.stopped:
            self.failures.labels(component="source", kind="stopped").inc(len(report.stopped))
        for outcome in report.failures:
            kind = failure_kind(outcome.error) if outcome.error is not None else "failed"
            self.failures.labels(component="item", kind=kind).inc()
        if report.quarantined:
            self.failures.labels(component="item", kind="quarantined").inc(len(report.quarantined))
        for name, requests in report.source_requests.items():
            self.calendar_requests.labels(source=name).inc(requests)
        for name, took in report.calendar_seconds.items():
            self.calendar_read.labels(source=name).observe(took)
        changes = report.changes()
        for kind, number in changes.items():
            self.actions.labels(kind=kind.lower()).inc(number)
        self.errors.labels(kind="item").inc(len(report.failures))
        self.conflicts.inc(changes.get("RecordConflict", 0))


class WebApp:
    """The WSGI app; what it serves comes from the callables it is given."""

    def __init__(
        self,
        *,
        feeds: Mapping[str, str],
        render: Callable[[str], RenderedFeed | None],
        webhook_secret: str | None,
        on_logged: Callable[[str], None],
        health: Callable[[], Health],
        metrics: Metrics,
        page: StatusPage | None = None,
        status_secret: str | None = None,
    ) -> None:
        """``feeds`` maps each feed's token to its name; ``render`` gives a feed's bytes (None before
        its first rendering: 503, to be asked again, rather than an empty feed that would make
        the subscribed calendars drop every event); ``on_logged`` takes a logged activity id;
        the status page is served only with both ``page`` and ``status_secret``."""
        self._feeds = [(token.encode(), name) for token, name in feeds.items()]
        self._render = render
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._page = page
        self._status_secret = status_secret.encode() if status_secret else None
        self._on_logged = on_logged
        self._health_of = health
        self.metrics = metrics
        self._gzip: dict[str, bytes] = {}  # a feed's ETag -> its gzipped bytes
        self._gzip_lock = threading.Lock()  # waitress serves requests on several threads

    def renew(self, *, feeds: Mapping[str, str], webhook_secret: str | None, status_secret: str | None = None) -> None:
        """A reloaded config's feed tokens, webhook and status secrets (each replaced whole, so a
        request sees the old or the new, never a mix)."""
        self._feeds = [(token.encode(), name) for token, name in feeds.items()]
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._status_secret = status_secret.encode() if status_secret else None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            request = Request(environ)
            endpoint, args = _ROUTES.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request, **args)
        except HTTPException as exc:
            response = Response(exc.description or exc.name, status=exc.code, mimetype="text/plain")
        except Exception:  # a bug: told in the log, never raised to the server (it logs the path)
            log.exception("the HTTP app failed on a request")
            response = Response("internal error", status=500, mimetype="text/plain")
        answer: Iterable[bytes] = response(environ, start_response)
        return answer

    def _feed(self, request: Request, token: str) -> Response:
        """The feed, gzipped when the client accepts it; 304 when the client's copy is current.

        Each representation has its own strong ETag (the gzipped one ends ``-gzip"``), with
        ``Vary: Accept-Encoding``. A client's copy is current when If-None-Match names either
        representation's ETag or is ``*``, or, without If-None-Match, when If-Modified-Since is
        not before Last-Modified (RFC 9110 13.2.2: If-None-Match wins).
        """
        name = self._feed_named(token)
        if name is None:
            raise NotFound()  # a wrong token and a missing feed: the same answer
        feed = self._render(name)
        if feed is None:
            return Response(
                "the feed is not rendered yet", status=503, headers={"Retry-After": "60"}, mimetype="text/plain"
            )
        gzipped = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
        etag = _gzip_etag(feed.etag) if gzipped else feed.etag
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
            "Cache-Control": "no-cache",
            "Vary": "Accept-Encoding",
        }
        if _current(request, feed):
            return Response(status=304, headers=headers)
        body = self._gzipped(feed) if gzipped else feed.body
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers={**headers, "Content-Type": "text/calendar; charset=utf-8"})

    def _gzipped(self, feed: RenderedFeed) -> bytes:
        """The feed's gzip bytes, compressed once per change of the feed (mtime 0: the same bytes)."""
        with self._gzip_lock:
            if feed.etag not in self._gzip:
                if len(self._gzip) >= 16:
                    self._gzip.clear()
                self._gzip[feed.etag] = gzip.compress(feed.body, mtime=0)
            return self._gzip[feed.etag]

    def _feed_named(self, token: str) -> str | None:
        given = token.encode()
        found = None
        for secret, name in self._feeds:  # every token compared, so timing tells nothing
            if hmac.compare_digest(given, secret):
                found = name
        return found

    def _webhook(self, request: Request, secret: str) -> Response:
        if self._secret is None or not hmac.compare_digest(secret.encode(), self._secret):
            raise NotFound()  # the same answer as any unknown path
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            return Response("too large", status=413, mimetype="text/plain")
        try:
            body = json.loads(request.get_data(cache=False) or b"{}")
        except (ValueError, RecursionError):  # not JSON, bad UTF-8, or nested past the parser's depth
            return Response("not JSON", status=400, mimetype="text/plain")
        logged = _logged_id(body)
        if logged is None:
            return Response("no logged activity id", status=400, mimetype="text/plain")
        self._on_logged(logged)
        return Response("accepted", status=202, mimetype="text/plain")

    def _status(self, request: Request, secret: str) -> Response:
        expected, page = self._status_secret, self._page
        if expected is None or page is None or not hmac.compare_digest(secret.encode(), expected):
            raise NotFound()  # the same answer as any unknown path
        if request.method == "POST":
            return page.post(request)
        return page.get(request, [(name, token.decode()) for token, name in self._feeds])

    def _health(self, request: Request) -> Response:
        health = self._health_of()
        body = {"kizen": _entry(health.kizen), "sources": {name: _entry(h) for name, h in health.sources.items()}}
        status = 200 if health.ok else 503
        return Response(json.dumps(body, sort_keys=True), status=status, mimetype="application/json")

    def _metrics(self, request: Request) -> Response:
        """Prometheus text, or OpenMetrics when the scraper's Accept asks for it (as
        prometheus_client's own server negotiates)."""
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(self.metrics.registry), headers={"Content-Type": content_type, "Vary": "Accept"})


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (``gzip`` or ``*``, with a q above 0)."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(quality) > 0
            except ValueError:
                return False
    return False


def _gzip_etag(etag: str) -> str:
    return f'{etag[:-1]}-gzip"'


def _current(request: Request, feed: RenderedFeed) -> bool:
    """Whether the client's copy is the feed as it is now (so the answer is 304)."""
    if "If-None-Match" in request.headers:
        tags = {tag.strip() for tag in request.headers["If-None-Match"].split(",")}
        return "*" in tags or bool(tags & {feed.etag, _gzip_etag(feed.etag)})
    since = request.if_modified_since
    return since is not None and feed.last_modified.replace(microsecond=0) <= since


def _entry(health: SourceHealth) -> dict[str, Any]:
    return {
        "last_success": health.last_success.isoformat() if health.last_success else None,
        "last_error": error_category(health.last_error),
        "stale": health.stale,
    }


_CATEGORIES = (  # the first that matches (lower case) names the error; "failed" when none does
    (("401", "credentials"), "refused credentials"),
    (("403", "access denied"), "access denied"),
    (("certificate", "tls", "ssl"), "TLS failure"),
    (("timed out", "timeout", "deadline", "too slow"), "timed out"),
    (("cannot reach", "cannot fetch", "not reached", "unreachable", "connect"), "unreachable"),
    (("404", "not found", "no calendar"), "not found"),
    (("too large", "too big", "larger than"), "too large"),
    (("private network", "private address", "loopback", "link-local"), "refused address"),
    (("not icalendar", "not valid xml", "not a readable", "unbalanced"), "bad answer"),
    (("answered", "refused a request"), "server error"),
)


# where an error text names a place (a URL, host:port): its digits are no status code
_PLACES = re.compile(r"\S+://\S*|\[[0-9A-Fa-f:.]+\](?::\d+)?|[\w.-]+:\d+")


def error_category(error: str | None) -> str | None:
    """A short category for an error text, for the unauthenticated ``/healthz``.

    The places the text names are left out first, so a port such as 40312 is not read as a 403,
    and a status code counts only as a word of its own."""
    if error is None:
        return None
    text = _PLACES.sub(" ", error).lower()
    for words, category in _CATEGORIES:
        if any(re.search(rf"\b{word}\b", text) if word.isdigit() else word in text for word in words):
            return category
    return "failed"


def _logged_id(body: Any) -> str | None:
    """The logged activity's id from an ``activity.logged`` body (a hint: the daemon re-reads it)."""
    if not isinstance(body, dict):
        return None
    for key in ("logged_activity_id", "id"):
        value = body.get(key)
        if isinstance(value, str) and len(value) <= 64:
            return value
    data = body.get("data")
    return _logged_id(data) if isinstance(data, dict) else None

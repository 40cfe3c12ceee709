"""The ICS feed's render time for 10,000 activities, cold (every component rendered) and warm.

Run: python benchmarks/feed_render.py [--activities N]

Warm means each activity's component bytes are kept and the feed only joins them; one changed
activity re-renders one component. Aim: warm under 200 ms. Then the same feed as the daemon
serves it (its web app on a loopback port): the full answer and the 304 answer to a client whose
copy is current, medians of 200 requests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from syncd.service.feed import ComponentCache, FeedItem, render_feed
from syncd.service.serving import LoopbackServer
from syncd.service.web import Health, Metrics, RenderedFeed, SourceHealth, WebApp

START = datetime(2026, 11, 23, 8, tzinfo=UTC)
TOKEN = "bench-feed-token-aaaaaaaaaaaaaaaaaaaaaaaa"


def items(count: int, moved: int | None = None) -> list[FeedItem]:
    return [
        FeedItem(
            activity_id=f"{n:08d}-0000-4000-8000-000000000000",
            type_name="Meeting" if n % 3 else "Call",
            due=START + timedelta(minutes=37 * n + (60 if n == moved else 0)),
            note=f"Customer call {n}\nAgenda: pricing, next steps; owner review\n\nsyncd: ada/{n:016x}",
            title=f"Customer call {n}",
            minutes=30 if n % 2 else None,
            type_minutes=15,
            logged=n % 10 == 0,
            logged_at=START if n % 10 == 0 else None,
            sequence=n % 4,
            changed_at=START - timedelta(days=1),
        )
        for n in range(count)
    ]


def timed(label: str, work: object) -> float:
    began = time.perf_counter()
    body, _ = work()  # type: ignore[operator]
    seconds = time.perf_counter() - began
    print(f"{label:<32}{seconds * 1000:>8.0f} ms  ({len(body) / 1e6:.1f} MB)")
    return seconds


@contextmanager
def served(data: list[FeedItem]) -> Iterator[str]:
    """The daemon's web app serving ``data`` as one feed, rendered once, on a loopback port: the feed's URL."""
    body, etag = render_feed("team", data, ComponentCache())
    rendered = RenderedFeed(body, etag, START)
    health = Health(SourceHealth(None, None, False), {})
    app = WebApp(
        feeds={TOKEN: "team"},
        render=lambda _name: rendered,
        webhook_secret=None,
        on_logged=lambda _id: None,
        health=lambda: health,
        metrics=Metrics(),
    )
    server = LoopbackServer(app, ident="bench-feed").start()
    try:
        yield f"{server.url}/feeds/{TOKEN}.ics"
    finally:
        server.stop()


def answer_ms(http: httpx.Client, url: str, *, etag: str | None = None, times: int = 200) -> float:
    """The median milliseconds of ``times`` GETs of ``url`` (conditional on ``etag`` when given)."""
    headers = {"If-None-Match": etag} if etag else {}
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        response = http.get(url, headers=headers)
        spent.append(time.perf_counter() - began)
        assert response.status_code == (304 if etag else 200), response.status_code
    return statistics.median(spent) * 1000


def http_answers_ms(data: list[FeedItem]) -> tuple[float, float]:
    """The served feed's full answer and its 304 answer, in median milliseconds."""
    with served(data) as url, httpx.Client(timeout=30) as http:
        etag = http.get(url).headers["ETag"]
        return answer_ms(http, url), answer_ms(http, url, etag=etag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=10_000)
    args = parser.parse_args()
    data = items(args.activities)
    cache = ComponentCache()
    timed("cold (every component)", lambda: render_feed("team", data, cache))
    timed("warm (nothing changed)", lambda: render_feed("team", data, cache))
    changed = items(args.activities, moved=args.activities // 2)
    timed("warm, one activity moved", lambda: render_feed("team", changed, cache))
    full, not_modified = http_answers_ms(data)
    print(f"{'served, full answer':<32}{full:>8.1f} ms  (median of 200)")
    print(f"{'served, 304 answer':<32}{not_modified:>8.1f} ms  (median of 200)")


if __name__ == "__main__":
    main()

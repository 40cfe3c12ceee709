"""The ICS feed's render time for 10,000 activities, cold (every component rendered) and warm.

Run: python benchmarks/feed_render.py [--activities N]

Warm means each activity's component bytes are kept and the feed only joins them; one changed
activity re-renders one component. Aim: warm under 200 ms.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from syncd.service.feed import ComponentCache, FeedItem, render_feed

START = datetime(2026, 11, 23, 8, tzinfo=UTC)


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


if __name__ == "__main__":
    main()

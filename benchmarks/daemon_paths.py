"""The daemon's fast paths, with the daemon as a real process (Radicale and the sandbox on loopback).

Run: PYTHONPATH=. python benchmarks/daemon_paths.py

- the feed's 304 path: a conditional GET with the current ETag, repeated;
- the feed's full answer, for comparison;
- the latency from completing an activity in Kizen (which posts the webhook) to the logged entry
  being in the CalDAV object, the next scheduled poll being a minute away.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.e2e.test_daemon import FEED_TOKEN, daemon_for, one_event, until


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.contextmanager(daemon_for)(Path(tmp), one_event) as running:
        first = until(running.feed)
        etag = first.headers["ETag"]
        with httpx.Client(base_url=running.url, timeout=5) as http:
            full = [_timed(lambda: http.get(f"/feeds/{FEED_TOKEN}.ics")) for _ in range(200)]
            cached = [
                _timed(lambda: http.get(f"/feeds/{FEED_TOKEN}.ics", headers={"If-None-Match": etag}))
                for _ in range(200)
            ]
        print(f"feed, full answer:   median {statistics.median(full) * 1000:6.2f} ms over 200 requests")
        print(f"feed, 304 answer:    median {statistics.median(cached) * 1000:6.2f} ms over 200 requests")
        (activity,) = until(running.activities)
        began = time.perf_counter()
        running.box.user().complete(activity["id"])
        with running.radicale.client("ada") as dav:
            until(lambda: "X-SYNCD-LOGGED-ACTIVITY-ID" in dav.get("/ada/desk/call-1.ics").text, deadline=30)
        print(f"webhook to CalDAV:   {(time.perf_counter() - began) * 1000:6.0f} ms (the next poll was 60 s away)")
        assert running.stop() == 0


def _timed(call: object) -> float:
    began = time.perf_counter()
    response = call()  # type: ignore[operator]
    assert response.status_code in (200, 304)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()

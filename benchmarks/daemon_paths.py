"""The daemon's fast paths, with the daemon as a real process (Radicale and the sandbox on loopback).

Run: PYTHONPATH=. python benchmarks/daemon_paths.py

- the feed's 304 path: a conditional GET with the current ETag, repeated;
- the feed's full answer, for comparison;
- the latency from completing an activity in Kizen (which posts the webhook) to the logged entry
  being in the CalDAV object, the next scheduled poll being a minute away.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # run as a script: the benchmarks' helpers

from benchmarks.feed_render import answer_ms  # noqa: E402
from tests.e2e.test_daemon import FEED_TOKEN, daemon_for, one_event, until  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.contextmanager(daemon_for)(Path(tmp), one_event) as running:
        first = until(running.feed)
        etag = first.headers["ETag"]
        with httpx.Client(base_url=running.url, timeout=5) as http:
            full = answer_ms(http, f"/feeds/{FEED_TOKEN}.ics")
            cached = answer_ms(http, f"/feeds/{FEED_TOKEN}.ics", etag=etag)
        print(f"feed, full answer:   median {full:6.2f} ms over 200 requests")
        print(f"feed, 304 answer:    median {cached:6.2f} ms over 200 requests")
        (activity,) = until(running.activities)
        began = time.perf_counter()
        running.box.user().complete(activity["id"])
        with running.radicale.client("ada") as dav:
            until(lambda: "X-SYNCD-LOGGED-ACTIVITY-ID" in dav.get("/ada/desk/call-1.ics").text, deadline=30)
        print(f"webhook to CalDAV:   {(time.perf_counter() - began) * 1000:6.0f} ms (the next poll was 60 s away)")
        assert running.stop() == 0


if __name__ == "__main__":
    main()

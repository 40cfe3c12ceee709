"""CalDAV requests and wall time per sync cycle, the requests counted at the server.

Run: PYTHONPATH=. python benchmarks/caldav_requests.py [--events N]

Starts Radicale on loopback as the tests do (tests/connectors/radicale.py), seeds a collection of
N events (default 1,000) with ONE bulk request, and times ``CalDAVSource.changes()`` for a first
sync, a cycle with no change, one with 1 change and one with 250 changes; then the same after a
refused sync token, and on the ctag path (sync tokens off). The edits between cycles are made by a
separate client and are not counted. Goal (DESIGN section 5): no change costs 1 request, N changes
at most 2 + ceil(N/100).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.model import CollectionChanges, Cursor
from tests.connectors.conftest import LOOPBACK
from tests.connectors.radicale import Radicale, bulk, expire_sync_tokens, put, quiet, vcalendar, vevent

USER = "bench"


class Cycle:
    """Runs changes() the way the engine would, keeping the cursor and the etags between cycles."""

    def __init__(self, server: Radicale, source: CalDAVSource, url: str) -> None:
        self.server, self.source, self.url = server, source, url
        self.cursor = Cursor()
        self.etags: dict[str, str | None] = {}

    def run(self, label: str, goal: str) -> CollectionChanges:
        mark = self.server.mark()
        began = time.perf_counter()
        changes = self.source.changes(self.url, self.cursor, self.etags)
        seconds = time.perf_counter() - began
        seen = self.server.since(mark)
        if changes.complete:
            kept = {r.location.href for r in changes.changed} | set(changes.unchanged)
            self.etags = {h: e for h, e in self.etags.items() if h in kept}
        for href in changes.deleted:
            self.etags.pop(href, None)
        self.etags.update((r.location.href, r.etag) for r in changes.changed)
        self.cursor = changes.cursor
        kinds = ", ".join(f"{s.method}{'/' + s.report if s.report else ''}" for s in seen[:4])
        kinds += ", ..." if len(seen) > 4 else ""
        print(f"{label:<38} {len(seen):>8} {goal:>6} {seconds:>9.3f} {len(changes.changed):>8}   {kinds}")
        assert changes.requests == len(seen), (changes.requests, len(seen))
        return changes


def edit(server: Radicale, count: int, tag: str) -> None:
    """Changes the first ``count`` events' summaries, one PUT each, outside the count."""
    with server.client(USER) as http:
        for n in range(count):
            put(http, f"/{USER}/big/b{n}.ics", vcalendar(vevent(f"b{n}", f"{tag} {n}")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    quiet()
    with tempfile.TemporaryDirectory() as tmp, Radicale(Path(tmp)) as server:
        with server.client(USER) as http:
            began = time.perf_counter()
            bulk(http, f"/{USER}/big/", (vevent(f"b{n}", f"Event {n}") for n in range(args.events)), name="Big")
            print(f"seeded {args.events} events with 1 request in {time.perf_counter() - began:.2f} s\n")
        url = f"{server.url}/{USER}/big/"
        print(f"{'cycle':<38} {'requests':>8} {'goal':>6} {'seconds':>9} {'fetched':>8}   first requests")
        for sync_tokens in (True, False):
            password = SecretStr("bench-password")
            with CalDAVSource(
                "bench",
                f"{server.url}/{USER}/",
                username=USER,
                password=password,
                sync_tokens=sync_tokens,
                policy=LOOPBACK,
            ) as source:
                cycle = Cycle(server, source, url)
                path = "sync token" if sync_tokens else "ctag (sync tokens off)"
                first_goal = str(2 + math.ceil(args.events / 100)) if sync_tokens else "-"
                cycle.run(f"{path}: first sync", first_goal)
                cycle.run(f"{path}: no change", "1")
                edit(server, 1, f"One {sync_tokens}")
                cycle.run(f"{path}: 1 change", "3")
                edit(server, 250, f"Many {sync_tokens}")
                cycle.run(f"{path}: 250 changes", "5" if sync_tokens else "-")
                if sync_tokens:
                    edit(server, 10, "Expired")
                    expire_sync_tokens(server.folder, f"/{USER}/big/")
                    cycle.run(f"{path}: 10 changes, token expired", "-")
                    cycle.run(f"{path}: no change, fresh token", "1")


if __name__ == "__main__":
    main()

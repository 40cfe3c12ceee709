"""Two ``syncd worker`` processes serve the same things from the shared state: the feed (the same
bytes, ETag and Last-Modified from either), the status page (a form one serves is accepted by the
other), ``/healthz`` from the runs the state records, and the webhook, which defers the cycle of
the team that writes the logged activity back; each one's ``/metrics`` counts the cycles it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from syncd.config import load
from syncd.sandbox import Sandbox
from syncd.service.workers import written_back
from syncd.state.postgres import PostgresStore
from tests.pg import Server
from tests.statuspage import form_token
from tests.workers.fleet import Fleet, until

pytestmark = pytest.mark.timeout(300)

FEED = "feeds/feed-token-of-the-fleet-0123456789abcdef.ics"
STATUS = "status/status-secret-of-the-fleet-0123456789abcdef"
WEBHOOK = "webhooks/kizen/webhook-secret-of-the-fleet-0123456789abcdef"


@pytest.fixture
def fleet(tmp_path: Path, pg_server: Server) -> Iterator[Fleet]:
    url = pg_server.database()
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        server = box.serve()
        fleet = Fleet(tmp_path, box, server.url, url, teams=2, per_team=2, serving=True)
        fleet.write()
        try:
            yield fleet
        finally:
            fleet.close()
            pg_server.drop(url)


def test_two_workers_serve_the_same_feed_page_and_health_and_take_a_webhook(fleet: Fleet) -> None:
    fleet.start("one")
    fleet.start("two")
    one, two = fleet.url("one"), fleet.url("two")
    until(lambda: fleet.synced(times=2), what="every source synced twice")
    until(lambda: httpx.get(f"{one}/{FEED}").status_code == 200, what="the feed rendered")
    until(lambda: b"t0-s0 call 0" in httpx.get(f"{one}/{FEED}").content, what="the feed showing the activities")
    first, second = httpx.get(f"{one}/{FEED}"), httpx.get(f"{two}/{FEED}")
    assert first.content == second.content and first.content.count(b"BEGIN:VEVENT") == sum(fleet.expected().values())
    for header in ("ETag", "Last-Modified"):
        assert first.headers[header] == second.headers[header], header
    current = httpx.get(f"{two}/{FEED}", headers={"If-None-Match": first.headers["ETag"]})
    assert current.status_code == 304  # the copy one worker served is current at the other

    def same_health() -> list[httpx.Response] | None:
        """Both workers' /healthz, when they agree (a cycle may finish between the two requests)."""
        health = [httpx.get(f"{url}/healthz") for url in (one, two)]
        assert [h.status_code for h in health] == [200, 200]
        return health if health[0].json() == health[1].json() else None

    health = until(same_health, deadline=30, what="both workers' /healthz alike")
    assert set(health[0].json()["sources"]) == set(fleet.sources())

    state = PostgresStore(fleet.state)
    try:
        pairing = next(p for p in state.pairings() if p.lead_source == "t1-s1")
        conflict = state.record_conflict(pairing, "due", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "manual")
    finally:
        state.close()
    counted: dict[str, float] = {}  # each source's ok runs, over both workers' /metrics
    for url in (one, two):
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line.startswith("syncd_runs_total{") and 'status="ok"' in line:
                source = line.split('source="', 1)[1].split('"', 1)[0]
                counted[source] = counted.get(source, 0) + float(line.rsplit(" ", 1)[1])
    assert set(counted) == set(fleet.sources()) and all(n >= 2 for n in counted.values()), counted

    page = httpx.get(f"{one}/{STATUS}")
    assert page.status_code == 200 and f'id="conflict-{conflict}"' in page.text
    form = {"token": form_token(page.text), "conflict": str(conflict), "keep": "kizen"}
    answer = httpx.post(f"{two}/{STATUS}", data=form)  # the form one worker served, sent to the other
    assert answer.status_code == 303, answer.text
    state = PostgresStore(fleet.state)
    try:
        assert [(c.status, c.keep) for c in state.conflicts() if c.id == conflict] == [("resolved", "crm")]
    finally:
        state.close()

    activities = [fleet.box.service.get_scheduled(a["id"]) for a in fleet.box.service.list_scheduled({}, 0, 1000)[1]]
    activity = next(a for a in activities if a["note"].startswith("t1-s0 call 0"))
    logged = fleet.box.user().complete(activity["id"], notes="done")
    config = load(fleet.folder / "config.toml")
    assert written_back(config, logged["id"]) == "t1"  # the team whose cycle writes it back
    assert written_back(config, str(uuid4())) is None  # not readable: every team gets a cycle
    hook = httpx.post(f"{two}/{WEBHOOK}", json={"event": "activity.logged", "logged_activity_id": logged["id"]})
    assert hook.status_code == 202
    until(lambda: fleet.job_statuses("syncd.logged")["succeeded"] == 1, what="the webhook's job done")
    for name in ("one", "two"):
        assert fleet.stop(name) == 0, fleet.log(name)

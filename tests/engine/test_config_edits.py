"""Config edits take effect: a source's collections and url follow its config, against a real Radicale.

Each edit is also checked with ``syncd check``'s findings, which say what the next sync will change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from syncd.check import check
from syncd.config import load
from syncd.sandbox import Sandbox
from syncd.service.daemon import POLL, RECONCILE, Daemon
from syncd.sync.report import Report
from syncd.wiring import sandbox_client
from tests import backends
from tests.backends import open_state, state_of
from tests.connectors.radicale import Radicale, Seen, mkcalendar, put, quiet, vcalendar, vevent
from tests.cycles import run_cycle
from tests.secretfiles import write_secret

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    quiet()
    with Radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


class Account:
    """One Radicale user with two calendars (Work, Home), an event in each, and a config to edit."""

    def __init__(self, folder: Path, radicale: Radicale, box: Sandbox) -> None:
        self.folder, self.radicale, self.box = folder, radicale, box
        self.user = f"ada{uuid4().hex[:8]}"
        self.http = radicale.client(self.user)
        for path, name in (("desk", "Work"), ("home", "Home")):
            mkcalendar(self.http, f"/{self.user}/{path}/", name=name)
        put(
            self.http, f"/{self.user}/desk/work.ics", vcalendar(vevent("work-1", "Work call", start="20261203T150000Z"))
        )
        put(
            self.http, f"/{self.user}/home/home.ics", vcalendar(vevent("home-1", "Home call", start="20261204T150000Z"))
        )
        write_secret(folder / "password", "unused\n")

    def url(self, path: str = "", server: Radicale | None = None) -> str:
        return f"{(server or self.radicale).url}/{self.user}/{path}"

    def configure(self, *, url: str | None = None, collections: tuple[str, ...] = (), extra: str = "") -> None:
        listed = ", ".join(f'"{c}"' for c in collections)
        (self.folder / "config.toml").write_text(
            '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
            f'[sync]\nstate = "{state_of(self.folder)}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
            'internal_domains = ["example.com"]\n'
            '[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\n'
            f'url = "{url or self.url()}"\nusername = "{self.user}"\npassword_file = "password"\nallow_private_network = true\n'
            f"collections = [{listed}]\n{extra}"
        )

    def run(self, **options: Any) -> Report:
        return run_cycle(self.folder / "config.toml", self.box, NOW, **options)

    def check(self) -> list[str]:
        """``syncd check``'s findings of what will change, as the CLI prints them."""
        client = sandbox_client(self.box)
        try:
            findings = check(load(self.folder / "config.toml"), client)
        finally:
            client.http.close()
        assert all(f.ok for f in findings), findings
        return [f"change: {f.text}" for f in findings if f.change]

    def activities(self) -> dict[str, str]:
        """Every activity in Kizen: its note's first line -> its id."""
        listed = self.box.service.list_scheduled({}, 0, 1000)[1]
        notes = {a["id"]: self.box.service.get_scheduled(a["id"])["note"] for a in listed}
        return {note.splitlines()[0]: id_ for id_, note in notes.items()}

    def requests(self, mark: int) -> list[Seen]:
        return [s for s in self.radicale.since(mark) if s.path.startswith(f"/{self.user}/")]


@pytest.fixture
def account(tmp_path: Path, radicale: Radicale) -> Iterator[Account]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        made = Account(tmp_path, radicale, box)
        yield made
        made.http.close()


def test_a_collection_added_to_the_config_is_synced_on_the_next_run(account: Account) -> None:
    account.configure(collections=("Work",))
    assert account.run().counts() == {"Create": 1}
    account.configure(collections=("Work", "Home"))
    assert account.check() == ["change: source ada: collection Home will be added"]
    assert account.run().counts() == {"Create": 1}
    assert set(account.activities()) == {"Work call", "Home call"}
    mark = account.radicale.mark()
    assert account.run().actions == []  # found once: an unchanged run costs one request per collection
    assert sorted((s.path, s.report) for s in account.requests(mark)) == [
        (f"/{account.user}/desk/", "sync-collection"),
        (f"/{account.user}/home/", "sync-collection"),
    ]
    assert account.check() == []


def test_a_collection_removed_from_the_config_is_no_longer_read_and_its_activities_stay(account: Account) -> None:
    account.configure(collections=("Work", "Home"))
    assert account.run().counts() == {"Create": 2}
    made = account.activities()
    account.configure(collections=("Work",))
    home = account.url("home/")
    assert account.check() == [
        f"change: source ada: collection {home} is no longer configured: its 1 activity stays in Kizen"
    ]
    account.http.delete(f"/{account.user}/home/home.ics").raise_for_status()  # even emptied, it is not read
    mark = account.radicale.mark()
    report = account.run()
    assert report.actions == [] and report.clean, report.stopped
    assert report.notices == [
        f"source ada: collection {home} is no longer synced; its 1 activity is left in Kizen unchanged"
    ]
    assert not [s for s in account.requests(mark) if s.method == "REPORT" and s.path.endswith("/home/")]
    assert account.activities() == made
    mark = account.radicale.mark()
    assert account.run().actions == [] and [s.report for s in account.requests(mark)] == ["sync-collection"]
    assert account.check() == []


def test_a_collection_configured_again_resumes_its_pairings_without_duplicates(account: Account) -> None:
    account.configure(collections=("Work", "Home"))
    assert account.run().counts() == {"Create": 2}
    made = account.activities()
    account.configure(collections=("Work",))
    account.run()
    account.configure(collections=("Work", "Home"))
    report = account.run()
    assert report.actions == [] and report.notices == []
    assert account.activities() == made


def test_a_state_from_before_discoveries_were_remembered_follows_the_config_too(account: Account) -> None:
    account.configure(collections=("Work", "Home"))
    assert account.run().counts() == {"Create": 2}
    backends.CURRENT.execute(account.folder, "DELETE FROM discoveries")  # as an earlier syncd left it: only the cursors
    account.configure(collections=("Work",))
    account.http.delete(f"/{account.user}/home/home.ics").raise_for_status()
    report = account.run()
    assert report.actions == [] and len(report.notices) == 1 and "is no longer synced" in report.notices[0]


@pytest.mark.parametrize("moved", ["to the calendar's own url", "to another server"])
def test_a_changed_url_finds_the_calendars_anew_with_no_duplicate_and_no_deletion(
    account: Account, moved: str, tmp_path: Path
) -> None:
    account.configure()
    assert account.run().counts() == {"Create": 2}
    made = account.activities()
    with Radicale(account.radicale.folder.parent) as other:  # the same storage, served at another port
        if moved == "to another server":
            account.configure(url=account.url(server=other))
            expected = ["change: source ada: url changed: collections will be re-discovered"] + [
                f"change: source ada: collection {account.url(p)} will be read at {account.url(p, other)}: "
                "its activities are re-paired by UID"
                for p in ("desk/", "home/")
            ]
            server = other
        else:
            account.configure(url=account.url("desk/"))
            expected = ["change: source ada: url changed: collections will be re-discovered"]
            server = account.radicale
        assert account.check() == expected
        report = account.run()
        assert report.clean and not any(type(a).__name__ in ("Create", "Delete") for a in report.actions)
        assert account.activities() == made
        mark = server.mark()
        assert account.run().actions == []
        assert sorted(s.report for s in server.since(mark) if s.path.startswith(f"/{account.user}/")) == [
            "sync-collection",
            "sync-collection",
        ]
        account.box.user().complete(made["Home call"])  # the pairing follows the calendar to its new url
        assert account.run().counts() == {"WriteBack": 1}
        assert "✓ Home call" in account.http.get(f"/{account.user}/home/home.ics").text


def test_the_import_collection_follows_the_config(account: Account) -> None:
    account.configure(extra='import_from_crm = true\nimport_collection = "Work"\n')
    account.run()
    account.configure(extra='import_from_crm = true\nimport_collection = "Home"\n')
    made = account.box.user().create("call", datetime(2026, 12, 2, 10, tzinfo=UTC), note="Made in Kizen")
    assert account.run().counts() == {"Import": 1}
    state = open_state(account.folder)
    pairing = state.pairing_of(made["id"])
    state.close()
    assert pairing is not None and pairing.lead is not None and pairing.lead.collection == account.url("home/")
    assert account.http.get(pairing.lead.href).text.count("BEGIN:VEVENT") == 1


def test_the_daily_reconciliation_finds_a_calendar_added_on_the_server(account: Account) -> None:
    account.configure()
    assert account.run().counts() == {"Create": 2}
    mkcalendar(account.http, f"/{account.user}/team/", name="Team")
    put(account.http, f"/{account.user}/team/t.ics", vcalendar(vevent("team-1", "Team call", start="20261205T150000Z")))
    assert account.check() == ["change: source ada: collection Team will be added at the next reconciliation"]
    assert account.run().actions == []  # an ordinary cycle does not pay for discovery
    assert account.run(reconcile=True).counts() == {"Create": 1}
    assert "Team call" in account.activities()


def test_the_daemons_reconciliation_job_finds_the_calendars_anew(account: Account) -> None:
    account.configure()
    config = account.folder / "config.toml"
    config.write_text(config.read_text().replace('"sandbox.sqlite"', '"daemon-sandbox.sqlite"'))  # not the test's
    running = Daemon(load(config), clock=lambda: NOW)
    running.kizen.http.close()
    running.kizen = sandbox_client(account.box)
    reports: list[Report | None] = []
    cycle = running.cycle

    def one_job(only: str | None, *, reconcile: bool = False) -> Report | None:
        reports.append(cycle(only, reconcile=reconcile))
        running.stop.set()  # the worker returns after this job
        return reports[-1]

    running.cycle = one_job  # type: ignore[method-assign]
    try:
        for job in (POLL, POLL, RECONCILE):
            running.stop.clear()
            running.enqueue(job)
            running.work()
            if job == POLL and len(reports) == 1:
                mkcalendar(account.http, f"/{account.user}/team/", name="Team")
                put(
                    account.http,
                    f"/{account.user}/team/t.ics",
                    vcalendar(vevent("t-1", "Team", start="20261205T150000Z")),
                )
        assert [r.counts() if r else None for r in reports] == [{"Create": 2}, {}, {"Create": 1}]
        assert "Team" in account.activities()
    finally:
        running.close()


FEED = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n{}END:VCALENDAR\n"
ITEM = "BEGIN:VEVENT\nUID:{0}\nDTSTART:2026120{1}T140000Z\nSUMMARY:Feed {0}\nEND:VEVENT\n"


def test_a_moved_feed_re_pairs_its_items_and_leaves_those_it_lost(tmp_path: Path) -> None:
    (tmp_path / "old.ics").write_text(FEED.format(ITEM.format("a", 3) + ITEM.format("b", 4)))
    config = tmp_path / "config.toml"
    base = (
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "{state_of(tmp_path)}"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        '[[sources]]\nname = "feed"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{}"\nallow_private_network = true\n'
    )
    config.write_text(base.replace("{}", "old.ics"))
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        assert run_cycle(config, box, NOW).counts() == {"Create": 2}
        (tmp_path / "new.ics").write_text(FEED.format(ITEM.format("a", 3)))  # the same item a, and b no more
        (tmp_path / "old.ics").unlink()
        config.write_text(base.replace("{}", "new.ics"))
        client = sandbox_client(box)
        changes = [f.text for f in check(load(config), client) if f.change]
        client.http.close()
        assert changes == [
            "source feed: url changed: the new feed is read in full; items it shares with the old one keep their "
            "activities, and none of the old feed's 2 open activities is deleted"
        ]
        report = run_cycle(config, box, NOW)
        assert report.counts() == {"Settle": 1} and report.clean  # a re-paired; b left, not deleted
        assert report.notices == [
            "source feed: the feed at its previous url is no longer synced; its 1 activity is left in Kizen unchanged"
        ]
        assert all("old.ics" not in n for n in report.notices + changes)
        assert len(box.service.list_scheduled({}, 0, 100)[1]) == 2
        assert run_cycle(config, box, NOW).actions == []

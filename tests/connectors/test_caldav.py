"""The CalDAV source against a real Radicale and a real Xandikos on loopback, request counts taken at the server."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import icalendar
import pytest
from pydantic import SecretStr

from syncd.calendar.connectors.caldav import DEFAULT_BATCH, CalDAVSource
from syncd.errors import ItemError, PreconditionFailed, SourceError
from syncd.model import Collection, CollectionChanges, Cursor, Location
from tests.connectors.conftest import LOOPBACK, PASSWORD
from tests.connectors.radicale import (
    BERLIN,
    Radicale,
    Seen,
    delete,
    expire_sync_tokens,
    mkcalendar,
    put,
    vcalendar,
    vevent,
    vtodo,
)
from tests.connectors.xandikos import DavServer, Xandikos

T = TypeVar("T")


def counted(server: DavServer, call: Callable[[], T]) -> tuple[T, list[Seen]]:
    """Runs ``call`` and returns its result with the requests the server received meanwhile."""
    mark = server.mark()
    result = call()
    return result, server.since(mark)


class Mirror:
    """What an engine keeps of one collection between cycles: the cursor and each href's etag."""

    def __init__(self, source: CalDAVSource, url: str) -> None:
        self.source = source
        self.url = url
        self.cursor = Cursor()
        self.etags: dict[str, str | None] = {}

    def sync(self, server: DavServer) -> tuple[CollectionChanges, list[Seen]]:
        changes, seen = counted(server, lambda: self.source.changes(self.url, self.cursor, self.etags))
        assert changes.requests == len(seen), (changes.requests, seen)
        if changes.complete:
            kept = {r.location.href for r in changes.changed} | set(changes.unchanged)
            self.etags = {href: etag for href, etag in self.etags.items() if href in kept}
        for href in changes.deleted:
            self.etags.pop(href, None)
        self.etags.update((r.location.href, r.etag) for r in changes.changed)
        self.cursor = changes.cursor
        return changes, seen


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def component(ical: str, name: str = "VEVENT") -> Any:
    """The first component of that name in an object's text, parsed."""
    return icalendar.Calendar.from_ical(ical).walk(name)[0]


def summaries(changes: CollectionChanges) -> dict[str, str]:
    """href -> SUMMARY of each changed resource."""
    return {r.location.href: str(component(r.ical)["SUMMARY"]) for r in changes.changed}


def reports(seen: list[Seen], kind: str) -> int:
    return sum(1 for s in seen if s.method == "REPORT" and s.report == kind)


# -- discovery ----------------------------------------------------------------------------------


@pytest.fixture
def two_calendars(http: httpx.Client, dav_server: DavServer, user: str) -> None:
    """Work (events, in Europe/Berlin) and Tasks (to-dos, no zone) in the test user's home."""
    mkcalendar(http, f"{dav_server.home(user)}desk/", name="Work", components=["VEVENT"], zone=BERLIN)
    mkcalendar(http, f"{dav_server.home(user)}tasks/", name="Tasks", components=["VTODO"])


def expected(dav_server: DavServer, user: str) -> list[Collection]:
    return [
        Collection(f"{dav_server.url}{dav_server.home(user)}desk/", "Work", ("VEVENT",), "Europe/Berlin"),
        Collection(f"{dav_server.url}{dav_server.home(user)}tasks/", "Tasks", ("VTODO",), None),
    ]


def test_discovery_follows_the_well_known_url_from_the_server_root(
    dav_server: DavServer, user: str, two_calendars: None
) -> None:
    with CalDAVSource(
        "root", dav_server.url + "/", username=user, password=SecretStr(PASSWORD), policy=LOOPBACK
    ) as source:
        found, seen = counted(dav_server, source.discover)
    assert found == expected(dav_server, user)
    assert seen[0].method == "PROPFIND" and seen[0].path == "/.well-known/caldav"


def test_discovery_from_the_root_follows_a_302_to_a_context_path(tmp_path: Path, user: str) -> None:
    """Xandikos under /dav answers the well-known URL with 302, which the HTTP library follows
    as a GET: the place it landed on is then asked for the principal, not the server root."""
    with Xandikos(tmp_path, prefix="/dav") as server, server.client(user) as http:
        mkcalendar(http, f"{server.home(user)}desk/", name="Work")
        with CalDAVSource(
            "root", server.url + "/", username=user, password=SecretStr(PASSWORD), policy=LOOPBACK
        ) as source:
            found, seen = counted(server, source.discover)
    assert [c.url for c in found] == [f"{server.url}/dav/{user}/calendars/desk/"]
    assert [(s.method, s.path) for s in seen[:3]] == [
        ("PROPFIND", "/.well-known/caldav"),
        ("GET", "/dav/"),  # the redirect, as the HTTP library follows a 302
        ("PROPFIND", "/dav/"),
    ]


def test_discovery_from_a_direct_url_asks_no_well_known_url(
    dav_server: DavServer, user: str, two_calendars: None, source: CalDAVSource
) -> None:
    found, seen = counted(dav_server, source.discover)
    assert found == expected(dav_server, user)
    assert all(".well-known" not in s.path for s in seen)


def test_an_account_without_any_calendar_fails_its_source_instead_of_syncing_nothing(
    dav_server: DavServer, user: str, source: CalDAVSource
) -> None:
    with pytest.raises(SourceError, match="found no calendar with events or to-dos"):
        source.discover()  # the user's home holds no calendar: a wrong URL is the likely cause


@pytest.mark.parametrize("entry", ["Work", "{url}{home}desk/", "{home}desk", "{home}desk/"])
def test_collections_are_filtered_by_name_or_url(
    dav_server: DavServer, user: str, two_calendars: None, entry: str
) -> None:
    wanted = [entry.format(url=dav_server.url, home=dav_server.home(user))]
    with CalDAVSource(
        "f",
        f"{dav_server.url}/{user}/",
        username=user,
        password=SecretStr(PASSWORD),
        collections=wanted,
        policy=LOOPBACK,
    ) as source:
        assert [c.name for c in source.discover()] == ["Work"]


@pytest.mark.parametrize("entry", ["Privat", "{home}privat/", "/someone-else/desk/"])
def test_an_entry_that_matches_no_calendar_is_a_source_error_naming_it(
    dav_server: DavServer, user: str, two_calendars: None, entry: str
) -> None:
    wanted = ["Work", entry.format(home=dav_server.home(user))]
    with CalDAVSource(
        "f",
        f"{dav_server.url}/{user}/",
        username=user,
        password=SecretStr(PASSWORD),
        collections=wanted,
        policy=LOOPBACK,
    ) as source:
        with pytest.raises(SourceError) as caught:
            source.discover()
    assert caught.value.source == "f"
    if dav_server.kind == "xandikos" and entry.startswith("/someone-else"):
        # Xandikos 0.4.10 lets its own access check (403) escape as an exception: HTTP 500, a server
        # failure, which fails the source as any 500 does (and is retried next cycle)
        assert "the server answered HTTP 500" in str(caught.value)
        return
    assert repr(wanted[1]) in str(caught.value) and "'Work'" in str(caught.value)  # names the calendars found too


# -- changes by sync token ----------------------------------------------------------------------


def test_first_sync_returns_every_object_with_its_etag_and_a_token(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    etags = {
        f"{path_of(calendar)}e{n}.ics": put(http, f"{path_of(calendar)}e{n}.ics", vcalendar(vevent(f"e{n}")))
        for n in range(3)
    }
    changes, seen = Mirror(source, calendar).sync(dav_server)
    assert {r.location.href: r.etag for r in changes.changed} == etags
    assert all(r.location == Location("radicale", calendar, r.location.href) for r in changes.changed)
    assert all("BEGIN:VEVENT" in r.ical for r in changes.changed)
    assert changes.complete and changes.cursor.sync_token and not changes.deleted
    assert reports(seen, "sync-collection") == 1 and reports(seen, "calendar-multiget") == 1
    assert len(seen) <= 3  # the zone's PROPFIND, the listing, one multiget


def test_no_change_with_a_token_costs_exactly_one_request(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    put(http, f"{path_of(calendar)}e.ics", vcalendar(vevent("e")))
    mirror = Mirror(source, calendar)
    mirror.sync(dav_server)
    changes, seen = mirror.sync(dav_server)
    assert len(seen) == 1 and seen[0].report == "sync-collection"
    assert not changes.changed and not changes.deleted and changes.cursor.sync_token


def test_one_change_costs_at_most_three_requests_and_fetches_only_that_object(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    base = path_of(calendar)
    etags = [put(http, f"{base}e{n}.ics", vcalendar(vevent(f"e{n}"))) for n in range(5)]
    mirror = Mirror(source, calendar)
    mirror.sync(dav_server)
    put(http, f"{base}e2.ics", vcalendar(vevent("e2", "Moved")), if_match=etags[2])
    changes, seen = mirror.sync(dav_server)
    assert summaries(changes) == {f"{base}e2.ics": "Moved"}
    assert len(seen) <= 3 and reports(seen, "calendar-multiget") == 1
    assert all(s.method != "GET" for s in seen)


def test_250_changes_cost_at_most_five_requests(dav_server: DavServer, http: httpx.Client, user: str) -> None:
    # Xandikos commits each PUT to git (~50 ms): the same shape at a tenth of the size, batch 10
    scale = 10 if dav_server.kind == "xandikos" else 1
    total, edits = 300 // scale, 250 // scale
    big = f"{dav_server.home(user)}big/"
    dav_server.bulk(http, big, (vevent(f"b{n}", f"Event {n}") for n in range(total)), name="Big")
    with CalDAVSource(
        "radicale",
        f"{dav_server.url}/{user}/",
        username=user,
        password=SecretStr(PASSWORD),
        multiget_batch=DEFAULT_BATCH // scale,
        policy=LOOPBACK,
    ) as source:
        mirror = Mirror(source, f"{dav_server.url}{big}")
        first, _ = mirror.sync(dav_server)
        assert len(first.changed) == total
        changed = {r.location.href: r for r in first.changed}
        for n in range(edits):
            href = f"{big}b{n}.ics"
            put(http, href, vcalendar(vevent(f"b{n}", f"Changed {n}")), if_match=changed[href].etag)
        changes, seen = mirror.sync(dav_server)
    assert len(changes.changed) == edits and set(summaries(changes).values()) == {f"Changed {n}" for n in range(edits)}
    assert len(seen) <= 2 + 3
    assert reports(seen, "sync-collection") == 1 and reports(seen, "calendar-multiget") == 3
    assert {r.etag for r in changes.changed}.isdisjoint(r.etag for r in first.changed)


def test_a_deletion_shows_up_in_deleted(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    base = path_of(calendar)
    for n in range(3):
        put(http, f"{base}e{n}.ics", vcalendar(vevent(f"e{n}")))
    mirror = Mirror(source, calendar)
    mirror.sync(dav_server)
    delete(http, f"{base}e1.ics")
    changes, seen = mirror.sync(dav_server)
    assert changes.deleted == (f"{base}e1.ics",) and not changes.changed
    assert len(seen) == 1


@pytest.mark.parametrize("spoil", ["expired", "bogus"])
def test_a_refused_token_falls_back_to_a_full_listing_for_that_cycle_only(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str, spoil: str
) -> None:
    base = path_of(calendar)
    etags = [put(http, f"{base}e{n}.ics", vcalendar(vevent(f"e{n}"))) for n in range(6)]
    mirror = Mirror(source, calendar)
    mirror.sync(dav_server)
    put(http, f"{base}e0.ics", vcalendar(vevent("e0", "Changed")), if_match=etags[0])
    put(http, f"{base}new.ics", vcalendar(vevent("new", "New")))
    delete(http, f"{base}e5.ics")
    if spoil == "expired" and dav_server.kind == "xandikos":  # its token is a commit: one the store lacks
        mirror.cursor = Cursor(sync_token="0" * 40)
    elif spoil == "expired":
        assert expire_sync_tokens(dav_server.folder, base) > 0
    else:
        mirror.cursor = Cursor(sync_token="http://radicale.org/ns/sync/" + "0" * 64)
    old_token = mirror.cursor.sync_token
    changes, seen = mirror.sync(dav_server)
    assert changes.complete
    assert summaries(changes) == {f"{base}e0.ics": "Changed", f"{base}new.ics": "New"}  # only these fetched
    assert set(changes.unchanged) == {f"{base}e{n}.ics" for n in (1, 2, 3, 4)}
    assert changes.deleted == (f"{base}e5.ics",)
    assert changes.cursor.sync_token and changes.cursor.sync_token != old_token
    assert reports(seen, "sync-collection") == 2 and reports(seen, "calendar-multiget") == 1 and len(seen) == 3
    idle, seen = mirror.sync(dav_server)  # the fresh token works again
    assert not idle.changed and not idle.complete and len(seen) == 1


# -- changes by ctag ----------------------------------------------------------------------------


def test_without_sync_tokens_an_unchanged_ctag_costs_one_request_and_changes_a_listing_and_a_multiget(
    dav_server: DavServer, http: httpx.Client, user: str, calendar: str
) -> None:
    base = path_of(calendar)
    etags = [put(http, f"{base}e{n}.ics", vcalendar(vevent(f"e{n}"))) for n in range(4)]
    with CalDAVSource(
        "ctag",
        f"{dav_server.url}/{user}/",
        username=user,
        password=SecretStr(PASSWORD),
        sync_tokens=False,
        policy=LOOPBACK,
    ) as source:
        mirror = Mirror(source, calendar)
        first, seen = mirror.sync(dav_server)
        assert len(first.changed) == 4 and first.complete and first.cursor.ctag and not first.cursor.sync_token
        assert all(s.report != "sync-collection" for s in seen)
        idle, seen = mirror.sync(dav_server)
        assert not idle.changed and [(s.method, s.depth) for s in seen] == [("PROPFIND", "0")]
        put(http, f"{base}e3.ics", vcalendar(vevent("e3", "Changed")), if_match=etags[3])
        delete(http, f"{base}e0.ics")
        changes, seen = mirror.sync(dav_server)
    assert summaries(changes) == {f"{base}e3.ics": "Changed"}
    assert changes.complete and set(changes.unchanged) == {f"{base}e1.ics", f"{base}e2.ics"}
    assert changes.deleted == (f"{base}e0.ics",)  # known, and in neither list
    assert [(s.method, s.depth, s.report) for s in seen] == [
        ("PROPFIND", "0", None),
        ("PROPFIND", "1", None),
        ("REPORT", None, "calendar-multiget"),
    ]
    assert changes.cursor.ctag != first.cursor.ctag


# -- to-dos -------------------------------------------------------------------------------------


def test_a_todo_collection_is_found_and_synced(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, user: str
) -> None:
    tasks = f"{dav_server.home(user)}tasks/"
    mkcalendar(http, tasks, name="Tasks", components=["VTODO"])
    put(http, f"{tasks}t.ics", vcalendar(vtodo("t", "Call back")))
    (found,) = source.discover()
    assert found.components == ("VTODO",)
    changes = source.changes(found.url, Cursor(), {})
    (resource,) = changes.changed
    assert str(component(resource.ical, "VTODO")["SUMMARY"]) == "Call back"
    assert resource.location.href == f"{tasks}t.ics"


# -- writes -------------------------------------------------------------------------------------


def test_update_with_the_current_etag_succeeds_and_returns_the_new_one(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    href = f"{path_of(calendar)}e.ics"
    etag = put(http, href, vcalendar(vevent("e")))
    location = Location("radicale", calendar, href)
    new_etag, seen = counted(dav_server, lambda: source.update(location, etag, vcalendar(vevent("e", "Renamed"))))
    assert new_etag and new_etag != etag and [s.method for s in seen] == ["PUT"]
    (resource,) = source.changes(calendar, Cursor(), {}).changed
    assert resource.etag == new_etag and "SUMMARY:Renamed" in resource.ical


def test_update_with_a_stale_etag_raises_precondition_failed_and_changes_nothing(
    http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    href = f"{path_of(calendar)}e.ics"
    stale = put(http, href, vcalendar(vevent("e")))
    put(http, href, vcalendar(vevent("e", "Someone else")), if_match=stale)
    with pytest.raises(PreconditionFailed) as caught:
        source.update(Location("radicale", calendar, href), stale, vcalendar(vevent("e", "Mine")))
    assert caught.value.href == href
    (resource,) = source.changes(calendar, Cursor(), {}).changed
    assert "SUMMARY:Someone else" in resource.ical


RICH = vevent(
    "rich",
    "Quarterly review",
    start="20300104T090000",
    extra=(
        "X-CUSTOM-FLAG;X-PARAM=kept:yes\r\n"
        "ORGANIZER;CN=Ada:mailto:ada@example.com\r\n"
        "ATTENDEE;CN=Grace;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:grace@example.com\r\n"
        "ATTENDEE;CN=Charles;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:charles@example.org\r\n"
        "CATEGORIES:Work,Review\r\nDESCRIPTION:Agenda:\\n1. Numbers\\, 2. Plans\r\nSEQUENCE:3\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    ),
).replace("DTSTART:20300104T090000", "DTSTART;TZID=Europe/Berlin:20300104T090000")


def test_a_read_modify_write_of_the_summary_keeps_every_other_property(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    berlin = BERLIN.split("BEGIN:VTIMEZONE", 1)[1].split("END:VTIMEZONE", 1)[0]
    put(http, f"{path_of(calendar)}rich.ics", vcalendar(f"BEGIN:VTIMEZONE{berlin}END:VTIMEZONE\r\n", RICH))
    (before,) = source.changes(calendar, Cursor(), {}).changed
    edited = icalendar.Calendar.from_ical(before.ical)
    edited.walk("VEVENT")[0]["SUMMARY"] = icalendar.vText("✓ Quarterly review")
    source.update(before.location, before.etag or "", edited.to_ical().decode())
    (after,) = source.changes(calendar, Cursor(), {}).changed
    old, new = component(before.ical), component(after.ical)
    assert str(new["SUMMARY"]) == "✓ Quarterly review"
    assert new["X-CUSTOM-FLAG"] == "yes" and new["X-CUSTOM-FLAG"].params["X-PARAM"] == "kept"
    assert [(str(a), dict(a.params)) for a in new["ATTENDEE"]] == [(str(a), dict(a.params)) for a in old["ATTENDEE"]]
    assert len(new["ATTENDEE"]) == 2 and new["SEQUENCE"] == 3
    assert [a.to_ical() for a in new.walk("VALARM")] == [a.to_ical() for a in old.walk("VALARM")] != []
    assert new["DTSTART"].params["TZID"] == "Europe/Berlin"
    for name in ("ORGANIZER", "CATEGORIES", "DESCRIPTION", "DTSTART", "DURATION", "UID"):
        assert new[name].to_ical() == old[name].to_ical(), name
    assert set(new) == set(old)
    assert icalendar.Calendar.from_ical(after.ical).walk("VTIMEZONE")


def test_a_created_object_appears_in_the_next_changes(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    put(http, f"{path_of(calendar)}old.ics", vcalendar(vevent("old")))
    mirror = Mirror(source, calendar)
    mirror.sync(dav_server)
    (plain, etag), seen = counted(
        dav_server, lambda: source.create(calendar, "plain-1", vcalendar(vevent("plain-1", "Made")))
    )
    odd, _ = source.create(calendar, "odd/uid@example.com", vcalendar(vevent("odd/uid@example.com", "Odd")))
    assert plain == Location("radicale", calendar, f"{path_of(calendar)}plain-1.ics") and etag
    assert [s.method for s in seen] == ["PUT"]
    assert odd.href.startswith(f"{path_of(calendar)}syncd-") and "@" not in odd.href  # a safe name for an odd UID
    changes, _ = mirror.sync(dav_server)
    assert summaries(changes) == {plain.href: "Made", odd.href: "Odd"}
    assert {r.location.href: r.etag for r in changes.changed}[plain.href] == etag
    with pytest.raises(PreconditionFailed):  # never over an existing object
        source.create(calendar, "plain-1", vcalendar(vevent("plain-1", "Again")))


def test_creating_a_uid_another_object_holds_is_an_item_error(
    http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    put(http, f"{path_of(calendar)}elsewhere.ics", vcalendar(vevent("dup")))
    with pytest.raises(ItemError) as caught:
        source.create(calendar, "dup", vcalendar(vevent("dup", "Second")))
    assert caught.value.uid == "dup" and caught.value.source == "radicale"


BROKEN = vcalendar(vevent("broken")).replace("END:VCALENDAR\r\n", "")  # cut short: neither server reads it


def test_an_object_the_server_cannot_read_is_an_item_error_never_a_stale_version(
    http: httpx.Client, source: CalDAVSource, calendar: str
) -> None:
    href = f"{path_of(calendar)}broken.ics"
    etag = put(http, href, vcalendar(vevent("broken")))
    for write in (
        lambda: source.update(Location("radicale", calendar, href), etag, BROKEN),  # Radicale 400, Xandikos 412
        lambda: source.create(calendar, "fresh", BROKEN.replace("UID:broken", "UID:fresh")),
    ):
        with pytest.raises(ItemError, match="refused the object") as caught:
            write()
        assert caught.value.source == "radicale"
    (kept,) = source.changes(calendar, Cursor(), {}).changed
    assert kept.etag == etag  # nothing written


def test_a_component_the_calendar_does_not_take_is_an_item_error_not_a_refused_account(
    dav_server: DavServer, http: httpx.Client, source: CalDAVSource, user: str
) -> None:
    events = f"{dav_server.home(user)}events/"
    mkcalendar(http, events, name="Events", components=["VEVENT"])
    url = dav_server.url + events
    if dav_server.kind == "radicale":  # Radicale takes any component into any calendar
        location, _ = source.create(url, "t", vcalendar(vtodo("t")))
        assert location.href == f"{events}t.ics"
        return
    with pytest.raises(ItemError, match="supported-calendar-component") as caught:  # Xandikos: 403 with the reason
        source.create(url, "t", vcalendar(vtodo("t")))
    assert caught.value.uid == "t"
    source.create(url, "e", vcalendar(vevent("e")))  # the account still writes


# -- failures -----------------------------------------------------------------------------------


def assert_no_secret(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    """Fails if the password is in the error's text, its whole traceback chain, or any log record."""
    assert PASSWORD not in str(exc)
    assert PASSWORD not in "".join(traceback.format_exception(exc))
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in (None, "caldav", "syncd", "niquests", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)


def test_a_server_that_is_down_is_a_source_error(caplog: pytest.LogCaptureFixture) -> None:
    debug_logs(caplog)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with CalDAVSource(
        "down", f"http://127.0.0.1:{port}/", username="ada", password=SecretStr(PASSWORD), timeout=5, policy=LOOPBACK
    ) as source:
        with pytest.raises(SourceError) as caught:
            source.discover()
        with pytest.raises(SourceError):
            source.changes(f"http://127.0.0.1:{port}/ada/desk/", Cursor(sync_token="x"), {})
    assert caught.value.source == "down" and "cannot reach" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert_no_secret(caught.value, caplog)


def test_bad_credentials_are_a_source_error_that_never_shows_the_password(
    guarded: Radicale, caplog: pytest.LogCaptureFixture
) -> None:
    debug_logs(caplog)
    with CalDAVSource(
        "guarded", guarded.url + "/", username="ada", password=SecretStr(PASSWORD + "-wrong"), policy=LOOPBACK
    ) as source:
        with pytest.raises(SourceError) as caught:
            source.discover()
    assert "credentials" in str(caught.value) and "401" in str(caught.value)
    assert_no_secret(caught.value, caplog)
    with CalDAVSource(
        "guarded", guarded.url + "/", username="ada", password=SecretStr(PASSWORD), policy=LOOPBACK
    ) as source:
        with pytest.raises(SourceError, match="found no calendar") as empty:  # the right password gets in:
            source.discover()  # the account has no calendar yet, which is no success either
        assert "credentials" not in str(empty.value)

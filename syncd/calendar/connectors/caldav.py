"""The CalDAV source: find an account's calendars, report what changed in one, write objects back.

Reads go through the caldav library's public API (``DAVClient``, ``Principal``,
``Calendar.get_objects_by_sync_token``, ``Calendar.multiget``, ``get_properties``). Writes use
``DAVClient.put`` directly: ``save()`` searches for the UID before an ``If-None-Match: *`` create
and sends no ``If-Match`` for a weak etag, while syncd needs exactly one PUT carrying exactly the
precondition of the version the engine read.

What one cycle of one collection costs, in HTTP requests (DESIGN section 5):

- With a sync token: one sync-collection REPORT; N new or changed objects add ceil(N / batch)
  calendar-multiget REPORTs (batch 100 by default). Nothing changed: one request.
- No token yet (a first sync): the initial sync-collection and the multigets, after one depth-0
  PROPFIND for the zone and ctag unless discover() already read the zone.
- A refused or expired token: the same cycle lists the collection in full with an initial
  sync-collection, fetches only what differs from the etags the caller knows, and reports the
  listing as complete; the next cycle uses the fresh token again.
- A server without sync-collection (or ``sync_tokens=False``): a depth-0 PROPFIND of ``getctag``;
  an unchanged ctag ends there, otherwise a depth-1 PROPFIND of etags, then the multigets.

Hrefs are URL paths spelled one way (percent-encoded, ``@`` left literal), whichever spelling the
server used, so the same object always has the same href.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import quote, unquote, urljoin, urlsplit

import icalendar
import niquests
from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements.base import BaseElement
from caldav.lib import error as dav_error
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from pydantic import SecretStr

from syncd.calendar.connectors import net
from syncd.errors import ConfigError, ItemError, PreconditionFailed, SourceError
from syncd.model import Collection, CollectionChanges, Cursor, Kind, Location, Resource

__all__ = ["DEFAULT_BATCH", "KINDS", "CalDAVSource", "Collection"]

log = logging.getLogger(__name__)

AuthType = Literal["basic", "digest", "bearer"]

KINDS: tuple[Kind, ...] = ("VEVENT", "VTODO")
DEFAULT_BATCH = 100

_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_UID_LINE = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.MULTILINE)
_ICAL_HEADERS = {"Content-Type": 'text/calendar; charset="utf-8"'}
_CTAG = "{http://calendarserver.org/ns/}getctag"
_CALENDAR = "{urn:ietf:params:xml:ns:caldav}calendar"
_VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"
_SUPPORTED_REPORT = "{DAV:}supported-report"
_CALDAV_NS = "{urn:ietf:params:xml:ns:caldav}"
_NO_UID_CONFLICT = _CALDAV_NS + "no-uid-conflict"


# CalendarServer's collection tag, which caldav lacks; type() typechecks with or without its hints.
_GetCTag: Any = type("_GetCTag", (BaseElement,), {"tag": _CTAG})


@dataclass
class _Listing:
    """One listing of a collection: the hrefs present with their etags, the hrefs gone, the tags."""

    etags: dict[str, str | None]
    removed: set[str] = field(default_factory=set)
    complete: bool = False
    sync_token: str | None = None
    ctag: str | None = None


class CalDAVSource:
    """One configured CalDAV source: an account on a server, all its calendars or some of them.

    Calls are serialized by a lock: the caldav client keeps per-connection state (the auth it
    settled on, the root it may move to the calendar home's host) that is not safe to share
    between threads, and the lock also keeps each call's request count its own.
    """

    read_only = False

    def __init__(
        self,
        name: str,
        url: str,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        collections: Sequence[str] = (),
        multiget_batch: int = DEFAULT_BATCH,
        sync_tokens: bool = True,
        auth_type: AuthType | None = "basic",
        timeout: float = net.DEFAULT_TIMEOUT,
        policy: net.Policy = net.PUBLIC,
    ) -> None:
        """Checks the settings and prepares the client; nothing is sent until a call needs it.

        Args:
            name: the source's name, in every location and error it produces.
            url: the server's root, or any URL of the account (its principal, its calendar home).
            username: the account; without it no credentials are sent (or ``password`` is a
                bearer token when ``auth_type`` is ``"bearer"``).
            password: the account's password or token.
            collections: display names or URLs (absolute, or paths on the server) of the calendars
                to sync; empty means every calendar with events or to-dos.
            multiget_batch: hrefs per calendar-multiget REPORT.
            sync_tokens: False skips RFC 6578 and goes straight to the ctag and etag listing.
            auth_type: sent with the first request, so no request is spent on a 401 challenge;
                None waits for the server's challenge (one extra request per process).
            timeout: seconds each request may take in all (connect, headers, body, redirects).
            policy: the addresses it may reach (checked at each connection, redirects too) and
                the CAs it trusts; TLS is always verified.

        Raises:
            ConfigError: the URL is not http(s), carries credentials, or the batch is empty.
        """
        parts = urlsplit(url)
        problems = []
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"source {name!r}: url: must be an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            problems.append(f"source {name!r}: url: put the credentials in username and password, not in the URL")
        if multiget_batch < 1:
            problems.append(f"source {name!r}: multiget_batch: must be at least 1, not {multiget_batch}")
        if problems:
            raise ConfigError(problems)
        self.name = name
        self._root = url
        self._server = f"{parts.scheme}://{parts.netloc}"
        self._wanted = tuple(collections)
        self._batch = multiget_batch
        self._sync_tokens = sync_tokens
        self._no_sync: set[str] = set()  # collections whose server refused sync-collection itself
        self._zones: dict[str, str | None] = {}  # collection URL -> zone, from discover() or a listing
        self._lock = threading.Lock()
        self._sent = 0
        self._landed = ""  # the URL of the latest answer
        secret = password.get_secret_value() if password is not None else None
        self._timeout = timeout
        self._client: Any = cast(Any, DAVClient)(
            url=url,
            username=username,
            password=secret,
            auth_type=auth_type if secret is not None else None,
            timeout=min(timeout, 30.0),
            ssl_verify_cert=str(policy.ca_file) if policy.ca_file else True,
            enable_rfc6764=False,  # DNS look-ups: never wanted, the URL is configured
        )
        self._watchdog = net.Watchdog(timeout, policy.allow_private_network)
        self._client.session.close()
        session = niquests.Session(resolver=self._watchdog.resolver)
        session.request = functools.partial(self._watchdog.run, session.request)  # type: ignore[method-assign]
        session.hooks["response"].append(self._count)
        self._client.session = session

    def __enter__(self) -> CalDAVSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the client's connections."""
        self._client.close()

    # -- discovery -------------------------------------------------------------------------------

    def discover(self) -> list[Collection]:
        """Lists the account's calendars with events or to-dos, filtered by ``collections``.

        Follows ``/.well-known/caldav`` when the URL is the server's root (else the URL itself)
        to the principal, its calendar home and the calendars in it.

        Raises:
            SourceError: the server is unreachable, refused the credentials, a configured name
                or URL matches no calendar (the message names each one), or there is no calendar
                at all (an account without one has nothing to sync; more likely the URL is wrong).
        """
        with self._lock, self._failures("finding the calendars"):
            listed = [c for c in map(self._describe, self._client.get_calendars(self._principal())) if c]
            found: dict[str, Collection] = {}
            missing = []
            for entry in self._wanted or (None,):
                hits = [c for c in self._match(entry, listed) if c.components]
                if entry is not None and not hits:
                    missing.append(entry)
                found.update((c.url, c) for c in hits)
            if missing:
                names = ", ".join(repr(c.name) for c in listed if c.components) or "none"
                wanted = ", ".join(repr(m) for m in missing)
                raise SourceError(self.name, f"no calendar matches {wanted} (calendars found: {names})")
            if not found:  # a wrong URL, or an answer that is not CalDAV: nothing synced is no success
                raise SourceError(self.name, "found no calendar with events or to-dos under its url")
        self._zones.update((c.url, c.zone) for c in found.values())
        log.debug("%s: %d calendars", self.name, len(found))
        return sorted(found.values(), key=lambda c: c.url)

    def _principal(self) -> Any:
        """The account's principal: through ``/.well-known/caldav`` from a server root."""
        if urlsplit(self._root).path in ("", "/"):
            href = self._well_known()
            if href:
                return self._client.principal(url=href)
        return self._client.principal()

    def _well_known(self) -> str | None:
        """The principal's href as ``/.well-known/caldav`` leads to it (RFC 6764 section 5).

        The redirect is followed by the HTTP library, which drops the body on a 301 (an allprop
        request then) and turns the PROPFIND into a GET on a 302 or 303 (Xandikos answers 302);
        when that answer does not name the principal, the context path it came from (its href,
        else the URL the redirect landed on) is asked once more, by name.
        """
        url = urljoin(self._server, "/.well-known/caldav")
        for _ in range(2):
            try:
                response = self._client.propfind(url, props=["current-user-principal"], depth=0)
            except dav_error.AuthorizationError:
                raise
            except dav_error.DAVError:
                return None
            results = (response.results or []) if response.status in (200, 207) else []
            for result in results:
                principal = result.properties.get(dav.CurrentUserPrincipal.tag)
                if isinstance(principal, str) and principal:
                    return principal
            if results:
                url = urljoin(self._server, str(results[0].href))
            elif self._landed and _href(self._landed) != _href(url):
                url = self._landed
            else:
                return None
        return None

    def _match(self, entry: str | None, listed: list[Collection]) -> list[Collection]:
        """The calendars a configured name or URL picks (all of them for None)."""
        if entry is None:
            return listed
        if not entry.startswith(("http://", "https://", "/")):
            return [c for c in listed if c.name == entry]
        wanted = _href(urljoin(self._server, entry)).rstrip("/")
        hits = [c for c in listed if _href(c.url).rstrip("/") == wanted]
        if hits:
            return hits
        try:  # a calendar outside the home (one shared with the account): asked for directly
            found = self._describe(self._client.calendar(url=urljoin(self._server, wanted + "/")))
        except dav_error.AuthorizationError as exc:
            if exc.status != 403:
                raise
            found = None  # not the account's to read: reported with the names that match nothing
        return [found] if found else []

    def _describe(self, calendar: Any) -> Collection | None:
        """Reads one calendar's name, components and zone; None if it is not a calendar."""
        try:
            props = calendar.get_properties(
                [dav.DisplayName(), dav.ResourceType(), cdav.SupportedCalendarComponentSet(), cdav.CalendarTimeZone()]
            )
        except dav_error.NotFoundError:
            return None
        if _CALENDAR not in (props.get(dav.ResourceType.tag) or ()):
            return None
        url = str(calendar.url)
        supported = props.get(cdav.SupportedCalendarComponentSet.tag)
        names = [supported] if isinstance(supported, str) else supported or KINDS  # absent: any (RFC 4791 5.2.3)
        return Collection(
            url=url,
            name=str(props.get(dav.DisplayName.tag) or unquote(url.rstrip("/").rsplit("/", 1)[-1])),
            components=tuple(k for k in KINDS if k in names),
            zone=_zone(props.get(cdav.CalendarTimeZone.tag)),
        )

    # -- changes ---------------------------------------------------------------------------------

    def changes(self, collection_url: str, since: Cursor, known: Mapping[str, str | None]) -> CollectionChanges:
        """What changed in one collection since ``since``, with the objects' text.

        Args:
            collection_url: a :attr:`Collection.url`.
            since: the cursor stored after the previous cycle (an empty one for a first sync).
            known: the etag the caller holds for each href of the collection; an object listed
                with the same etag is not fetched.

        Returns:
            The changes; ``complete`` when they come from a full listing (a first sync, a refused
            token, the ctag path), in which case a known href in neither ``changed`` nor
            ``unchanged`` is gone (and is listed in ``deleted`` too). ``zone`` is the
            collection's, as discover() or a full listing last read it; ``requests`` the HTTP
            requests the call cost.

        Raises:
            SourceError: the server is unreachable, refused, or answered something unusable.
        """
        known = {_href(href): etag for href, etag in known.items()}
        with self._lock, self._failures(f"reading {collection_url}"):
            start = self._sent
            calendar = self._client.calendar(url=collection_url)
            listing = None
            if self._sync_tokens and collection_url not in self._no_sync:
                listing = self._by_token(calendar, collection_url, since)
            if listing is None:
                listing = self._by_ctag(calendar, collection_url, since)
            if listing is None:
                zone = self._zones.get(collection_url)
                changes = CollectionChanges(self.name, collection_url, cursor=since, zone=zone)
            else:
                changes = self._collect(calendar, collection_url, listing, known, since)
            changes = replace(changes, requests=self._sent - start)
        counts = (len(changes.changed), len(changes.deleted), changes.requests)
        log.debug("%s: %s: %d changed, %d deleted, %d requests", self.name, collection_url, *counts)
        return changes

    def _by_token(self, calendar: Any, collection_url: str, since: Cursor) -> _Listing | None:
        """Lists by RFC 6578 sync-collection; None when the server does not do sync-collection."""
        token = since.sync_token
        if token and token.startswith("fake-"):  # caldav would answer such a token with a full search
            token = None
        ctag = None
        if token is None and collection_url not in self._zones:  # a first sync: learn the zone too
            ctag = self._read_collection(calendar, collection_url)
        try:
            listing = self._sync_report(calendar, token)
            listing.ctag = ctag  # read before the listing, so never newer than it
            return listing
        except dav_error.DAVError as exc:
            if token is not None and _token_refused(exc):
                log.info("%s: %s refused the sync token (HTTP %s): full listing", self.name, collection_url, exc.status)
                return self._sync_report(calendar, None)
            if not _sync_unsupported(exc):
                raise
        log.info("%s: %s does not support sync-collection: using its ctag", self.name, collection_url)
        self._no_sync.add(collection_url)
        return None

    def _sync_report(self, calendar: Any, token: str | None) -> _Listing:
        """One sync-collection REPORT (more only if the server truncates its answer)."""
        result = calendar.get_objects_by_sync_token(token, load_objects=False, disable_fallback=True)
        removed = {_href(url) for url in result.deleted_urls}
        etags = {}
        for obj in result:
            href = _href(obj.url)
            if href not in removed:
                etags[href] = _text_or_none(obj.props.get(dav.GetEtag.tag))
        complete = token is None and not result.truncated
        return _Listing(etags, removed, complete=complete, sync_token=_text_or_none(result.sync_token))

    def _by_ctag(self, calendar: Any, collection_url: str, since: Cursor) -> _Listing | None:
        """Lists by etags unless the ctag says nothing changed (then None)."""
        ctag = self._read_collection(calendar, collection_url)
        if ctag is not None and ctag == since.ctag:
            return None
        response = calendar.get_properties([dav.GetEtag()], depth=1, parse_response_xml=False)
        own = _href(calendar.url).rstrip("/")
        etags = {}
        for result in response.results or []:
            href = _href(result.href)
            if href.rstrip("/") != own and not href.endswith("/") and result.status != 404:
                etags[href] = _text_or_none(result.properties.get(dav.GetEtag.tag))
        return _Listing(etags, complete=True, ctag=ctag)

    def _read_collection(self, calendar: Any, collection_url: str) -> str | None:
        """One depth-0 PROPFIND: the collection's ctag (returned) and its zone (kept)."""
        props = calendar.get_properties([_GetCTag(), cdav.CalendarTimeZone()])
        self._zones[collection_url] = _zone(props.get(cdav.CalendarTimeZone.tag))
        return _text_or_none(props.get(_CTAG))

    def _collect(
        self, calendar: Any, collection_url: str, listing: _Listing, known: Mapping[str, str | None], since: Cursor
    ) -> CollectionChanges:
        """Compares a listing with the known etags and fetches what differs, in batches."""
        wanted = [href for href, etag in listing.etags.items() if etag is None or known.get(href) != etag]
        fetch = set(wanted)
        unchanged = tuple(sorted(href for href in listing.etags if href not in fetch))
        deleted = set(listing.removed)
        if listing.complete:
            deleted |= known.keys() - listing.etags.keys()
        changed, gone = self._fetch(calendar, collection_url, sorted(wanted), listing.etags)
        return CollectionChanges(
            source=self.name,
            collection=collection_url,
            changed=tuple(changed),
            deleted=tuple(sorted(deleted | gone)),
            complete=listing.complete,
            unchanged=unchanged,
            cursor=replace(since, sync_token=listing.sync_token, ctag=listing.ctag),
            zone=self._zones.get(collection_url),
        )

    def _fetch(
        self, calendar: Any, collection_url: str, hrefs: list[str], listed: Mapping[str, str | None]
    ) -> tuple[list[Resource], set[str]]:
        """Fetches objects by calendar-multiget, ``batch`` hrefs per REPORT, never one GET each.

        Returns the resources and the hrefs the server answered 404 for (deleted meanwhile).
        """
        resources: list[Resource] = []
        gone: set[str] = set()
        for first in range(0, len(hrefs), self._batch):
            batch = hrefs[first : first + self._batch]
            answered = {_href(obj.url): obj for obj in calendar.multiget([calendar.url.join(href) for href in batch])}
            for href in batch:
                if href not in answered:
                    raise SourceError(self.name, f"{collection_url}: the server left {href} out of its multiget answer")
                obj = answered[href]
                text = _calendar_text(obj)
                if text is None:
                    gone.add(href)
                    continue
                etag = _text_or_none(obj.props.get(dav.GetEtag.tag)) or listed.get(href)
                resources.append(Resource(Location(self.name, collection_url, href), etag, text))
        return resources, gone

    # -- writes ----------------------------------------------------------------------------------

    def update(self, location: Location, etag: str, ical: str) -> str | None:
        """Replaces one object, only if it is still the version with ``etag``.

        Returns:
            The new etag: the server's answer to the PUT, else one PROPFIND's (None if neither).

        Raises:
            PreconditionFailed: the object changed (or went) since it was read (412).
            ItemError: the server refused this object (a 4xx other than 401, 403, 404, 412, or
                one naming a CalDAV precondition).
            SourceError: the server is unreachable or refused the account.
        """
        url = urljoin(location.collection, location.href)
        with self._lock, self._failures(f"writing {location.href}"):
            response = self._put(url, ical, {"If-Match": etag, **_ICAL_HEADERS}, location.href)
            return self._new_etag(response, url)

    def create(self, collection_url: str, uid: str, ical: str) -> tuple[Location, str | None]:
        """Adds a new object at an href made from its UID, never over an existing one.

        The href is the UID itself when it is a plain file name, else a digest of it, so the
        same UID always gets the same href and a repeated create cannot make a second copy.

        Returns:
            Where the object now lives, and its etag (None if the server tells none).

        Raises:
            PreconditionFailed: an object already exists at that href (412).
            ItemError: the server refused the object (another object holds the UID, bad data,
                a component the calendar does not take), with whatever status.
            SourceError: the server is unreachable or refused the account.
        """
        base = collection_url if collection_url.endswith("/") else collection_url + "/"
        name = uid if _SAFE_NAME.fullmatch(uid) else "syncd-" + hashlib.sha256(uid.encode()).hexdigest()[:40]
        url = urljoin(base, name + ".ics")
        location = Location(self.name, collection_url, _href(url))
        with self._lock, self._failures(f"creating {location.href}"):
            response = self._put(url, ical, {"If-None-Match": "*", **_ICAL_HEADERS}, location.href)
            return location, self._new_etag(response, url)

    def _put(self, url: str, ical: str, headers: dict[str, str], href: str) -> Any:
        """One PUT; its answer if it succeeded, else the error it calls for (see _check_written).

        The caldav client raises on a 403 itself; one naming a CalDAV precondition is still
        about the object, so it is checked like any other answer.
        """
        try:
            response = self._client.put(url, ical, headers)
        except dav_error.AuthorizationError as exc:
            if exc.status == 403 and any(p.startswith(_CALDAV_NS) for p in exc.preconditions):
                self._check_written(403, exc.preconditions, href, ical)
            raise
        self._check_written(int(response.status), dav_error.parse_preconditions(response.raw), href, ical)
        return response

    def _check_written(self, status: int, preconditions: Sequence[str], href: str, ical: str) -> None:
        """Raises the error a failed PUT answer calls for.

        A CalDAV precondition the answer names (RFC 4791 5.3.2.1: no-uid-conflict,
        valid-calendar-data, supported-calendar-component, ...) makes it the object's fault
        whatever the status: Radicale answers 400 or 409, Xandikos 403 or 412. Such a 412 is no
        stale etag (a re-read finds the same version and the write fails again), and such a 403
        no refused account (the other objects still go). Any other 412 is a stale etag.
        """
        if 200 <= status < 300:
            return
        uid = next((m.group(1).strip() for m in _UID_LINE.finditer(ical)), href)
        if _NO_UID_CONFLICT in preconditions:
            raise ItemError(self.name, uid, f"another object of the calendar holds this UID ({href}: HTTP {status})")
        refused = [p.split("}", 1)[1] for p in preconditions if p.startswith(_CALDAV_NS)]
        if refused:
            raise ItemError(self.name, uid, f"the server refused the object: {refused[0]} ({href}: HTTP {status})")
        if status == 412:
            raise PreconditionFailed(href)
        if 400 <= status < 500 and status not in (401, 403, 404, 409):  # 409: no such collection
            raise ItemError(self.name, uid, f"the server refused the object ({href}: HTTP {status})")
        raise SourceError(self.name, f"writing {href}: the server answered HTTP {status}")

    def _new_etag(self, response: Any, url: str) -> str | None:
        """The etag of what was just written: from the PUT's answer, else asked for once."""
        etag = _text_or_none(response.headers.get("ETag"))
        if etag:
            return etag
        answer = self._client.propfind(url, props=["getetag"], depth=0)
        for result in answer.results or []:
            etag = _text_or_none(result.properties.get(dav.GetEtag.tag))
            if etag:
                return etag
        return None

    # -- plumbing --------------------------------------------------------------------------------

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """The HTTP library's response hook: one per exchange, redirects and auth retries too."""
        self._sent += 1
        self._landed = str(response.url)  # after a redirect, the last one is where it landed

    @contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        """Turns the client's failures into a :class:`SourceError` with a plain message.

        The messages are made here, never copied from the failure, so no header, credential or
        response body reaches them.
        """
        try:
            yield
        except dav_error.AuthorizationError as exc:
            if exc.status == 403:
                raise SourceError(self.name, f"{doing}: access denied (HTTP 403)") from exc
            raise SourceError(
                self.name, f"{doing}: the server refused the credentials (HTTP 401): check username and password"
            ) from exc
        except dav_error.NotFoundError as exc:
            raise SourceError(self.name, f"{doing}: not found on the server (HTTP 404)") from exc
        except dav_error.DAVError as exc:
            status = f"HTTP {exc.status}" if exc.status else type(exc).__name__
            raise SourceError(self.name, f"{doing}: the server answered {status}") from exc
        except OSError as exc:  # the HTTP library's errors are OSErrors too
            if self._watchdog.expired:
                message = f"{doing}: {self._server} did not answer within {self._timeout:g} s (timeout_seconds)"
                raise SourceError(self.name, message) from exc
            raise SourceError(self.name, f"{doing}: cannot reach {self._server} ({_reason(exc)})") from exc
        except SyntaxError as exc:  # lxml's parse errors
            raise SourceError(self.name, f"{doing}: the server's answer is not valid XML") from exc


def _href(url: Any) -> str:
    """The path of a URL (or an href), spelled one way whatever way the server spelled it."""
    return quote(unquote(urlsplit(str(url)).path), safe=_PATH_SAFE)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _calendar_text(obj: Any) -> str | None:
    """The object's iCalendar text as the server sent it (after XML parsing); None if it sent none."""
    raw = obj.raw_data
    if isinstance(raw, bytes) and raw:
        return raw.decode("utf-8")
    data = obj.data
    return data if isinstance(data, str) and data else None


def _token_refused(exc: Any) -> bool:
    """A sync-collection refusal that means "this token is no good": resync from scratch.

    RFC 6578 section 3.2 says 403 with DAV:valid-sync-token (Radicale does so); some servers
    answer 409 or 412, or a bare 403.
    """
    preconditions = list(getattr(exc, "preconditions", None) or [])
    if _VALID_SYNC_TOKEN in preconditions:
        return True
    return getattr(exc, "status", None) in (403, 409, 412) and not preconditions


def _sync_unsupported(exc: Any) -> bool:
    """A sync-collection refusal that means the server does not do the report at all."""
    preconditions = list(getattr(exc, "preconditions", None) or [])
    return _SUPPORTED_REPORT in preconditions or getattr(exc, "status", None) in (400, 405, 415, 501)


def _reason(exc: OSError) -> str:
    """A short cause for a connection failure, read from the library's own (longer) text."""
    problem = net.tls_problem(exc)
    if problem:
        return problem
    refused = net.refusal(exc)
    if refused:
        return refused
    text = f"{type(exc).__name__} {exc}".lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return type(exc).__name__


_REASONS = [("refused", "connection refused"), ("timed out", "timed out"), ("timeout", "timed out")]
_REASONS += [("resolve", "unknown host"), ("name or service", "unknown host"), ("ssl", "TLS failure")]


def _zone(text: Any) -> str | None:
    """The IANA zone a ``calendar-timezone`` value (a VCALENDAR with one VTIMEZONE) stands for."""
    if not isinstance(text, str) or "VTIMEZONE" not in text:
        return None
    try:
        timezones = icalendar.Calendar.from_ical(text).walk("VTIMEZONE")
    except ValueError:
        return None
    for timezone in timezones:
        for value in (timezone.get("TZID"), timezone.get("X-LIC-LOCATION")):
            zone = _iana(str(value)) if value else None
            if zone:
                return zone
    return None


def _iana(tzid: str) -> str | None:
    """An IANA name for a TZID: itself, a Windows name's zone, or a vendor path's tail."""
    cleaned = tzid.strip().strip('"')
    parts = cleaned.strip("/").split("/")
    candidates = [cleaned, WINDOWS_TO_OLSON.get(cleaned)] + ["/".join(parts[i:]) for i in range(1, len(parts))]
    return next((c for c in candidates if isinstance(c, str) and c in _zone_names()), None)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())

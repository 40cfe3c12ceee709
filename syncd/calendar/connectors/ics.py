"""A read-only ICS feed, from a file or an http(s) URL, read as cheaply as it allows.

Cost follows what changed:

- HTTP: a conditional GET (If-None-Match / If-Modified-Since); a 304 costs nothing more. A file:
  an unchanged size and modification time costs no read.
- An unchanged body (same digest) costs no parse.
- A changed body is split into components by a line scan, without parsing, and each UID's
  components are digested with their volatile lines (DTSTAMP) left out; only UIDs whose digest
  moved become resources to parse. The scan of a 10,000-event feed costs a small fraction of
  parsing it.

Each UID's components become one :class:`~syncd.model.Resource` whose href is the UID, with the
feed's calendar properties (X-WR-TIMEZONE among them) and the VTIMEZONEs it uses. An item with no
UID gets a synthetic one from source, DTSTART and SUMMARY (DESIGN section 2). The feed's URL is
never logged or put in an error whole: it often carries a secret token.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import httpx

from syncd.calendar.connectors import net
from syncd.calendar.occurrences import synthetic_uid
from syncd.errors import SourceError
from syncd.model import Collection, CollectionChanges, Cursor, Kind, Location, Resource
from syncd.redaction import shown_feed

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_UNFOLD = re.compile(r"\r?\n[ \t]")
_ITEMS: tuple[Kind, ...] = ("VEVENT", "VTODO")
_TZID_PARAM = re.compile(r";TZID=(\"[^\"]*\"|[^;:]*)")


@dataclass
class _Component:
    name: str
    lines: list[str] = field(default_factory=list)

    def value(self, prop: str) -> str | None:
        for line in self.lines:
            head, _, value = line.partition(":")
            if head.split(";", 1)[0].upper() == prop:
                return value
        return None


@dataclass
class _Feed:
    header: list[str]
    zones: dict[str, str]
    items: dict[str, list[_Component]]

    @cached_property
    def header_digest(self) -> str:
        """The calendar's own properties, less PRODID (a new exporter version changes no item)."""
        kept = "\n".join(line for line in self.header if not line.upper().startswith("PRODID"))
        return hashlib.sha256(kept.encode()).hexdigest()


class IcsSource:
    """One ICS feed: ``target`` is a file path or an http(s) URL.

    Args:
        name: the source's name in config (errors and locations name it).
        target: the feed's path or URL.
        http: the injected httpx client for URLs.
        max_bytes: a larger feed (after decompression) fails the source with a clear error.
        timeout: seconds for the whole fetch, redirects and body included.
        policy: the addresses it may reach and the CAs it trusts (with the process's client,
            :func:`syncd.wiring.feed_client`, whose transport enforces them).

    A feed is read-only and has one collection, its ``target``: it is a :class:`Source` like any
    other, whose writes refuse and whose ``close`` leaves the injected client to its owner.
    """

    read_only = True

    def __init__(
        self,
        name: str,
        target: str,
        *,
        http: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = net.DEFAULT_TIMEOUT,
        policy: net.Policy = net.PUBLIC,
    ):
        self.name = name
        self.timeout = timeout
        self.policy = policy
        self.target = target
        self.http = http
        self.max_bytes = max_bytes
        self.is_url = target.startswith(("http://", "https://"))

    @property
    def shown(self) -> str:
        """The feed as it may appear in logs and errors: scheme, host, port and the path's short
        segments, so two feeds of one server can be told apart; a segment that may be a token
        (over 12 characters, or an email) and the query are shown as ``…``; never the userinfo."""
        return shown_feed(self.target)

    def discover(self) -> list[Collection]:
        """The feed's one collection: its target."""
        return [Collection(url=self.target, name=self.name, components=_ITEMS)]

    def changes(
        self, collection_url: str, since: Cursor, known: Mapping[str, str | None] | None = None
    ) -> CollectionChanges:
        """What changed in the feed since ``since``; a full listing whenever the body changed.

        ``collection_url`` is the target (a feed has no other collection); ``known`` is not needed,
        since the cursor holds every item's digest.
        """
        if collection_url != self.target:
            raise SourceError(self.name, f"a feed has one collection, its url; not {collection_url!r}")
        fetched = self._fetch_url(since) if self.is_url else self._fetch_file(since)
        if fetched is None:  # 304, or the file is untouched
            return CollectionChanges(self.name, self.target, cursor=since, requests=int(self.is_url))
        body, validators = fetched
        digest = hashlib.sha256(body).hexdigest()
        if digest == since.body_digest:
            return CollectionChanges(
                self.name, self.target, cursor=_cursor(validators, digest, since.digests), requests=int(self.is_url)
            )
        feed = _split(self.name, self.shown, _decode(body, self.name, self.shown))
        digests = {uid: _digest(feed, components) for uid, components in feed.items.items()}
        changed = tuple(
            Resource(Location(self.name, self.target, uid), digests[uid], _resource(feed, components))
            for uid, components in feed.items.items()
            if since.digests.get(uid) != digests[uid]
        )
        return CollectionChanges(
            self.name,
            self.target,
            changed=changed,
            deleted=tuple(uid for uid in since.digests if uid not in digests),
            complete=True,
            unchanged=tuple(uid for uid, d in digests.items() if since.digests.get(uid) == d),
            cursor=_cursor(validators, digest, digests),
            requests=int(self.is_url),
        )

    def update(self, location: Location, etag: str, ical: str) -> str | None:
        raise SourceError(self.name, "an ICS feed is read-only")

    def create(self, collection_url: str, uid: str, ical: str) -> tuple[Location, str | None]:
        raise SourceError(self.name, "an ICS feed is read-only")

    def close(self) -> None:
        """Nothing of its own to close: the client is the process's."""

    def _fetch_url(self, since: Cursor) -> tuple[bytes, dict[str, str | None]] | None:
        """One conditional GET, bounded by the deadline and, decoded, by ``max_bytes``."""
        if self.http is None:
            raise SourceError(self.name, "no HTTP client to fetch the feed with")
        headers = {"Accept": "text/calendar, */*;q=0.5", "Accept-Encoding": "gzip, deflate"}
        if since.etag:
            headers["If-None-Match"] = since.etag
        if since.last_modified:
            headers["If-Modified-Since"] = since.last_modified
        try:
            with net.deadline(self.timeout):
                with self.http.stream(
                    "GET", self.target, headers=headers, follow_redirects=True, extensions={net.POLICY: self.policy}
                ) as response:
                    if response.status_code == 304:
                        return None
                    if response.status_code >= 400:
                        raise SourceError(
                            self.name, f"{self.shown} answered {response.status_code} {response.reason_phrase}"
                        )
                    body = bytearray()
                    encodings = response.headers.get("Content-Encoding", "")
                    for chunk in decoded(response.iter_raw(), encodings, self.name):
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise SourceError(self.name, self._too_big())
                        net.remaining()
                    validators = {
                        "etag": response.headers.get("ETag"),
                        "last_modified": response.headers.get("Last-Modified"),
                    }
        except (net.DeadlineExceeded, httpx.TimeoutException) as exc:
            raise SourceError(
                self.name, f"{self.shown} did not answer in full within {self.timeout:g} s (timeout_seconds)"
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceError(self.name, f"cannot fetch {self.shown}: {_failure(exc)}") from exc
        return bytes(body), validators

    def _fetch_file(self, since: Cursor) -> tuple[bytes, dict[str, str | None]] | None:
        path = Path(self.target)
        try:
            stat = path.stat()
            stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
            if stamp == since.etag:
                return None
            if stat.st_size > self.max_bytes:
                raise SourceError(self.name, self._too_big())
            body = path.read_bytes()
        except OSError as exc:
            raise SourceError(self.name, f"cannot read {self.shown}: {exc.strerror}") from exc
        if body[:2] == b"\x1f\x8b":  # a gzipped file (feed.ics.gz)
            body = _gunzip(body, self.max_bytes, self.name, self._too_big())
        return body, {"etag": stamp, "last_modified": None}

    def _too_big(self) -> str:
        return f"{self.shown} is larger than {self.max_bytes} bytes (raise the source's max_bytes to accept it)"


def _cursor(validators: dict[str, str | None], body_digest: str, digests: Mapping[str, str]) -> Cursor:
    return Cursor(
        etag=validators["etag"],
        last_modified=validators["last_modified"],
        body_digest=body_digest,
        digests=dict(digests),
    )


def _failure(exc: httpx.HTTPError) -> str:
    """Why a fetch failed, in words: the refused address, the certificate problem, or the error's kind."""
    problem = net.tls_problem(exc)
    if problem:
        return problem
    return net.refusal(exc) or type(exc).__name__


def decoded(chunks: Iterable[bytes], encodings: str, source: str) -> Iterator[bytes]:
    """The body under its Content-Encoding layers, decoded as it arrives, in bounded pieces.

    Each layer (``gzip, gzip`` is two) is inflated with a bounded output per step, so memory
    stays near one piece per layer whatever the compression ratio; the caller counts the output
    against its limit and stops reading. Encodings other than gzip and deflate (br, zstd) are
    refused: syncd asks for gzip and deflate only.
    """
    stream: Iterable[bytes] = chunks
    for name in reversed([e.strip().lower() for e in encodings.split(",") if e.strip()]):
        if name in ("gzip", "x-gzip"):
            stream = _inflate(stream, 16 + zlib.MAX_WBITS, source)
        elif name == "deflate":
            stream = _inflate(stream, zlib.MAX_WBITS, source)
        elif name != "identity":
            raise SourceError(source, f"the feed is sent in an encoding syncd does not read ({name})")
    yield from stream


_PIECE = 64 * 1024


def _inflate(chunks: Iterable[bytes], wbits: int, source: str) -> Iterator[bytes]:
    """One compression layer undone; a deflate body without its zlib header is read raw too."""
    inflater = zlib.decompressobj(wbits)
    started = False
    try:
        for chunk in chunks:
            data = chunk
            while data:
                try:
                    out = inflater.decompress(data, _PIECE)
                except zlib.error:
                    if started or wbits != zlib.MAX_WBITS:
                        raise
                    inflater, wbits = zlib.decompressobj(-zlib.MAX_WBITS), -zlib.MAX_WBITS
                    out = inflater.decompress(data, _PIECE)
                started = True
                if out:
                    yield out
                data = inflater.unconsumed_tail
                if inflater.eof and inflater.unused_data:  # another gzip member follows
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits)
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise SourceError(source, f"the feed's compressed body is unreadable: {exc}") from exc


def _gunzip(body: bytes, limit: int, source: str, too_big: str) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise SourceError(source, f"not a readable gzip file: {exc}") from exc
    if len(data) > limit:
        raise SourceError(source, too_big)
    return data


def _decode(body: bytes, source: str, shown: str) -> str:
    text = body.decode("utf-8-sig", errors="replace")
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise SourceError(source, f"{shown} is not iCalendar (it does not start with BEGIN:VCALENDAR)")
    return text


def _split(source: str, shown: str, text: str) -> _Feed:
    """Splits a feed into calendar properties, VTIMEZONEs by TZID and items by UID, by lines."""
    header: list[str] = []
    zones: dict[str, str] = {}
    items: dict[str, list[_Component]] = {}
    current: _Component | None = None
    depth = 0
    for line in _UNFOLD.sub("", text).splitlines():
        if not line.strip():
            continue
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth == 2:
                current = _Component(upper[6:].strip())
        elif upper.startswith("END:"):
            depth -= 1
            if depth == 1 and current is not None:
                current.lines.append(line)
                _file(current, zones, items, source)
                current = None
                continue
        if current is not None:
            current.lines.append(line)
        elif depth == 1 and not upper.startswith("BEGIN:VCALENDAR"):
            header.append(line)
    if depth != 0:
        raise SourceError(source, f"{shown} is not iCalendar: unbalanced BEGIN/END")
    return _Feed(header, zones, items)


def _file(component: _Component, zones: dict[str, str], items: dict[str, list[_Component]], source: str) -> None:
    if component.name == "VTIMEZONE":
        zones[(component.value("TZID") or "").strip('"')] = "\r\n".join(component.lines)
    elif component.name in _ITEMS:
        uid = (component.value("UID") or "").strip()
        if not uid:
            uid = synthetic_uid(source, component.value("DTSTART") or "", component.value("SUMMARY") or "")
            component.lines.insert(1, f"UID:{uid}")
        items.setdefault(uid, []).append(component)


def _zones_used(feed: _Feed, components: list[_Component]) -> Iterator[str]:
    used = {m.strip('"') for c in components for line in c.lines if "TZID=" in line for m in _TZID_PARAM.findall(line)}
    for tzid in sorted(used):
        if tzid in feed.zones:
            yield feed.zones[tzid]


def _digest(feed: _Feed, components: list[_Component]) -> str:
    """A digest of what an item is: its lines less the volatile ones, with the calendar's
    properties and the zones it uses (a changed zone definition changes its items)."""
    kept = "\n".join(line for c in components for line in c.lines if not _volatile(line))
    zones = "".join(_zones_used(feed, components))
    return hashlib.sha256(f"{feed.header_digest}\n{zones}\n{kept}".encode()).hexdigest()[:32]


def _volatile(line: str) -> bool:
    """A line that changes on every export without the item changing (DTSTAMP)."""
    return line[:7].upper() == "DTSTAMP" and line[7:8] in (":", ";")


def _resource(feed: _Feed, components: list[_Component]) -> str:
    parts = ["BEGIN:VCALENDAR", *feed.header, *_zones_used(feed, components)]
    parts += ["\r\n".join(c.lines) for c in components]
    parts.append("END:VCALENDAR")
    return "\r\n".join(parts) + "\r\n"

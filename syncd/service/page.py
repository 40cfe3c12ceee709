"""The daemon's status page: ``syncd status``'s facts as HTML, with a form to settle each conflict.

``GET /status/<secret>`` renders the very structure ``syncd status --json`` prints
(:func:`syncd.status.facts`), the open conflicts each with a form, and each served feed's
subscription link (built from the address the page was opened at, so a proxy in front must pass
the Host header on). ``POST /status/<secret>`` with ``conflict``, ``keep`` (``calendar`` or
``kizen``) and ``token`` records the decision as ``syncd conflicts resolve`` does; the next sync
applies it. Then it redirects back (303), so a reload does not post again.

Server-rendered with :class:`string.Template` and :func:`html.escape` (every value escaped), no
JavaScript at all, and a Content-Security-Policy that allows none. The page holds no cookies, so
cross-site forms are refused by other means: the secret in the URL (a forger must know it), an
``Origin`` that names another host (403), and a per-page token, an HMAC under a key of the
process's own with the time it was issued (403 when missing, forged, or older than
:data:`TOKEN_HOURS`: reload the page). Referrer-Policy ``same-origin`` keeps the URL's secret
from the sites the page links to. Bad form input is a 4xx, each saying why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from syncd import __version__
from syncd.errors import StateError

log = logging.getLogger(__name__)

TOKEN_HOURS = 12
MAX_FORM_BYTES = 16 * 1024
KEEP = {"calendar": "calendar", "kizen": "Kizen", "crm": "Kizen"}  # as `conflicts resolve --keep` takes them
_TEMPLATE = Template(files("syncd").joinpath("templates", "status.html").read_text("utf-8"))
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class StatusPage:
    """The page's GET and POST, on what it is given.

    ``facts``: :func:`syncd.status.facts` on a fresh read of the state store. ``settle``: records
    the decision for a conflict id, ``keep`` one of :data:`KEEP`'s keys; raises ``StateError``
    when it cannot.
    """

    def __init__(
        self,
        facts: Callable[[], dict[str, Any]],
        settle: Callable[[int, str], None],
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
    ) -> None:
        """``key``: the form tokens' HMAC key; the workers of one state share one, so a form one
        of them served is accepted by any other (None: a key of this process alone)."""
        self._facts = facts
        self._settle = settle
        self._clock = clock
        self._key = key or secrets.token_bytes(32)

    def get(self, request: Request, feeds: Iterable[tuple[str, str]]) -> Response:
        """The page; ``feeds`` are the served feeds' (name, token)."""
        try:
            found = self._facts()
        except StateError as error:
            return _text(f"the state store cannot be read now: {error}", 503)
        notice = _notice(request.args)
        return Response(
            render(found, _links(request, feeds), self.token(), notice),
            headers=_HEADERS,
            mimetype="text/html",
        )

    def post(self, request: Request) -> Response:
        """Settles one open conflict from the page's form, then sends the browser back to the page."""
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return _text("too large", 413)
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc.lower() != request.host.lower():
            return _text("a form from another site is refused", 403)
        if request.mimetype != "application/x-www-form-urlencoded":  # what the page's form sends; no uploads
            return _text("send the page's form (application/x-www-form-urlencoded)", 415)
        request.max_form_memory_size = MAX_FORM_BYTES
        form = request.form
        if not self._valid(form.get("token", "")):
            return _text("the form is out of date or not this page's: reload the page and try again", 403)
        given, keep = form.get("conflict", ""), form.get("keep", "")
        if not (given.isascii() and given.isdigit() and len(given) <= 18):
            return _text("conflict: give the id of an open conflict", 400)
        if keep not in KEEP:
            return _text("keep: give calendar or kizen", 400)
        conflict = int(given)
        try:
            waiting = {c["id"] for c in self._facts()["conflicts"]}
        except StateError as error:
            return _text(f"the state store cannot be read now: {error}", 503)
        if conflict not in waiting:
            return _text(f"conflict {conflict} is not open: it is settled already, or there is none", 409)
        try:
            self._settle(conflict, keep)
        except StateError as error:
            return _text(f"conflict {conflict} not settled: {error}", 503)
        log.info("conflict %d settled from the status page: keeping the %s value", conflict, KEEP[keep])
        back = f"{request.path}?{urlencode({'settled': conflict, 'kept': keep})}"
        return Response(status=303, headers={**_HEADERS, "Location": back})

    def token(self) -> str:
        """A form token: when it was issued, and an HMAC of that under the process's key."""
        issued = str(int(self._clock()))
        return f"{issued}.{self._mac(issued)}"

    def _valid(self, token: str) -> bool:
        issued, _, mac = token.partition(".")
        if not (issued.isascii() and issued.isdigit() and len(issued) <= 12):
            return False
        if not hmac.compare_digest(mac.encode(), self._mac(issued).encode()):
            return False
        age = self._clock() - int(issued)
        return -60 <= age <= TOKEN_HOURS * 3600

    def _mac(self, issued: str) -> str:
        digest = hmac.new(self._key, f"settle:{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _text(message: str, status: int) -> Response:
    return Response(message, status=status, mimetype="text/plain", headers=_HEADERS)


def _notice(args: Mapping[str, str]) -> str | None:
    """What the redirect after a settlement tells (anything else in the query is ignored)."""
    settled, kept = args.get("settled", ""), args.get("kept", "")
    if settled.isascii() and settled.isdigit() and len(settled) <= 18 and kept in KEEP:
        return f"Conflict {int(settled)} settled: the {KEEP[kept]} value is kept at the next sync."
    return None


def _links(request: Request, feeds: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each feed's name and subscription URL, at the address the page was opened at."""
    return [(name, f"{request.host_url}feeds/{quote(token, safe='')}.ics") for name, token in sorted(feeds)]


# --- rendering ---------------------------------------------------------------------------------------


def render(found: dict[str, Any], feeds: list[tuple[str, str]], token: str, notice: str | None = None) -> str:
    """The page's HTML for ``found`` (the structure ``status --json`` prints)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return _TEMPLATE.substitute(
        now=now.isoformat().replace("+00:00", "Z"),
        now_shown=f"{now:%Y-%m-%d %H:%M}",
        version=escape(__version__),
        notice=f'<p class="notice" role="status">{escape(notice)}</p>' if notice else "",
        kizen=_kizen(found["kizen"]),
        sources="\n".join(_source(s) for s in found["sources"]) or "<p>No sources are configured.</p>",
        conflict_count=str(len(found["conflicts"])),
        conflicts=_conflicts(found["conflicts"], token),
        feeds=_feeds(feeds),
    )


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    shown = datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    return f'<time datetime="{escape(iso)}">{shown} UTC</time>'


def _state(state: str, reason: str | None) -> str:
    css = "state-" + "-".join(state.split())
    badge = f'<span class="state {escape(css)}">{escape(state)}</span>'
    return badge + (f" {escape(reason)}" if reason else "")


def _kizen(kizen: dict[str, Any] | None) -> str:
    if kizen is None:
        return "<p>Not reached yet: no sync has run.</p>"
    rows = [("State", _state(kizen["state"], kizen["reason"])), ("Last reached", _when(kizen["last_success"]))]
    if kizen["failed_at"]:
        rows.append(("Not reached at", _when(kizen["failed_at"])))
    return _table(rows, id="kizen")


def _source(source: dict[str, Any]) -> str:
    name = escape(source["name"])
    last = source["last_run"]
    rows = [("State", _state(source["state"], source["reason"]))]
    if last is None:
        rows.append(("Last run", "never"))
    else:
        did = ", ".join(f"{n} {escape(kind)}" for kind, n in last["counts"].items()) or "nothing"
        rows += [("Last run", f"{_when(last['finished_at'])}: {escape(last['status'])}"), ("Did", did)]
        rows += [("Error", escape(error)) for error in last["errors"]]
    rows.append(("Open pairings", str(source["open_pairings"])))
    rows += [(f"Read <code>{escape(url)}</code>", _when(at)) for url, at in source["collections"].items()]
    for kind in ("failed", "quarantined"):
        rows += [(kind.capitalize(), _item(item)) for item in source[kind]]
    rows += [
        ("Skipped by the mapping rules", f"{count} item(s): {escape(reason)}")
        for reason, count in sorted(source["skipped"].items())
    ]
    if source["conflicts"]:
        ids = ", ".join(f'<a href="#conflict-{int(c)}">{int(c)}</a>' for c in source["conflicts"])
        rows.append(("Open conflicts", ids))
    return f"<h3>{name}</h3>\n" + _table(rows, id=f"source-{source['name']}")


def _item(item: dict[str, Any]) -> str:
    slot = f" {escape(item['slot'])}" if item["slot"] else ""
    return f"UID <code>{escape(item['uid'])}</code>{slot}: {escape(item['reason'])} (since {_when(item['since'])})"


def _conflicts(conflicts: list[dict[str, Any]], token: str) -> str:
    if not conflicts:
        return "<p>None: nothing waits for a decision.</p>"
    labels = ("Id", "Source", "Item", "Field", "Calendar", "Kizen", "Settle")
    rows = ["<tr>" + "".join(f"<th>{label}</th>" for label in labels) + "</tr>"]
    for c in conflicts:
        slot = f" {escape(c['slot'])}" if c["slot"] else ""
        form = (
            f'<form method="post"><input type="hidden" name="token" value="{escape(token)}">'
            f'<input type="hidden" name="conflict" value="{int(c["id"])}">'
            '<button type="submit" name="keep" value="calendar">Keep calendar</button>'
            '<button type="submit" name="keep" value="kizen">Keep Kizen</button></form>'
            f'<div class="muted">or <code>{escape(c["settle"])}</code></div>'
        )
        cells = [
            str(int(c["id"])),
            escape(c["source"] or "-"),
            f"UID <code>{escape(c['uid'])}</code>{slot}",
            escape(c["field"]),
            _value(c["calendar"]),
            _value(c["kizen"]),
            form,
        ]
        rows.append(f'<tr id="conflict-{int(c["id"])}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _value(value: Any) -> str:
    return '<span class="muted">(empty)</span>' if value is None else escape(str(value))


def _feeds(feeds: list[tuple[str, str]]) -> str:
    if not feeds:
        return (
            "<p>No feed is served (a <code>[[feeds]]</code> entry needs <code>token_env</code> "
            "or <code>token_file</code>).</p>"
        )
    items = []
    for name, url in feeds:
        webcal = "webcal://" + url.split("://", 1)[1]
        items.append(
            f'<li id="feed-{escape(name)}">{escape(name)}: <a href="{escape(url)}">{escape(url)}</a> '
            f'(<a href="{escape(webcal)}">subscribe</a>)</li>'
        )
    intro = "<p>Add a link to a calendar app (&ldquo;subscribe from URL&rdquo;):</p>"
    return intro + "\n<ul>\n" + "\n".join(items) + "\n</ul>"


def _table(rows: list[tuple[str, str]], id: str) -> str:
    body = "\n".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table id="{escape(id)}">\n{body}\n</table>'

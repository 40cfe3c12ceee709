"""Secrets kept out of every log line, whoever logs it (syncd, httpx, caldav, waitress, ...).

Installed once per process by :func:`install` (the command line does it where it sets up
logging): every log record is redacted as it is made, before any handler or filter sees it,
so no handler, level or ``-v`` can print what was taken out; a record's ``exc_info`` is kept
(its redacted text is ``exc_text``), and ``logging.Formatter``'s exception and stack
formatting is redacted too, for formatters that format ``exc_info`` themselves. In each record's message, its
arguments, its traceback and its stack:

- a URL's userinfo is dropped and its query's values replaced
  (``https://ada:pw@host/p?token=x`` -> ``https://host/p?token=<redacted>``): feed and ICS URLs
  carry their secret in the query, and no query value is worth a leaked token;
- every secret value :func:`register` was told about (the Kizen key, CalDAV passwords, feed
  tokens, the webhook secret, registered when the config reads them) is replaced, as it is
  and percent-encoded. Values shorter than four characters are not registered: redacting them
  would blank out ordinary words and still tell little (the weak ones are refused elsewhere).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

REDACTED = "<redacted>"
_SHORTEST = 4
_SHOWN_SEGMENT = 12  # a feed's path segment longer than this may be a secret token: not shown
_DEFAULT_PORTS = {"http": 80, "https": 443}

_secrets: set[str] = set()
_guard = threading.Lock()
_installed = False

# scheme://[userinfo@]rest[?query]; the URL ends at whitespace, a quote or a bracket
# scheme://[userinfo@]rest[?query]; the URL ends at whitespace, a quote or a bracket. The scheme
# is bounded and starts a word, so a long run of letters costs linear time, not quadratic.
_URL = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)(?P<userinfo>[^/\s@?#'\"<>]*@)?"
    r"(?P<rest>[^\s?#'\"<>]*)(?:\?(?P<query>[^\s#'\"<>]*))?"
)


def shown_feed(target: str) -> str:
    """An ICS feed as it may appear in logs, errors and ``syncd status``: scheme, host, port and
    the path's short segments, so two feeds of one server can be told apart; a segment that may
    be a token (over 12 characters, or an email) and the query are shown as ``…``; never the
    userinfo. A file path is shown as it is. Here rather than in the ICS connector, so that
    ``syncd status`` shows feeds without importing the HTTP stack."""
    if not target.startswith(("http://", "https://")):
        return target
    url = urlsplit(target)
    host = url.hostname or ""
    try:
        number = url.port
    except ValueError:  # not a port: shown as nothing, the fetch names the problem
        number = None
    port = f":{number}" if number and number != _DEFAULT_PORTS[url.scheme] else ""
    segments = unquote(url.path or "/").split("/")
    path = "/".join(p if len(p) <= _SHOWN_SEGMENT and "@" not in p else "…" for p in segments)
    return f"{url.scheme}://{host}{port}{path}{'?…' if url.query else ''}"


def register(*values: str | None) -> None:
    """Remembers secret values so that no later log line shows them."""
    with _guard:
        for value in values:
            if value and len(value) >= _SHORTEST:
                _secrets.update({value, quote(value, safe=""), quote_plus(value)})


def _query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, equals, _value = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if equals else (REDACTED if name else ""))
    return "&".join(parts)


def _url(match: re.Match[str]) -> str:
    text = match["scheme"] + match["rest"]
    if match["query"] is not None:
        text += "?" + _query(match["query"])
    return text


def redact(text: str) -> str:
    """``text`` with URL userinfo and query values, and every registered secret, taken out."""
    text = _URL.sub(_url, text)
    with _guard:
        known = sorted(_secrets, key=len, reverse=True)  # the longest first: no half-replaced value
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_record(record: logging.LogRecord) -> None:
    """Redacts a record in place: its message (arguments merged in), traceback and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what can be shown, safely
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = redact(message), None
    if record.exc_info:  # kept for whoever checks it; formatters use exc_text (and are redacted anyway)
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install() -> None:
    """Redacts every log record made from now on in this process (idempotent)."""
    global _installed
    with _guard:
        if _installed:
            return
        _installed = True
    made = logging.getLogRecordFactory()

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        redact_record(record)
        return record

    logging.setLogRecordFactory(redacting)
    # a formatter that formats exc_info itself (a JSON one, say) is redacted too
    format_exception, format_stack = logging.Formatter.formatException, logging.Formatter.formatStack

    def exception(self: logging.Formatter, ei: Any) -> str:
        return redact(format_exception(self, ei))

    def stack(self: logging.Formatter, stack_info: str) -> str:
        return redact(format_stack(self, stack_info))

    logging.Formatter.formatException = exception  # type: ignore[method-assign]
    logging.Formatter.formatStack = stack  # type: ignore[method-assign]


class Redacting(logging.Filter):
    """The same redaction as a handler filter, for records made before :func:`install` or by hand."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True

"""How syncd logs: what an operator reads in a terminal or a journal, as text or as JSON.

- Every record's time is UTC in ISO 8601 with its zone (``2026-11-22T12:00:00.123Z``): a log
  read in another zone, or across a change to summer time, still orders and compares.
- ``--log-format json`` writes one JSON object a line through python-json-logger (fields
  ``time``, ``level``, ``logger``, ``message``, plus the structured ``summary`` of a cycle's
  summary lines), for log shippers; text is the default.
- Libraries stay quiet: their records below WARNING show only with ``-v``, their tracebacks only
  with ``-v``, and a message is cut at 1,000 characters. APScheduler's per-job lines ("Running
  job ... executed successfully"), procrastinate's (a worker's jobs) and waitress's are held to
  WARNING even with ``-v``: syncd's
  own cycle summaries say what ran.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

_LIBRARY_MESSAGE_LIMIT = 1000
_CHATTER = ("apscheduler", "waitress", "procrastinate")  # held at WARNING, -v or not
_HANDLER = "syncd"
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def utc_time(record: logging.LogRecord) -> str:
    """The record's time in UTC, ISO 8601 to the millisecond, ending in ``Z``."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """The text lines: UTC time with its zone, level, logger, message."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return utc_time(record)


def json_formatter() -> logging.Formatter:
    """One JSON object a line (python-json-logger), with the same UTC time as the text lines."""
    from pythonjsonlogger.json import JsonFormatter

    class _Json(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return utc_time(record)

    return _Json(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class Libraries(logging.Filter):
    """Keeps what libraries log short and quiet; syncd's own records pass as they are.

    Below WARNING a library's records show only with ``-v``; a traceback of theirs only with
    ``-v``; and a message is cut at 1,000 characters even then: caldav logs a server's whole
    answer when it is not XML (a 5 MB body made 4.9 MB of log), at INFO and on the root logger.
    """

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "syncd" or record.name.startswith("syncd."):
            return True
        if record.levelno < logging.WARNING and not self.verbose:
            return False
        if not self.verbose:
            record.exc_info = record.exc_text = None
        message = record.getMessage()
        if len(message) > _LIBRARY_MESSAGE_LIMIT:
            record.msg = (
                f"{message[:_LIBRARY_MESSAGE_LIMIT]}... ({len(message) - _LIBRARY_MESSAGE_LIMIT} characters left out)"
            )
            record.args = None
        return True


def configure(verbose: bool, log_format: LogFormat = "text") -> None:
    """Sets up syncd's handler (stderr) on the root logger, and the libraries' levels.

    The handler is made when the root logger has none (a process of its own) and set again on
    a later call; handlers somebody else installed (a test runner's) keep their formatter and
    only get the library filter. Redaction is installed first, before any record: no secret in
    any line, at any level (:mod:`syncd.redaction`).
    """
    from syncd import redaction

    redaction.install()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not root.handlers:
        mine: logging.Handler = logging.StreamHandler()
        mine.set_name(_HANDLER)
        root.addHandler(mine)
    for handler in root.handlers:
        if handler.get_name() == _HANDLER:
            handler.setFormatter(json_formatter() if log_format == "json" else TextFormatter())
        handler.filters = [f for f in handler.filters if not isinstance(f, Libraries)]
        handler.addFilter(Libraries(verbose))
    # httpx logs whole URLs at INFO; keep it quiet unless asked.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # caldav's DEBUG records are every request and response whole: off even with -v.
    logging.getLogger("caldav").setLevel(logging.INFO if verbose else logging.WARNING)
    for name in _CHATTER:
        logging.getLogger(name).setLevel(logging.WARNING)

"""Proving that a secret is in no log line: capture every level, then look at every record.

``caplog`` captures only what the loggers let through: left at its default, a DEBUG or INFO
line naming the key never reaches it and the test passes for the wrong reason. So the root
logger and every logger that could see a secret are set to DEBUG first.
"""

from __future__ import annotations

import logging

import pytest

# syncd's own, the HTTP stacks under Kizen's client and the CalDAV library, the WSGI server
LOGGERS = (None, "syncd", "httpx", "httpcore", "caldav", "niquests", "urllib3", "waitress", "werkzeug")


def capture_every_level(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def assert_never_logged(caplog: pytest.LogCaptureFixture, *secrets: str, besides: tuple[str, ...] = ()) -> None:
    """Fails if a secret is in any record, at any level: its message, its arguments or its traceback.

    ``besides`` names loggers left out, each for a reason its test gives (the test's own client).
    """
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG, "call capture_every_level first"
    formatter = logging.Formatter()
    for record in caplog.records:
        if record.name in besides:
            continue
        text = record.getMessage() + (formatter.formatException(record.exc_info) if record.exc_info else "")
        text += record.stack_info or ""
        for secret in secrets:
            assert secret not in text, f"{record.levelname} {record.name}: {text[:300]}"

"""The whole exception tree of syncd.

Every error syncd raises on purpose derives from :class:`SyncdError`, so the CLI maps
them to messages and exit codes in one place::

    SyncdError
     +- ConfigError           user-facing: a list of problems, each with its place
     +- SourceError           a calendar source failed: unreachable, not iCalendar, refused
     +- ItemError             one item cannot be synced (its action fails): names source and UID, says why
     |   +- Quarantined        one item cannot be read: left out until its calendar is fixed
     +- KizenError
     |   +- KizenRejected      Kizen answered 4xx: carries status, detail, code, field errors
     |   |   +- KizenAuthFailed    401/403: the key, business or user header is wrong
     |   |   +- KizenNotFound      404: missing, or not visible to the API user
     |   +- KizenUnavailable   429/5xx/connection failure that outlived the retries
     |   +- CreateOutcomeUnknown  a create was sent and its answer lost: reconcile, never re-send
     +- PreconditionFailed    a CalDAV write raced another writer (412)
     +- StateError            the state store cannot be opened, migrated or locked (exit 2)
     |   +- StateFailed        a read or write failed mid-run: a full disk, locked too long (exit 1)
     +- PortUnavailable       the daemon's or the sandbox's port is in use or cannot be bound

A safety rail firing is not an error: the rails hold a source's deletions and say so in the
cycle's report (:class:`syncd.sync.recovery.Rails`), and the rest of the cycle goes on.

Messages never carry a secret (API keys, tokens, webhook secrets): the client that raises
them never puts request headers into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration or a mapping file is invalid.

    Attributes:
        problems: one line per problem, each naming where it is ("config.toml: kizen.api_key: ...").
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class SourceError(SyncdError):
    """A whole calendar source failed this cycle; the other sources go on."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source!r}: {reason}")


class ItemError(SyncdError):
    """One calendar item cannot be synced this run; the rest of its source still syncs."""

    def __init__(self, source: str, uid: str, reason: str) -> None:
        self.source = source
        self.uid = uid
        self.reason = reason
        super().__init__(f"source {source!r}, UID {uid!r}: {reason}")


class Quarantined(ItemError):
    """One calendar item cannot be read (not iCalendar, no start, a duplicate UID...): it is left
    out, every copy of its UID, until its calendar is fixed.

    Raised deep in the expansion, where the item's place is not known: ``source`` and ``uid`` may
    be empty, and the reader that catches it names them.
    """

    def __init__(self, reason: str, source: str = "", uid: str = "") -> None:
        super().__init__(source, uid, reason)


class KizenError(SyncdError):
    """Base of the errors raised while talking to Kizen.

    Attributes:
        method: the HTTP method of the failed request.
        path: the request path (never the query's secrets, never headers).
    """

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"Kizen: {where}{message}")


class KizenRejected(KizenError):
    """Kizen refused the request (4xx); sending it again unchanged will fail again.

    Attributes:
        status: the HTTP status.
        detail: Kizen's ``detail`` text, if it sent one.
        code: Kizen's ``code``, if it sent one (``not_found``, ``does_not_exist``, ...).
        field_errors: Kizen's field errors, keyed by field name, as it sent them.
    """

    def __init__(
        self,
        *,
        status: int,
        detail: str | None = None,
        code: str | None = None,
        field_errors: Mapping[str, Any] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        self.field_errors: dict[str, Any] = dict(field_errors or {})
        message = str(status)
        if detail:
            message += f" {detail}"
        if code:
            message += f" ({code})"
        for field, errors in self.field_errors.items():
            message += f"; {field}: {_flatten(errors)}"
        super().__init__(message, method=method, path=path)

    @classmethod
    def from_answer(cls, status: int, body: Any, *, method: str = "", path: str = "") -> KizenRejected:
        """The error for one of Kizen's 4xx answers: ``{detail, code}``, field errors, or both.

        The subclass follows the status: 401/403 KizenAuthFailed, 404 KizenNotFound.
        """
        detail = code = None
        fields: dict[str, Any] = {}
        if isinstance(body, Mapping):
            detail = body.get("detail") if isinstance(body.get("detail"), str) else None
            code = body.get("code") if isinstance(body.get("code"), str) else None
            fields = {k: v for k, v in body.items() if k not in _NOT_FIELDS and not (k == "errors" and not v)}
        elif isinstance(body, list):
            fields = {"non_field_errors": body}
        kind = KizenAuthFailed if status in (401, 403) else KizenNotFound if status == 404 else KizenRejected
        return kind(status=status, detail=detail, code=code, field_errors=fields, method=method, path=path)


_NOT_FIELDS = frozenset({"detail", "code", "count", "next", "previous", "results"})


class KizenAuthFailed(KizenRejected):
    """Kizen refused the credentials (401/403): check the API key, business id and user id."""


class KizenNotFound(KizenRejected):
    """The id does not exist, or the API user may not see it (Kizen answers 404 to both)."""


class KizenUnavailable(KizenError):
    """Kizen stayed unavailable (429, 5xx, connection failures) after the bounded retries.

    Attributes:
        status: the last HTTP status, or None after a connection failure.
        retry_after: seconds Kizen asked to wait, if it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, method=method, path=path)


class CreateOutcomeUnknown(KizenError):
    """A create (or log) request was sent and its answer was lost.

    Kizen takes no idempotency key, so the request is never re-sent blindly: the engine
    settles the journaled intent by listing and reading candidates first.
    """


class PreconditionFailed(SyncdError):
    """A CalDAV write was refused with 412: another writer changed the object first."""

    def __init__(self, href: str) -> None:
        self.href = href
        super().__init__(f"{href}: changed on the server since it was read (412)")


class StateError(SyncdError):
    """The state store cannot be used: its file or folder is unwritable, not a database, or locked
    by another sync, or a migration failed. The message names the file and says what to do."""


class StateFailed(StateError):
    """A read or write of the state store failed once it was open (a full disk, another process
    holding it past the busy timeout): that write's transaction rolled back, nothing half-written."""


class PortUnavailable(SyncdError):
    """A server cannot listen: its port is in use, or the address is not this machine's."""

    def __init__(self, host: str, port: int, reason: str, *, in_use: bool, setting: str = "the port") -> None:
        self.host = host
        self.port = port
        self.reason = reason
        self.in_use = in_use
        if in_use:
            message = f"port {port} on {host} is in use: stop what listens there, or change {setting}"
        else:
            message = f"cannot listen on {host} port {port}: {reason}; check {setting} and the host"
        super().__init__(message)


def _flatten(errors: Any) -> str:
    """Renders Kizen's field errors (strings, ``{message, code}`` objects, nested) as text."""
    if isinstance(errors, str):
        return errors
    if isinstance(errors, Mapping):
        if "message" in errors:
            return str(errors["message"])
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in errors.items())
    if isinstance(errors, list):
        return "; ".join(text for text in (_flatten(e) for e in errors) if text)
    return str(errors)


def unforeseen(error: BaseException, limit: int = 500) -> str:
    """An exception nobody foresaw, named in one line: its class and message, the message cut
    at ``limit`` characters (a library may put a whole server answer into it)."""
    message = " ".join(str(error).split())
    if len(message) > limit:
        message = f"{message[:limit]}... ({len(message) - limit} characters left out)"
    return f"{type(error).__name__}: {message}"

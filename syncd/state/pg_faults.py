"""PostgreSQL's errors as syncd tells them, like :mod:`syncd.state.faults` does SQLite's:
:class:`StateError` while the store opens, migrates or locks, :class:`StateFailed` for a read or
write after that, each naming the database (never its password) and saying what to do. A
constraint violation or a misuse of the API (a bug) stays itself.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from syncd.errors import StateError, StateFailed

T = TypeVar("T")

BUGS = (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.InterfaceError, psycopg.DataError)


def shown(url: str) -> str:
    """The URL without its password or query (which may hold one): safe in a log line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def advice(error: BaseException) -> str:
    """What went wrong with the database, and what to do about it, in a few words."""
    text = " ".join(str(error).split()) or type(error).__name__
    lowered = text.lower()
    if isinstance(error, psycopg.errors.DiskFull) or "no space left" in lowered:
        return f"{text}: free space on the database server; nothing was half-written, the next run catches up"
    if isinstance(error, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled) or "timeout" in lowered:
        return f"{text}: the database kept it waiting too long; nothing was half-written, try again"
    if "password" in lowered or "authentication" in lowered or "role" in lowered and "does not exist" in lowered:
        return f"{text}: check the user and password (in the URL, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf"
    if "database" in lowered and "does not exist" in lowered:
        return f"{text}: create it (createdb NAME), or set [sync] state to one that exists"
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return f"{text}: this user may not read or change syncd's tables; grant it, or use the owner's user"
    if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return f"{text}: the server is a read-only standby; set [sync] state to the primary"
    if isinstance(error, psycopg.OperationalError):
        return f"{text}: is the PostgreSQL server running and reachable? Nothing was half-written, the next run retries"
    return text


def failure(kind: type[StateError], url: str, error: BaseException) -> StateError:
    return kind(f"state store {shown(url)}: {advice(error)}")


def maps_errors(cls: type[T]) -> type[T]:
    """Maps the psycopg errors of every public method of the store to :class:`StateFailed`."""

    def mapped(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with mapping(self.url):
                return method(self, *args, **kwargs)

        return wrapper

    for name, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and not name.startswith("_") and name not in ("atomic", "lock"):
            setattr(cls, name, mapped(value))
    return cls


@contextmanager
def mapping(url: str, kind: type[StateError] = StateFailed) -> Iterator[None]:
    """A block whose psycopg errors become ``kind`` naming the database."""
    try:
        yield
    except BUGS:
        raise
    except psycopg.Error as exc:
        raise failure(kind, url, exc) from exc

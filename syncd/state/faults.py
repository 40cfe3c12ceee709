"""SQLite's and the OS's errors as syncd tells them: :class:`StateError` while the store opens,
migrates or locks, :class:`StateFailed` for a read or write after that, each naming the file and
saying what to do. A constraint violation or a misuse of the API is a bug and stays itself.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from syncd.errors import StateError, StateFailed

T = TypeVar("T")

# SQLite's own errors (locked, full, read-only, not a database, I/O) and the OS's; a constraint
# violation or a misuse of the API (IntegrityError, ProgrammingError) is a bug and stays itself.
BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def advice(error: BaseException, timeout: float) -> str:
    """What went wrong with the state file, and what to do about it, in a few words."""
    text = (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return (
            f"{text}: another process kept it busy past the {timeout:g} s busy timeout; "
            "nothing was half-written, try again (or stop the other process)"
        )
    code = getattr(error, "errno", None)
    if "full" in lowered or code == errno.ENOSPC:
        return f"{text}: free space on its file system; nothing was half-written, the next run catches up"
    if "read-only file system" in lowered or code == errno.EROFS:
        return (
            f"{text}: set [sync] state to a file on a writable file system "
            "(under systemd's ProtectSystem, one in the unit's ReadWritePaths)"
        )
    if code in (errno.ENOTDIR, errno.EEXIST):  # EEXIST: mkdir of a folder where a file is
        folder = getattr(error, "filename", None) or "its folder"
        return f"cannot make its folder {folder}: a file is in the way; set [sync] state to another path"
    if "readonly" in lowered or "permission" in lowered or "unable to open" in lowered or code == errno.EACCES:
        return (
            f"{text}: this user cannot write it or its folder; fix the permissions, "
            "or set [sync] state to a writable file"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return f"{text}: it is not a syncd state store, or it is damaged; point [sync] state elsewhere"
    return text


def failure(kind: type[StateError], path: Path | None, error: BaseException, timeout: float) -> StateError:
    where = str(path.absolute()) if path is not None else ":memory:"
    return kind(f"state store {where}: {advice(error, timeout)}")


def mapped(method: Callable[..., T]) -> Callable[..., T]:
    """A store method whose SQLite and OS errors become :class:`StateFailed` naming the file."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except BUGS:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise failure(StateFailed, self.path, exc, self.busy_timeout) from exc

    return wrapper


def maps_errors(cls: type[T]) -> type[T]:
    """Maps the errors of every public method of the store, a method added later included."""
    for name, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and not name.startswith("_") and name not in ("atomic", "lock"):
            setattr(cls, name, mapped(value))
    return cls


@contextmanager
def mapping(path: Path | None, timeout: float, kind: type[StateError] = StateFailed) -> Iterator[None]:
    """A block whose SQLite and OS errors become ``kind`` naming the file."""
    try:
        yield
    except BUGS:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise failure(kind, path, exc, timeout) from exc

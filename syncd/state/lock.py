"""The sync lock: one sync process at a time per state file (DESIGN section 6).

An OS file lock on ``<state>.lock``, released by the kernel even when its holder is killed; the
file names the holder, so a second sync is refused with a message saying who runs.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from syncd.errors import StateError
from syncd.files import private_file
from syncd.state.faults import failure


@contextmanager
def sync_lock(path: Path | None, command: str, timeout: float) -> Iterator[None]:
    """Holds the sync lock for the duration; a second holder is refused, naming the first.

    Raises:
        StateError: another sync holds it, or its file (``<state>.lock``) cannot be written.
    """
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        private_file(lock_path)  # it names who runs, on which host: its owner's business
        handle = open(lock_path, "a+")  # noqa: SIM115 (held open for as long as the lock)
    except OSError as exc:
        raise failure(StateError, lock_path, exc, timeout) from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateError(f"another sync is running ({holder}); wait for it, or stop it first") from None
        except OSError as exc:  # a file system without locks (some network mounts)
            raise failure(StateError, lock_path, exc, timeout) from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()}: syncd {command}, "
                f"since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
            )
            handle.flush()
        except OSError as exc:
            raise failure(StateError, lock_path, exc, timeout) from exc
        yield
    finally:
        handle.close()

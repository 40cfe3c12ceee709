"""The state store shared by the workers that apply one plan.

A store is one connection, and one connection has one transaction: a worker's rows written
while another worker's transaction is open would commit, or roll back, with it. So every call,
and every transaction whole, is made under one lock. Workers hold it only while they touch the
state, never while they wait for Kizen or a calendar server (no action's transaction spans a
remote call), so the requests still run side by side.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from syncd.state.protocol import SyncState


class _Serialized:
    """A store whose every method runs under one re-entrant lock (see the module)."""

    def __init__(self, state: SyncState) -> None:
        self._state = state
        self._lock = threading.RLock()

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:
        with self._lock, self._state.atomic(durable=durable):
            yield

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._state, name)
        if not callable(found):
            return found
        method = cast(Callable[..., Any], found)

        @functools.wraps(method)
        def serialized(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return serialized


def shared(state: SyncState) -> SyncState:
    """``state`` made safe to share between threads (each call and transaction whole, in turn)."""
    return cast(SyncState, _Serialized(state))

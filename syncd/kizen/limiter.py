"""One business's pace, shared by every worker that talks to its Kizen.

Kizen documents no rate limit, but answers 429 with ``Retry-After`` when one is hit. Workers
sending one plan's writes side by side would each hit it in turn; so a 429 (or any answer that
names a wait) holds back every request of the business until that wait is over, not only the
request that got it. The process has one :class:`Limiter` per Kizen client, so per business.

Workers on several machines (``syncd worker``) share one business too: their clients hold a
:class:`SharedLimiter`, which also records each hold in the state they share (:class:`HoldStore`,
PostgreSQL's :class:`syncd.state.postgres.PostgresStore`) and reads the holds the others
recorded. Reading before every request would cost a round trip to the database per request; so
a client reads at most once every ``every`` seconds (one by default: a hold is Kizen's
``Retry-After``, whole seconds, so a worker that learns of one up to a second late sends at most
a second's requests too many, which the next 429 tells it about anyway), and always after its
own hold. A cap on requests per second (``[kizen] max_requests_per_second``, none by default)
spaces the requests of the business by ``interval`` seconds: in the process, or, shared, by a
moment each request takes from the store, a round trip per request (the cap would not hold
across workers otherwise).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from syncd.errors import StateError

log = logging.getLogger(__name__)

READ_EVERY = 1.0  # seconds between two reads of the shared hold by one client


@dataclass
class Limiter:
    """The instant before which no request of this business is sent.

    ``clock`` is injected with the client's ``sleep``, so tests that do not wait keep time too.
    """

    clock: Callable[[], float] = time.monotonic
    interval: float = 0.0
    _until: float = field(default=0.0, init=False)
    _next: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def hold(self, seconds: float) -> None:
        """No request before ``seconds`` from now (a later hold already in force stands)."""
        with self._lock:
            self._until = max(self._until, self.clock() + seconds)

    def wait(self, sleep: Callable[[float], None]) -> None:
        """Waits, outside the lock, until the hold in force is over (and ``interval`` has
        passed since the request before: ``[kizen] max_requests_per_second``)."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._until, self._next)
            self._next = slot + self.interval
        if slot > now:
            sleep(slot - now)


class HoldStore(Protocol):
    """Where the holds of every worker's clients meet, each under its business's key. Times are
    the store's own (seconds from now), so the machines' clocks need not agree."""

    def hold_kizen(self, business: str, seconds: float) -> None:
        """No request of ``business`` before ``seconds`` from now (a later hold stands)."""

    def kizen_hold(self, business: str) -> float:
        """Seconds left of ``business``'s hold: zero or less when none is in force."""

    def kizen_slot(self, business: str, interval: float) -> float:
        """Takes ``business``'s next free moment, after its hold and ``interval`` after the one
        taken before; returns the seconds until it."""


@dataclass(kw_only=True)
class SharedLimiter(Limiter):
    """A :class:`Limiter` whose holds are also every other worker's of the business ``key``.

    The store failing never stops a request: the hold of this process still stands, and a
    warning says the others may not hear of it.
    """

    store: HoldStore
    key: str
    every: float = READ_EVERY
    _read_at: float | None = field(default=None, init=False)

    def hold(self, seconds: float) -> None:
        super().hold(seconds)
        with self._lock:
            self._read_at = None  # read again before the next request: another's may be longer
        try:
            self.store.hold_kizen(self.key, seconds)
        except StateError as exc:
            log.warning("Kizen's hold of %.1fs not shared with the other workers: %s", seconds, exc)

    def wait(self, sleep: Callable[[float], None]) -> None:
        """Waits out the shared hold; with an ``interval``, also takes the business's next free
        moment from the store (a round trip per request, only when a cap is set)."""
        self._read_shared()
        if self.interval <= 0:
            return super().wait(sleep)
        try:
            shared = self.store.kizen_slot(self.key, self.interval)
        except StateError as exc:
            log.warning("the business's pace not shared with the other workers: %s", exc)
            return super().wait(sleep)
        with self._lock:
            left = max(shared, self._until - self.clock())
        if left > 0:
            sleep(left)
        return None

    def _read_shared(self) -> None:
        """Takes in the shared hold, if a read is due (one thread reads; the others go on)."""
        with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.every:
                return
            self._read_at = now
        try:
            left = self.store.kizen_hold(self.key)
        except StateError as exc:
            log.warning("the other workers' hold on Kizen not read: %s", exc)
            return
        if left > 0:
            Limiter.hold(self, left)

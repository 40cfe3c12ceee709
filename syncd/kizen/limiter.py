"""One business's pace, shared by every worker that talks to its Kizen.

Kizen documents no rate limit, but answers 429 with ``Retry-After`` when one is hit. Workers
sending one plan's writes side by side would each hit it in turn; so a 429 (or any answer that
names a wait) holds back every request of the business until that wait is over, not only the
request that got it. The process has one :class:`Limiter` per Kizen client, so per business.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Limiter:
    """The instant before which no request of this business is sent.

    ``clock`` is injected with the client's ``sleep``, so tests that do not wait keep time too.
    """

    clock: Callable[[], float] = time.monotonic
    _until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def hold(self, seconds: float) -> None:
        """No request before ``seconds`` from now (a later hold already in force stands)."""
        with self._lock:
            self._until = max(self._until, self.clock() + seconds)

    def wait(self, sleep: Callable[[float], None]) -> None:
        """Waits, outside the lock, until the hold in force is over."""
        with self._lock:
            left = self._until - self.clock()
        if left > 0:
            sleep(left)

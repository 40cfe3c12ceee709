"""Fault injection: the failures a real Kizen and the network between produce.

Two ways in, both deterministic:

- a :class:`FaultPlan` gives each fault kind a rate and draws from a seeded RNG, so the same seed
  and the same request sequence give the same faults (soak tests, ``syncd sandbox --faults``);
- :meth:`Faults.script` queues exact faults for the next matching requests (unit tests).

``drop-before`` closes the connection without applying the request; ``drop-after`` applies it
and then closes the connection without an answer, the case where a create's outcome is unknown.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from syncd.errors import ConfigError


class Fault(StrEnum):
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    DROP_BEFORE = "drop-before"
    DROP_AFTER = "drop-after"


class DropConnection(ConnectionAbortedError):
    """Raised by the app to close the connection without an answer.

    The loopback server closes the socket; the in-process transport turns it into the
    ``httpx.RemoteProtocolError`` a real socket would give.
    """


@dataclass(frozen=True)
class FaultPlan:
    """Random faults: a rate per kind (0..1), latency in seconds, and the RNG's seed."""

    seed: int = 0
    rates: Mapping[Fault, float] = field(default_factory=dict)
    latency: tuple[float, float] = (0.0, 0.0)
    retry_after: int = 1

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0) -> FaultPlan:
        """Reads ``"429=0.05,503=0.02,drop-after=0.01,latency=0.01-0.05"``."""
        rates: dict[Fault, float] = {}
        latency = (0.0, 0.0)
        retry_after = 1
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            try:
                if name == "latency":
                    low, _, high = value.partition("-")
                    latency = (float(low), float(high or low))
                elif name == "retry-after":
                    retry_after = int(value)
                else:
                    rates[Fault(name)] = float(value)
            except ValueError as exc:
                kinds = ", ".join(f.value for f in Fault)
                raise ConfigError(
                    [f"faults: {part!r}: use KIND=RATE ({kinds}), latency=LOW-HIGH or retry-after=SECONDS"]
                ) from exc
        return cls(seed=seed, rates=rates, latency=latency, retry_after=retry_after)


@dataclass
class _Scripted:
    fault: Fault
    method: str | None
    path: str | None
    times: int


class Faults:
    """Decides, request by request, whether to inject a fault. Thread-safe."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self._rng = random.Random(self.plan.seed)
        self._script: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str, Fault]] = []

    def use(self, plan: FaultPlan) -> None:
        """Replaces the random plan (and restarts its RNG from the plan's seed)."""
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)

    def clear(self) -> None:
        """Forgets the scripted faults not yet injected."""
        with self._lock:
            self._script.clear()

    def script(self, fault: Fault, *, method: str | None = None, path: str | None = None, times: int = 1) -> None:
        """Injects ``fault`` into the next ``times`` requests matching method and path prefix."""
        with self._lock:
            self._script.append(_Scripted(fault, method, path, times))

    def draw(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any: scripted ones first, then the plan's rates."""
        with self._lock:
            chosen = self._scripted(method, path)
            if chosen is None and self.plan.rates:
                roll = self._rng.random()
                for fault, rate in self.plan.rates.items():
                    if roll < rate:
                        chosen = fault
                        break
                    roll -= rate
            if chosen is not None:
                self.injected.append((method, path, chosen))
            return chosen

    def delay(self) -> float:
        """Seconds of latency for this request."""
        low, high = self.plan.latency
        if high <= 0:
            return 0.0
        with self._lock:
            return self._rng.uniform(low, high)

    def _scripted(self, method: str, path: str) -> Fault | None:
        for entry in self._script:
            if (entry.method is None or entry.method == method) and (entry.path is None or path.startswith(entry.path)):
                entry.times -= 1
                if entry.times <= 0:
                    self._script.remove(entry)
                return entry.fault
        return None

"""Fault plans: parsed from the command line's spec, and latency drawn from the seeded RNG."""

from __future__ import annotations

import httpx
import pytest

from syncd.errors import ConfigError
from syncd.sandbox import Fault, FaultPlan, Sandbox


def test_a_spec_parses_into_rates_latency_and_retry_after() -> None:
    plan = FaultPlan.parse("429=0.05, 503=0.02,drop-after=0.01,latency=0.01-0.1,retry-after=3", seed=9)
    assert plan.rates == {Fault.RATE_LIMITED: 0.05, Fault.UNAVAILABLE: 0.02, Fault.DROP_AFTER: 0.01}
    assert plan.latency == (0.01, 0.1) and plan.retry_after == 3 and plan.seed == 9


@pytest.mark.parametrize("spec", ["418=0.1", "429=lots", "latency=slow", "retry-after=soon"])
def test_a_bad_spec_names_the_bad_part(spec: str) -> None:
    with pytest.raises(ConfigError, match=spec):
        FaultPlan.parse(spec)


def test_latency_is_drawn_per_request_within_bounds_and_repeatably() -> None:
    def delays(seed: int) -> list[float]:
        slept: list[float] = []
        with Sandbox(faults=FaultPlan(seed=seed, latency=(0.02, 0.2))) as box:
            box.app.sleep = slept.append
            with httpx.Client(transport=box.transport(), base_url="http://k", headers=box.headers) as http:
                for _ in range(5):
                    assert http.get("/api/team").status_code == 200
        return slept

    first = delays(3)
    assert len(first) == 5 and all(0.02 <= d <= 0.2 for d in first) and len(set(first)) == 5
    assert first == delays(3)

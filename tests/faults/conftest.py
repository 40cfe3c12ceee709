"""The fault matrix at CI size, or at soak size with ``--soak``; each scenario runs once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backends import Backend
from tests.faults import harness
from tests.faults.harness import Result
from tests.faults.scenarios import CI, SCENARIOS, SOAK, Size
from tests.pg import Server

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """At soak size one scenario takes minutes: lift the per-test timeout for the matrix's tests."""
    if config.getoption("--soak"):
        for item in items:
            if item.path.parent == HERE:
                item.add_marker(pytest.mark.timeout(7200))


@pytest.fixture(scope="session")
def size(request: pytest.FixtureRequest) -> Size:
    return SOAK if request.config.getoption("--soak") else CI


@pytest.fixture(scope="session")
def matrix(size: Size, tmp_path_factory: pytest.TempPathFactory, pg_server: Server) -> Callable[[str], list[Result]]:
    """Runs a scenario for each of the size's seeds, once, however many tests look at it; a name
    ending in ``@postgresql`` runs it with the state in PostgreSQL (a database per seed)."""
    done: dict[str, list[Result]] = {}

    def results(name: str) -> list[Result]:
        if name not in done:
            scenario, _, backend = name.partition("@")
            folder = tmp_path_factory.mktemp(name.replace("/", "-").replace("@", "-"))
            harness.BACKEND = Backend(backend, pg_server) if backend else Backend("sqlite")
            try:
                done[name] = [SCENARIOS[scenario](folder / f"seed-{seed}", size, seed) for seed in size.seeds]
            finally:
                harness.BACKEND.close()
                harness.BACKEND = Backend("sqlite")
        return done[name]

    return results


def invariants_hold(results: list[Result]) -> None:
    """No duplicate, nothing lost, no logged activity touched, the state in step with Kizen."""
    broken = [r.describe() for r in results if not r.verdict.ok]
    assert not broken, "\n".join(broken)


def no_run_failed(results: list[Result]) -> None:
    """No run let an exception out (a traceback, or a run ended early) and the runs converged."""
    broken = [r.describe() for r in results if r.errors]
    assert not broken, "\n".join(broken)

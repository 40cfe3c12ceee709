"""Fixtures shared by every test: a fresh sandbox per test, reached in-process or over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox import Sandbox, schemas
from tests import backends
from tests.pg import Server

MEETING = "1473d9d0-2ae9-42bd-af7d-93363ab14aeb"  # activity types of the default seed
CALL = "614e0f65-5923-4462-a69b-f0904842ee2d"
ADA = "16cfdf6d-5b70-4d9b-bd41-59940ce4897c"  # the API user
GRACE = "f1b39a8d-5f73-48da-a1bd-6316da78fa5e"
ROLE = "82b34792-8738-4bc3-89ba-183fb5ac81f0"
CONTACTS = "bea05ff6-bb60-413b-9074-c6be238e46fa"
CHARLES = "20e2c5d9-a16e-4dc9-acf0-7cd4d1d8d925"
SCHEDULED = "/api/activities/scheduled-activity"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--corpus",
        choices=("sample", "all"),
        default="sample",
        help="the real-world corpus test: a fixed sample of its .ics files (CI), or all of them",
    )
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        help="fuzz the daemon's HTTP app and the sandbox's API with many more examples "
        "(tests/unit/test_web_fuzz.py, tests/sandbox/test_api_schemathesis.py)",
    )
    parser.addoption(
        "--soak", action="store_true", help="run the fault matrix (tests/faults) at its soak size: longer, more seeds"
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The session's PostgreSQL server (:mod:`tests.pg`), started by the first test that needs it."""
    server = Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[backends.Backend]:
    """The state backend of this run of the test: it runs once on each (``[sqlite]``, ``[postgresql]``)."""
    chosen = backends.Backend(
        request.param, request.getfixturevalue("pg_server") if request.param != "sqlite" else None
    )
    backends.CURRENT = chosen
    try:
        yield chosen
    finally:
        backends.CURRENT = backends.Backend("sqlite")
        chosen.close()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A raw httpx client that reaches the sandbox in-process, with the auth headers."""
    with httpx.Client(transport=sandbox.transport(), base_url="http://kizen.test", headers=sandbox.headers) as client:
        yield client


@pytest.fixture
def loopback(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A raw httpx client that reaches the sandbox's loopback server, with the auth headers."""
    server = sandbox.serve()
    with httpx.Client(base_url=server.url, headers=sandbox.headers, timeout=10) as client:
        yield client


def new_activity(**overrides: Any) -> dict[str, Any]:
    """A valid create body: a meeting for the API user, due 2030-01-01 09:00 UTC."""
    return {"activity_object_id": MEETING, "due_datetime": "2030-01-01T09:00:00Z", "employee_id": ADA, **overrides}


def assert_read_shape(body: dict[str, Any]) -> None:
    """Fails unless ``body`` is a scheduled activity in the corrected read shape."""
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in schemas.response_validator("ScheduledActivityV2Read").iter_errors(body)
    ]
    assert not errors, errors


@pytest.fixture(autouse=True)
def no_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test finds the machine's own syncd config (``SYNCD_CONFIG``, ``~/.config/syncd``)."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))

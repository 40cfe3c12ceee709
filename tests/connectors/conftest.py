"""Fixtures for the connector tests: one Radicale per session, a fresh account and calendar per test."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.calendar.connectors.net import Policy
from tests.connectors.radicale import Radicale, mkcalendar

LOOPBACK = Policy(allow_private_network=True)  # every test server listens on 127.0.0.1

PASSWORD = "Tr0ub4dor&3-never-shown"  # every source logs in with it; no message may carry it


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale with auth type none: any user name logs in, and owns its own home."""
    with Radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="session")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale that checks passwords (htpasswd): only ada, with PASSWORD, gets in."""
    with Radicale(tmp_path_factory.mktemp("guarded"), users={"ada": PASSWORD}) as server:
        yield server


@pytest.fixture
def user() -> str:
    """A user of its own per test, so discovery sees only this test's calendars."""
    return f"u{uuid4().hex[:12]}"


@pytest.fixture
def http(radicale: Radicale, user: str) -> Iterator[httpx.Client]:
    """A plain httpx client for seeding, logged in as the test's user."""
    with radicale.client(user) as client:
        yield client


@pytest.fixture
def calendar(http: httpx.Client, radicale: Radicale, user: str) -> str:
    """A fresh, empty calendar for events and to-dos; its absolute URL."""
    mkcalendar(http, f"/{user}/desk/", name="Work")
    return f"{radicale.url}/{user}/desk/"


@pytest.fixture
def source(radicale: Radicale, user: str) -> Iterator[CalDAVSource]:
    """The source under test, on the test's user's home URL."""
    with CalDAVSource(
        "radicale", f"{radicale.url}/{user}/", username=user, password=SecretStr(PASSWORD), policy=LOOPBACK
    ) as src:
        yield src

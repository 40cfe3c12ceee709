"""Fixtures for the connector tests: one Radicale and one Xandikos per session, a fresh account and
calendar per test; ``dav_server`` runs a test on each of the two servers."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from syncd.calendar.connectors.caldav import CalDAVSource
from syncd.calendar.connectors.net import Policy
from tests.connectors.radicale import Radicale, mkcalendar
from tests.connectors.xandikos import DavServer, Xandikos

LOOPBACK = Policy(allow_private_network=True)  # every test server listens on 127.0.0.1

PASSWORD = "Tr0ub4dor&3-never-shown"  # every source logs in with it; no message may carry it


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale with auth type none: any user name logs in, and owns its own home."""
    with Radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xandikos]:
    """Xandikos in multi-user mode: any user name logs in, and gets a principal of its own."""
    with Xandikos(tmp_path_factory.mktemp("xandikos")) as server:
        yield server


@pytest.fixture(params=["radicale", "xandikos"])
def dav_server(request: pytest.FixtureRequest) -> DavServer:
    """Each CalDAV server in turn: Radicale, and Xandikos, which nobody here wrote either."""
    server: DavServer = request.getfixturevalue(request.param)
    return server


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
def http(dav_server: DavServer, user: str) -> Iterator[httpx.Client]:
    """A plain httpx client for seeding, logged in as the test's user."""
    with dav_server.client(user) as client:
        yield client


@pytest.fixture
def calendar(http: httpx.Client, dav_server: DavServer, user: str) -> str:
    """A fresh, empty calendar for events and to-dos in the user's calendar home; its absolute URL."""
    mkcalendar(http, f"{dav_server.home(user)}desk/", name="Work")
    return f"{dav_server.url}{dav_server.home(user)}desk/"


@pytest.fixture
def source(dav_server: DavServer, user: str) -> Iterator[CalDAVSource]:
    """The source under test, on the test's user's principal URL (discovery finds the home)."""
    with CalDAVSource(
        "radicale", f"{dav_server.url}/{user}/", username=user, password=SecretStr(PASSWORD), policy=LOOPBACK
    ) as src:
        yield src

"""Fixtures for the sandbox and client tests: the client on both transports, and a recorder."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from syncd.kizen import ActivitiesClient, Credentials, http_client
from syncd.kizen.limiter import Limiter
from syncd.sandbox import Sandbox
from tests.conftest import SCHEDULED, assert_read_shape

SUMMARY = {"id", "activity_object", "employee", "role", "due_datetime", "original_due_datetime", "completed_at"}
SUMMARY |= {"logged_activity_id", "created"}
_ONE = re.compile(r"^/api/activities/scheduled-activity(/[0-9a-f-]{36})?$")


class Recorder:
    """Keeps every request the client sent, and checks scheduled activities as they come back."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = 0.0  # the time the client keeps: it moves only when the client sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def response(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        if response.status_code not in (200, 201) or not _ONE.match(request.url.path):
            return
        if request.method == "GET" and request.url.path == SCHEDULED:  # the list: summaries only
            for item in response.json()["results"]:
                assert set(item) == SUMMARY
        else:
            assert_read_shape(response.json())

    def bodies(self, method: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == method]


def count(sandbox: Sandbox) -> int:
    """How many scheduled activities the sandbox holds."""
    return sandbox.service.list_scheduled({}, 0, 1)[0]


def credentials(sandbox: Sandbox, key: str | None = None) -> Credentials:
    return Credentials(
        api_key=SecretStr(key or sandbox.world.business.api_key),
        business_id=str(sandbox.world.business.id),
        user_id=str(sandbox.world.api_user.id),
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["in-process", "loopback"])
def kizen(request: pytest.FixtureRequest, sandbox: Sandbox, recorder: Recorder) -> Iterator[ActivitiesClient]:
    if request.param == "in-process":
        http = http_client("http://kizen.test", transport=sandbox.transport())
    else:
        http = http_client(sandbox.serve().url)
    http.event_hooks = {"request": [recorder.request], "response": [recorder.response]}
    with http:
        yield ActivitiesClient(
            http, credentials(sandbox), sleep=recorder.sleep, rng=random.Random(1), limiter=Limiter(recorder.clock)
        )

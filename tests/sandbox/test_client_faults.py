"""The client under the sandbox's injected faults: what it retries, and what it never re-sends."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import httpx
import pytest

from syncd.errors import CreateOutcomeUnknown, KizenUnavailable
from syncd.kizen import ActivitiesClient, LogRequest, NewScheduledActivity, RetryPolicy, http_client
from syncd.kizen.limiter import Limiter
from syncd.sandbox import Fault, FaultPlan, Sandbox
from tests.conftest import ADA, MEETING, SCHEDULED
from tests.sandbox.conftest import Recorder, count, credentials

NEW = NewScheduledActivity(
    activity_object_id=MEETING, due_datetime=datetime(2030, 1, 1, 9, tzinfo=UTC), employee_id=ADA
)


def posts(recorder: Recorder) -> int:
    return sum(1 for r in recorder.requests if r.method == "POST")


@pytest.mark.parametrize(
    "fault", [Fault.RATE_LIMITED, Fault.BAD_GATEWAY, Fault.UNAVAILABLE, Fault.DROP_BEFORE, Fault.DROP_AFTER]
)
def test_reads_are_retried_through_transient_faults(
    kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder, fault: Fault
) -> None:
    created = kizen.create(NEW)
    sandbox.faults.script(fault, method="GET", times=2)
    assert kizen.get(created.id).id == created.id
    assert sum(1 for r in recorder.requests if r.method == "GET") == 3
    assert len(recorder.sleeps) == 2


def test_retry_after_is_honoured(kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder) -> None:
    sandbox.faults.use(FaultPlan(retry_after=7))
    sandbox.faults.script(Fault.RATE_LIMITED, method="GET")
    list(kizen.team())
    assert recorder.sleeps == [7.0]


def test_a_429_holds_back_every_thread_of_the_business(sandbox: Sandbox) -> None:
    """One worker's 429 makes the others wait too: time stands still here, so the hold is still
    in force when another thread sends, and it waits out Kizen's Retry-After before sending."""
    sandbox.faults.use(FaultPlan(retry_after=7))
    sandbox.faults.script(Fault.RATE_LIMITED, method="GET", times=1)
    slept: list[tuple[str, float]] = []
    with http_client("http://kizen.test", transport=sandbox.transport()) as http:
        client = ActivitiesClient(
            http,
            credentials(sandbox),
            sleep=lambda seconds: slept.append((threading.current_thread().name, seconds)),
            limiter=Limiter(lambda: 0.0),
        )
        first = threading.Thread(target=client.team, name="first")
        first.start()
        first.join()
        other = threading.Thread(target=client.team, name="other")
        other.start()
        other.join()
    assert ("first", 7.0) in slept and ("other", 7.0) in slept


def test_a_retry_after_beyond_the_limit_is_not_waited_for(sandbox: Sandbox, recorder: Recorder) -> None:
    sandbox.faults.use(FaultPlan(retry_after=600))
    sandbox.faults.script(Fault.RATE_LIMITED)
    with http_client("http://kizen.test", transport=sandbox.transport()) as http:
        client = ActivitiesClient(http, credentials(sandbox), sleep=recorder.sleep, limiter=Limiter(recorder.clock))
        with pytest.raises(KizenUnavailable) as unavailable:
            client.team()
    assert unavailable.value.retry_after == 600 and unavailable.value.status == 429
    assert recorder.sleeps == []


def test_backoff_is_bounded_and_gives_up(kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder) -> None:
    sandbox.faults.script(Fault.UNAVAILABLE, times=10)
    kizen.retry = RetryPolicy(attempts=6, base_delay=1.0, max_delay=4.0)
    with pytest.raises(KizenUnavailable, match="503 Service Unavailable, still after 6 attempts") as unavailable:
        kizen.team()
    assert unavailable.value.status == 503
    assert len(recorder.sleeps) == 5
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(recorder.sleeps, ceilings, strict=True))
    assert len(set(recorder.sleeps)) == 5  # jittered, not fixed


def test_a_server_error_on_a_read_is_not_retried(kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder) -> None:
    sandbox.faults.script(Fault.SERVER_ERROR)
    with pytest.raises(KizenUnavailable) as unavailable:
        kizen.team()
    assert unavailable.value.status == 500
    assert len(recorder.requests) == 1


def test_a_rate_limited_create_is_retried_and_made_once(
    kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder
) -> None:
    sandbox.faults.script(Fault.RATE_LIMITED, method="POST", times=2)
    kizen.create(NEW)
    assert posts(recorder) == 3
    assert count(sandbox) == 1


@pytest.mark.parametrize(
    ("fault", "applied"),
    [
        (Fault.DROP_AFTER, 1),
        (Fault.DROP_BEFORE, 0),
        (Fault.SERVER_ERROR, 0),
        (Fault.BAD_GATEWAY, 0),
        (Fault.UNAVAILABLE, 0),
    ],
)
def test_a_create_whose_answer_is_lost_is_never_resent(
    kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder, fault: Fault, applied: int
) -> None:
    sandbox.faults.script(fault, method="POST", path=SCHEDULED)
    with pytest.raises(CreateOutcomeUnknown, match="POST /api/activities/scheduled-activity"):
        kizen.create(NEW)
    assert posts(recorder) == 1
    assert count(sandbox) == applied


def test_a_log_whose_answer_is_lost_is_never_resent(
    kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder
) -> None:
    created = kizen.create(NEW)
    sandbox.faults.script(Fault.DROP_AFTER, method="POST")
    with pytest.raises(CreateOutcomeUnknown):
        kizen.log("meeting", LogRequest(scheduled_activity_id=created.id))
    assert posts(recorder) == 2
    assert kizen.get(created.id).logged_activity_id is not None  # applied once


def test_a_delete_whose_answer_was_lost_counts_as_done(
    kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder
) -> None:
    created = kizen.create(NEW)
    sandbox.faults.script(Fault.DROP_AFTER, method="DELETE")
    kizen.delete(created.id)
    assert [r.method for r in recorder.requests].count("DELETE") == 2
    assert count(sandbox) == 0


def test_a_create_that_never_connected_is_retried_then_reported(sandbox: Sandbox, recorder: Recorder) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with http_client(f"http://127.0.0.1:{port}", timeout=httpx.Timeout(2.0)) as http:
        http.event_hooks = {"request": [recorder.request]}
        client = ActivitiesClient(
            http,
            credentials(sandbox),
            retry=RetryPolicy(attempts=3),
            sleep=recorder.sleep,
            limiter=Limiter(recorder.clock),
        )
        with pytest.raises(KizenUnavailable, match="cannot connect"):
            client.create(NEW)
    assert posts(recorder) == 3


def test_random_faults_are_deterministic_for_a_seed() -> None:
    def statuses(seed: int) -> list[int]:
        plan = FaultPlan(seed=seed, rates={Fault.UNAVAILABLE: 0.3, Fault.RATE_LIMITED: 0.2})
        with (
            Sandbox(faults=plan) as box,
            httpx.Client(transport=box.transport(), base_url="http://k", headers=box.headers) as http,
        ):
            return [http.get("/api/team").status_code for _ in range(40)]

    first = statuses(11)
    assert first == statuses(11)
    assert {200, 429, 503} <= set(first)
    assert first != statuses(12)

"""The activities client against the sandbox, in-process and over loopback HTTP.

Every JSON answer of a scheduled-activity endpoint is checked against the corrected read schema
by a response hook; everything else is parsed into the client's models.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from syncd.errors import KizenAuthFailed, KizenNotFound, KizenRejected
from syncd.kizen import (
    ActivitiesClient,
    Credentials,
    EntityLink,
    LogRequest,
    NewScheduledActivity,
    Notification,
    ObjectRef,
    RetryPolicy,
    ScheduledActivityChanges,
    http_client,
)
from syncd.sandbox import Sandbox
from tests.conftest import ADA, CHARLES, GRACE, MEETING
from tests.logs import assert_never_logged, capture_every_level
from tests.sandbox.conftest import Recorder, count, credentials

DUE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def test_create_returns_the_activity_in_the_read_shape(kizen: ActivitiesClient) -> None:
    created = kizen.create(
        NewScheduledActivity(
            activity_object_id=MEETING,
            due_datetime=DUE.astimezone(datetime.now().astimezone().tzinfo),
            employee_id=ADA,
            note="Quarterly review",
            notifications=[Notification(type="email", time_amount=15, time_unit="minute")],
            associated_entities=[
                EntityLink(custom_object=ObjectRef(name="contacts"), entity=ObjectRef(name="charles@customer.example"))
            ],
        )
    )
    assert created.due_datetime == DUE
    assert created.original_due_datetime == DUE
    assert created.completed_at is None and created.logged_activity_id is None
    assert created.note == "Quarterly review"
    assert created.notifications[0].time_amount == 15
    assert str(created.associated_entities[0].entity.id) == CHARLES
    assert kizen.get(created.id) == created


def test_create_sends_utc_and_only_what_was_given(kizen: ActivitiesClient, recorder: Recorder) -> None:
    kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA))
    (body,) = recorder.bodies("POST")
    assert body == {
        "activity_object_id": MEETING,
        "due_datetime": "2030-01-01T09:00:00Z",
        "employee_id": ADA,
        "note": "",
        "mentions": [],
        "notifications": [],
        "associated_entities": [],
    }


def test_update_patches_only_the_fields_given(kizen: ActivitiesClient, recorder: Recorder) -> None:
    created = kizen.create(
        NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA, note="keep me")
    )
    moved = kizen.update(created.id, ScheduledActivityChanges(due_datetime=DUE + timedelta(hours=2)))
    assert moved.due_datetime == DUE + timedelta(hours=2)
    assert moved.original_due_datetime == DUE  # a reschedule keeps the original due time
    assert moved.note == "keep me"
    assert recorder.bodies("PATCH") == [{"due_datetime": "2030-01-01T11:00:00Z"}]
    reassigned = kizen.update(created.id, ScheduledActivityChanges(employee_id=GRACE))
    assert reassigned.employee is not None and str(reassigned.employee.id) == GRACE


def test_delete_then_get_is_not_found(kizen: ActivitiesClient, sandbox: Sandbox) -> None:
    created = kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA))
    kizen.delete(created.id)
    with pytest.raises(KizenNotFound):
        kizen.get(created.id)
    with pytest.raises(KizenNotFound):
        kizen.delete(created.id)
    assert count(sandbox) == 0


def test_list_follows_pages_past_a_thousand(kizen: ActivitiesClient, sandbox: Sandbox, recorder: Recorder) -> None:
    for minute in range(1050):
        sandbox.service.create_scheduled(
            {
                "activity_object_id": MEETING,
                "employee_id": ADA,
                "due_datetime": (DUE + timedelta(minutes=minute)).isoformat(),
            }
        )
    listed = list(kizen.list_scheduled(completed=False, employee_ids=[ADA]))
    assert len({a.id for a in listed}) == 1050
    assert [a.due_datetime for a in listed] == sorted(a.due_datetime for a in listed)
    assert [r.url.params.get("page", "1") for r in recorder.requests] == ["1", "2"]
    assert all(r.url.params["completed"] == "false" for r in recorder.requests)


def test_list_filters_by_window_employee_and_completion(kizen: ActivitiesClient, sandbox: Sandbox) -> None:
    inside = kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA))
    kizen.create(
        NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE + timedelta(days=30), employee_id=ADA)
    )
    kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=GRACE))
    done = kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA))
    kizen.log("meeting", LogRequest(scheduled_activity_id=done.id))
    window = {"from_date": DUE - timedelta(days=1), "to_date": DUE + timedelta(days=1)}
    open_ = list(kizen.list_scheduled(completed=False, employee_ids=[ADA], **window))
    assert [a.id for a in open_] == [inside.id]
    closed = list(kizen.list_scheduled(completed=True, employee_ids=[ADA], **window))
    assert [a.id for a in closed] == [done.id] and closed[0].completed


def test_log_completes_the_scheduled_activity(kizen: ActivitiesClient) -> None:
    created = kizen.create(NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA))
    receipt = kizen.log(MEETING, LogRequest(scheduled_activity_id=created.id, notes="went well"))
    assert receipt.scheduled_activity_id == created.id
    completed = kizen.get(created.id)
    assert completed.completed_at is not None and completed.logged_activity_id == receipt.id
    logged = kizen.get_logged(receipt.id)
    assert logged.scheduled_activity_id == created.id and logged.notes == "went well"
    assert [entry.id for entry in kizen.list_logged("meeting")] == [receipt.id]
    with pytest.raises(KizenRejected) as refused:
        kizen.update(created.id, ScheduledActivityChanges(note="too late"))
    assert refused.value.status == 400 and refused.value.code == "activity_completed"


def test_types_team_and_contacts(kizen: ActivitiesClient) -> None:
    assert [t.api_name for t in kizen.activity_types()] == ["meeting", "call", "follow_up"]
    assert str(kizen.activity_type("meeting").id) == MEETING
    assert {e.email for e in kizen.team()} == {"ada@example.com", "grace@example.com", "alan@example.com"}
    assert kizen.find_contact("Charles@Customer.Example") is not None  # found lower-cased
    assert kizen.find_contact("Mary.Somerville@customer.example") is not None  # found as written
    assert kizen.find_contact("nobody@customer.example") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"activity_object_id": "1473d9d0-0000-0000-0000-000000000000"}, "activity_object_id"),
        ({"employee_id": "16cfdf6d-0000-0000-0000-000000000000"}, "employee_id"),
        (
            {"associated_entities": [{"custom_object": {"name": "contacts"}, "entity": {"name": "x@y.example"}}]},
            "associated_entities",
        ),
    ],
)
def test_rejections_carry_kizens_field_errors(
    kizen: ActivitiesClient, sandbox: Sandbox, body: dict[str, Any], field: str
) -> None:
    activity = NewScheduledActivity.model_validate(
        {"activity_object_id": MEETING, "due_datetime": DUE, "employee_id": ADA, **body}
    )
    with pytest.raises(KizenRejected) as rejected:
        kizen.create(activity)
    assert rejected.value.status == 400
    assert field in rejected.value.field_errors
    assert field in str(rejected.value) and "POST /api/activities/scheduled-activity" in str(rejected.value)
    assert count(sandbox) == 0


def test_wrong_key_fails_without_leaking_it(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    capture_every_level(caplog)
    secret = "not-the-key-5b2e9"
    with http_client("http://kizen.test", transport=sandbox.transport()) as http:
        client = ActivitiesClient(http, credentials(sandbox, key=secret))
        with pytest.raises(KizenAuthFailed) as refused:
            client.get("16cfdf6d-5b70-4d9b-bd41-59940ce4897c")
    assert refused.value.status == 401 and refused.value.code == "authentication_failed"
    assert secret not in str(refused.value) and secret not in repr(refused.value)
    assert secret not in repr(credentials(sandbox, key=secret))
    assert_never_logged(caplog, secret)


def test_an_unexpected_answer_is_a_clear_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "not-a-uuid"})

    with http_client("http://kizen.test", transport=httpx.MockTransport(answer)) as http:
        client = ActivitiesClient(http, Credentials(SecretStr("k"), "b", "u"))
        with pytest.raises(Exception, match=r"GET /api/activities/scheduled-activity/x: unexpected answer"):
            client.get("x")


def test_field_errors_in_both_of_kizens_shapes() -> None:
    shapes = iter(
        [
            {"due_datetime": ["Datetime has wrong format."]},
            {"due_datetime": [{"message": "Datetime has wrong format.", "code": "invalid"}]},
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=next(shapes))

    with http_client("http://kizen.test", transport=httpx.MockTransport(answer)) as http:
        client = ActivitiesClient(http, Credentials(SecretStr("k"), "b", "u"))
        for _ in range(2):
            with pytest.raises(KizenRejected, match="due_datetime: Datetime has wrong format."):
                client.update("x", ScheduledActivityChanges(note="n"))


def test_a_next_link_to_another_host_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = {
            "count": 2,
            "next": "https://elsewhere.example/api/team?page=2",
            "previous": None,
            "results": [],
            "errors": [],
        }
        return httpx.Response(200, json=page)

    with http_client("http://kizen.test", transport=httpx.MockTransport(answer)) as http:
        client = ActivitiesClient(http, Credentials(SecretStr("k"), "b", "u"), retry=RetryPolicy(attempts=1))
        with pytest.raises(Exception, match="leaves Kizen's host"):
            list(client.activity_types())


def test_the_sandbox_takes_no_idempotency_key(kizen: ActivitiesClient, sandbox: Sandbox) -> None:
    """Kizen has none, so the sandbox must not dedupe on one: syncd cannot come to rely on it."""
    body = {"activity_object_id": MEETING, "due_datetime": "2030-01-01T09:00:00Z", "employee_id": ADA}
    headers = {**credentials(sandbox).headers(), "Idempotency-Key": "same-key"}
    first = kizen.http.post("/api/activities/scheduled-activity", json=body, headers=headers)
    second = kizen.http.post("/api/activities/scheduled-activity", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert count(sandbox) == 2
    assert "ETag" not in first.headers and "Last-Modified" not in first.headers


def test_an_oversized_create_is_a_clear_rejection(kizen: ActivitiesClient, sandbox: Sandbox) -> None:
    huge = NewScheduledActivity(activity_object_id=MEETING, due_datetime=DUE, employee_id=ADA, note="x" * 3_000_000)
    with pytest.raises(KizenRejected) as rejected:
        kizen.create(huge)
    assert rejected.value.status == 413 and rejected.value.code == "request_too_large"
    assert count(sandbox) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("due_datetime", "2030-01-01T09:00:00"),
        ("due_datetime", "tomorrow"),
        ("activity_object_id", "meeting"),
        ("employee_id", 7),
    ],
)
def test_input_kizen_would_refuse_is_refused_before_sending(field: str, value: Any) -> None:
    """The models refuse a naive or malformed due time, a non-UUID and a wrong type, naming the field."""
    body = {"activity_object_id": MEETING, "due_datetime": DUE, "employee_id": ADA, field: value}
    with pytest.raises(ValidationError, match=field):
        NewScheduledActivity.model_validate(body)

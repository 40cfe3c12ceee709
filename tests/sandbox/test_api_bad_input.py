"""Bad requests over raw HTTP: each is a 4xx in Kizen's error shape and changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox import Sandbox
from tests.conftest import ADA, CONTACTS, MEETING, SCHEDULED, new_activity

UNKNOWN = "8666ae16-2634-4bc7-84cf-a083658f0eba"  # fixed: the parameters must be the same in every run
MAX_BODY = 2_621_440


def snapshot(http: httpx.Client) -> tuple[int, list[dict[str, Any]]]:
    """The list's count and every activity in full, to show that nothing changed."""
    body = http.get(SCHEDULED, params={"page_size": 1000}).json()
    full = [http.get(f"{SCHEDULED}/{item['id']}").json() for item in body["results"]]
    return body["count"], full


def assert_field_errors(body: Any, field: str) -> None:
    """Django REST framework's shape: ``{field: [message, ...]}``, nested by index for items."""
    assert isinstance(body, dict)
    assert field in body, body
    assert "detail" not in body

    def check(node: Any) -> None:
        if isinstance(node, dict):
            assert node
            for value in node.values():
                check(value)
        else:
            assert isinstance(node, list) and node
            assert all(isinstance(message, str) and message for message in node)

    check(body)


def assert_detail(body: Any, code: str) -> None:
    """Kizen's other error shape: ``{detail, code}``."""
    assert set(body) == {"detail", "code"}
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["code"] == code


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


def entity(name: str) -> list[dict[str, Any]]:
    return [{"custom_object": {"id": CONTACTS}, "entity": {"name": name}}]


# (body, the field its error is keyed by)
BAD_CREATES = {
    "activity_object_id-not-uuid": (new_activity(activity_object_id="not-a-uuid"), "activity_object_id"),
    "employee_id-not-uuid": (new_activity(employee_id="not-a-uuid"), "employee_id"),
    "mentions-not-uuid": (new_activity(mentions=["not-a-uuid"]), "mentions"),
    "mentions-second-not-uuid": (new_activity(mentions=[ADA, "1234"]), "mentions"),
    "due_datetime-missing": (without(new_activity(), "due_datetime"), "due_datetime"),
    "due_datetime-words": (new_activity(due_datetime="tomorrow"), "due_datetime"),
    "due_datetime-month-13": (new_activity(due_datetime="2030-13-01T00:00:00Z"), "due_datetime"),
    "due_datetime-naive": (new_activity(due_datetime="2030-01-01T09:00:00"), "due_datetime"),
    "due_datetime-null": (new_activity(due_datetime=None), "due_datetime"),
    "original_due_datetime-naive": (new_activity(original_due_datetime="2030-01-01T09:00:00"), "original_due_datetime"),
    # RFC 3339 forms the schema allows and Kizen's parser refuses: each was a 500 (schemathesis found the first)
    "due_datetime-before-year-1-in-utc": (new_activity(due_datetime="0001-01-01T00:00:00+01:00"), "due_datetime"),
    "due_datetime-after-9999-in-utc": (new_activity(due_datetime="9999-12-31T23:30:00-01:00"), "due_datetime"),
    "due_datetime-lower-case-t-and-z": (new_activity(due_datetime="2030-01-01t09:00:00z"), "due_datetime"),
    "original_due_datetime-before-year-1-in-utc": (
        new_activity(original_due_datetime="0001-01-01T00:00:00+01:00"),
        "original_due_datetime",
    ),
    "activity-type-unknown-id": (new_activity(activity_object_id=UNKNOWN), "activity_object_id"),
    "activity-type-unknown-name": (
        {**without(new_activity(), "activity_object_id"), "activity_object_name": "Webinar"},
        "activity_object_name",
    ),
    "activity-type-missing": (without(new_activity(), "activity_object_id"), "activity_object_id"),
    "contact-unknown-email": (
        new_activity(associated_entities=entity("nobody@customer.example")),
        "associated_entities",
    ),
    "contact-email-other-case": (
        new_activity(associated_entities=entity("Charles@customer.example")),
        "associated_entities",
    ),
    "contact-email-lower-case": (
        new_activity(associated_entities=entity("mary.somerville@customer.example")),
        "associated_entities",
    ),
    "contact-unknown-id": (
        new_activity(associated_entities=[{"custom_object": {"id": CONTACTS}, "entity": {"id": UNKNOWN}}]),
        "associated_entities",
    ),
    "custom-object-unknown": (
        new_activity(associated_entities=[{"custom_object": {"name": "deals"}, "entity": {"name": "x@y.example"}}]),
        "associated_entities",
    ),
    "employee-unknown": (new_activity(employee_id=UNKNOWN), "employee_id"),
    "unassigned": (new_activity(employee_id=None), "employee_id"),
    "note-number": (new_activity(note=42), "note"),
    "notifications-string": (new_activity(notifications="email"), "notifications"),
    "time_amount-zero": (
        new_activity(notifications=[{"type": "email", "time_amount": 0, "time_unit": "minute"}]),
        "notifications",
    ),
    "time_unit-week": (
        new_activity(notifications=[{"type": "email", "time_amount": 1, "time_unit": "week"}]),
        "notifications",
    ),
    "notify_mentioned-string": (new_activity(notify_mentioned="yes"), "notify_mentioned"),
}


@pytest.mark.parametrize(("body", "field"), list(BAD_CREATES.values()), ids=list(BAD_CREATES))
def test_a_bad_create_is_a_400_keyed_by_the_field_and_creates_nothing(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    http.post(SCHEDULED, json=new_activity(note="already there"))
    before = snapshot(http)

    response = http.post(SCHEDULED, json=body)

    assert response.status_code == 400, response.text
    assert_field_errors(response.json(), field)
    assert snapshot(http) == before


@pytest.mark.parametrize(
    "email", ["charles@customer.example", "Mary.Somerville@customer.example"], ids=["charles", "mary"]
)
def test_the_exact_contact_email_is_accepted(http: httpx.Client, email: str) -> None:
    """The control for the case tests above: the same body with the exact email is a 201."""
    response = http.post(SCHEDULED, json=new_activity(associated_entities=entity(email)))

    assert response.status_code == 201, response.text
    assert response.json()["associated_entities"][0]["entity"]["email"] == email


# the bad fields a PATCH can carry too (a PATCH needs no due_datetime or type)
BAD_PATCHES = {
    name: (without(body, "activity_object_id", *(k for k in new_activity() if k != field)), field)
    for name, (body, field) in BAD_CREATES.items()
    if field not in ("activity_object_id", "activity_object_name") and name != "due_datetime-missing"
}


@pytest.mark.parametrize(("body", "field"), list(BAD_PATCHES.values()), ids=list(BAD_PATCHES))
def test_a_bad_patch_is_a_400_keyed_by_the_field_and_changes_nothing(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    activity = http.post(SCHEDULED, json=new_activity(note="before")).json()
    before = snapshot(http)

    response = http.patch(f"{SCHEDULED}/{activity['id']}", json={**body, "note": "after"} if field != "note" else body)

    assert response.status_code == 400, response.text
    assert_field_errors(response.json(), field)
    assert snapshot(http) == before


# --- bodies that are not a JSON object -------------------------------------------------------

BAD_BODIES = {
    "malformed-json": (b'{"due_datetime": ', "application/json", 400, "parse_error"),
    "trailing-garbage": (json.dumps(new_activity()).encode() + b"}", "application/json", 400, "parse_error"),
    "form-encoded": (b"activity_object_id=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    "plain-text": (json.dumps(new_activity()).encode(), "text/plain", 415, "unsupported_media_type"),
}


@pytest.mark.parametrize(("content", "content_type", "status", "code"), list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_a_body_that_is_not_json_is_refused_in_detail_shape(
    http: httpx.Client, content: bytes, content_type: str, status: int, code: str
) -> None:
    before = snapshot(http)

    response = http.post(SCHEDULED, content=content, headers={"Content-Type": content_type})

    assert response.status_code == status
    assert_detail(response.json(), code)
    assert snapshot(http) == before


@pytest.mark.parametrize("content_type", [None, "text/plain"], ids=["no-content-type", "text"])
def test_an_empty_body_is_an_empty_object_whatever_its_content_type(
    http: httpx.Client, content_type: str | None
) -> None:
    """As in Django REST framework: nothing to parse is ``{}`` (was a 415; schemathesis sent it)."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(SCHEDULED, content=b"", headers=headers)

    assert response.status_code == 400
    assert_field_errors(response.json(), "due_datetime")


@pytest.mark.parametrize("value", [[new_activity()], "text", 3, None], ids=["list", "string", "number", "null"])
def test_a_json_body_that_is_not_an_object_is_a_400(http: httpx.Client, value: Any) -> None:
    before = snapshot(http)

    response = http.post(SCHEDULED, content=json.dumps(value).encode(), headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert_field_errors(response.json(), "non_field_errors")
    assert snapshot(http) == before


@pytest.mark.parametrize("client", ["http", "loopback"])
def test_an_oversized_body_is_413_and_creates_nothing(request: pytest.FixtureRequest, client: str) -> None:
    http: httpx.Client = request.getfixturevalue(client)
    body = json.dumps(new_activity(note="x" * MAX_BODY)).encode()
    assert len(body) > MAX_BODY
    before = snapshot(http)

    response = http.post(SCHEDULED, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert_detail(response.json(), "request_too_large")
    assert snapshot(http) == before


def test_a_body_just_under_the_limit_is_accepted(http: httpx.Client) -> None:
    """The control for the 413: the limit is the business's, not lower."""
    padding = MAX_BODY - len(json.dumps(new_activity(note="")).encode())
    body = json.dumps(new_activity(note="x" * padding)).encode()
    assert len(body) == MAX_BODY

    response = http.post(SCHEDULED, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 201


# --- authentication ---------------------------------------------------------------------------


@pytest.fixture
def anonymous(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client that reaches the sandbox in-process without any auth header."""
    with httpx.Client(transport=sandbox.transport(), base_url="http://kizen.test") as client:
        yield client


@pytest.mark.parametrize("missing", ["X-API-KEY", "X-BUSINESS-ID", "X-USER-ID", "all"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_missing_auth_header_is_401(
    sandbox: Sandbox, http: httpx.Client, anonymous: httpx.Client, missing: str, method: str
) -> None:
    headers = {k: v for k, v in sandbox.headers.items() if missing not in (k, "all")}
    before = snapshot(http)

    response = anonymous.request(method, SCHEDULED, headers=headers, json=new_activity() if method == "POST" else None)

    assert response.status_code == 401
    assert_detail(response.json(), "not_authenticated")
    assert snapshot(http) == before


@pytest.mark.parametrize(
    "wrong",
    [
        {"X-API-KEY": "wrong-api-key"},
        {"X-API-KEY": "sandbox-api-key "},
        {"X-BUSINESS-ID": str(uuid.uuid4())},
        {"X-USER-ID": "f1b39a8d-5f73-48da-a1bd-6316da78fa5e"},  # Grace: an employee, but not the key's user
    ],
    ids=["api-key", "api-key-with-space", "business", "user"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_wrong_credential_is_401(
    sandbox: Sandbox, http: httpx.Client, anonymous: httpx.Client, wrong: dict[str, str], method: str
) -> None:
    before = snapshot(http)

    response = anonymous.request(
        method, SCHEDULED, headers={**sandbox.headers, **wrong}, json=new_activity() if method == "POST" else None
    )

    assert response.status_code == 401
    assert_detail(response.json(), "authentication_failed")
    assert snapshot(http) == before


# --- unknown activities, paths and methods ----------------------------------------------------


@pytest.mark.parametrize("activity_id", [UNKNOWN, "not-a-uuid", "123"], ids=["unknown-uuid", "not-a-uuid", "number"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_an_unknown_activity_is_404(http: httpx.Client, activity_id: str, method: str) -> None:
    http.post(SCHEDULED, json=new_activity())
    before = snapshot(http)

    response = http.request(
        method, f"{SCHEDULED}/{activity_id}", json=new_activity() if method in ("PATCH", "PUT") else None
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert snapshot(http) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing-here",
        "/api/activities/scheduled-activities",
        f"{SCHEDULED}/{UNKNOWN}/notes",
        "/api/records/client_client",
        "/activities/scheduled-activity",
    ],
)
def test_an_unknown_path_is_404(http: httpx.Client, path: str) -> None:
    response = http.get(path)

    assert response.status_code == 404
    assert_detail(response.json(), "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", SCHEDULED),
        ("PUT", SCHEDULED),
        ("PATCH", SCHEDULED),
        ("POST", f"{SCHEDULED}/{UNKNOWN}"),
        ("GET", f"/api/activities/{MEETING}/log-activity"),
        ("POST", "/api/team"),
        ("DELETE", "/api/activities"),
    ],
)
def test_a_wrong_method_is_405(http: httpx.Client, method: str, path: str) -> None:
    before = snapshot(http)

    response = http.request(method, path, json=new_activity() if method != "GET" else None)

    assert response.status_code == 405
    assert_detail(response.json(), "method_not_allowed")
    assert response.headers["Allow"]
    assert method not in response.headers["Allow"].split(", ")
    assert snapshot(http) == before

"""Activity types, the team, contact look-up, request ids and fault injection over raw HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from syncd.sandbox import Fault, FaultPlan, Sandbox, World, load_world, schemas
from tests.conftest import ADA, CALL, CHARLES, MEETING, SCHEDULED, new_activity

EMPLOYEE_FIELDS = {"picture_url", "id", "first_name", "last_name", "email", "display_name", "account_type"}
EMPLOYEES = [ADA, "f1b39a8d-5f73-48da-a1bd-6316da78fa5e", "ca0f20ed-4379-4481-88a7-06c841846b4b"]
LOOKUP = "/api/records/client_client/lookup"


@contextmanager
def client_of(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sandbox.transport(), base_url="http://kizen.test", headers=sandbox.headers) as client:
        yield client


def count(http: httpx.Client) -> int:
    response = http.get(SCHEDULED)
    assert response.status_code == 200, response.text
    total: int = response.json()["count"]
    return total


# --- activity types ---------------------------------------------------------------------------


def test_activity_types_are_listed_in_the_envelope(http: httpx.Client) -> None:
    response = http.get("/api/activities")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results", "errors"}
    assert body["count"] == 3
    assert body["next"] is None and body["previous"] is None
    assert [(t["id"], t["api_name"]) for t in body["results"]] == [
        (MEETING, "meeting"),
        (CALL, "call"),
        ("ea4379f9-f1d1-4857-b4ea-5e5f36016dc1", "follow_up"),
    ]
    assert body["results"][0] == {
        "id": MEETING,
        "name": "Meeting",
        "api_name": "meeting",
        "association_mode": "any",
        "calendar_sync_duration": 30,
        "enabled": True,
    }


def test_activity_types_page(http: httpx.Client) -> None:
    first = http.get("/api/activities", params={"page_size": 2}).json()

    assert len(first["results"]) == 2
    assert [t["id"] for t in http.get(first["next"]).json()["results"]] == ["ea4379f9-f1d1-4857-b4ea-5e5f36016dc1"]


@pytest.mark.parametrize("ref", [CALL, "call"], ids=["by-id", "by-api-name"])
def test_an_activity_type_is_read_by_id_or_api_name(http: httpx.Client, ref: str) -> None:
    response = http.get(f"/api/activities/{ref}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == CALL
    assert body["name"] == "Call"
    assert body["api_name"] == "call"
    assert body["calendar_sync_duration"] == 15
    assert body["fields"] == []
    assert body["webhook_url"] is None


@pytest.mark.parametrize("ref", [str(uuid.uuid4()), "webinar", "Call"], ids=["unknown-id", "unknown-name", "display"])
def test_an_unknown_activity_type_is_404(http: httpx.Client, ref: str) -> None:
    response = http.get(f"/api/activities/{ref}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


# --- the team ---------------------------------------------------------------------------------


def assert_employee(body: Any) -> None:
    assert set(body) == EMPLOYEE_FIELDS
    errors = [e.message for e in schemas.response_validator("EmployeeSerpy").iter_errors(body)]
    assert not errors, errors


def test_the_team_is_a_bare_array_of_employees(http: httpx.Client) -> None:
    response = http.get("/api/team")

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    for person in body:
        assert_employee(person)
    assert [p["id"] for p in body] == EMPLOYEES
    assert body[0] == {
        "picture_url": "",
        "id": ADA,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "account_type": "user",
    }


def test_the_team_is_an_envelope_when_page_size_is_given(http: httpx.Client) -> None:
    response = http.get("/api/team", params={"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results", "errors"}
    assert body["count"] == 3
    assert [p["id"] for p in body["results"]] == EMPLOYEES[:2]
    for person in body["results"]:
        assert_employee(person)
    assert [p["id"] for p in http.get(body["next"]).json()["results"]] == EMPLOYEES[2:]


def test_the_team_search_is_an_envelope(http: httpx.Client) -> None:
    body = http.get("/api/team", params={"search": "HOPPER"}).json()

    assert body["count"] == 1
    assert body["results"][0]["email"] == "grace@example.com"


def test_without_team_visibility_only_the_api_user_is_listed() -> None:
    seed = load_world().model_dump(mode="json")
    seed["business"]["team_visible"] = False
    with Sandbox(World.model_validate(seed)) as box, client_of(box) as http:
        bare = http.get("/api/team").json()
        paged = http.get("/api/team", params={"page_size": 10}).json()

        assert [p["id"] for p in bare] == [ADA]
        assert paged["count"] == 1
        assert [p["id"] for p in paged["results"]] == [ADA]
        assert http.get("/api/team", params={"search": "grace"}).json()["count"] == 0


# --- contact look-up --------------------------------------------------------------------------


@pytest.mark.parametrize("object_ref", ["client_client", "contacts", "bea05ff6-bb60-413b-9074-c6be238e46fa"])
def test_a_contact_is_looked_up_by_its_exact_email(http: httpx.Client, object_ref: str) -> None:
    response = http.get(f"/api/records/{object_ref}/lookup", params={"identifier": "charles@customer.example"})

    assert response.status_code == 200
    assert response.json() == {
        "id": CHARLES,
        "email": "charles@customer.example",
        "first_name": "Charles",
        "last_name": "Babbage",
        "display_name": "Charles Babbage",
    }


@pytest.mark.parametrize("identifier", ["Charles@customer.example", "CHARLES@CUSTOMER.EXAMPLE", "nobody@x.example"])
def test_a_lookup_with_an_email_differing_in_case_is_404(http: httpx.Client, identifier: str) -> None:
    response = http.get(LOOKUP, params={"identifier": identifier})

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.parametrize("params", [{}, {"identifier": ""}], ids=["absent", "empty"])
def test_a_lookup_without_identifier_is_400(http: httpx.Client, params: dict[str, str]) -> None:
    response = http.get(LOOKUP, params=params)

    assert response.status_code == 400
    assert response.json() == {"identifier": ["This field is required."]}


def test_a_lookup_in_an_unknown_object_is_404(http: httpx.Client) -> None:
    response = http.get("/api/records/deals/lookup", params={"identifier": "charles@customer.example"})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- X-Request-ID -----------------------------------------------------------------------------

Call = Callable[[httpx.Client], httpx.Response]


def _created(http: httpx.Client) -> str:
    activity_id: str = http.post(SCHEDULED, json=new_activity()).json()["id"]
    return activity_id


JSON_CALLS: dict[str, tuple[Call, int]] = {
    "list": (lambda c: c.get(SCHEDULED), 200),
    "create": (lambda c: c.post(SCHEDULED, json=new_activity()), 201),
    "get": (lambda c: c.get(f"{SCHEDULED}/{_created(c)}"), 200),
    "patch": (lambda c: c.patch(f"{SCHEDULED}/{_created(c)}", json={"note": "x"}), 200),
    "put": (lambda c: c.put(f"{SCHEDULED}/{_created(c)}", json=new_activity()), 200),
    "field-errors": (lambda c: c.post(SCHEDULED, json={}), 400),
    "list-errors": (lambda c: c.get(SCHEDULED, params={"from_date": "soon"}), 400),
    "parse-error": (lambda c: c.post(SCHEDULED, content=b"{", headers={"Content-Type": "application/json"}), 400),
    "unsupported": (lambda c: c.post(SCHEDULED, content=b"x", headers={"Content-Type": "text/plain"}), 415),
    "too-large": (
        lambda c: c.post(SCHEDULED, content=b" " * 2_700_000, headers={"Content-Type": "application/json"}),
        413,
    ),
    "unauthenticated": (lambda c: c.get(SCHEDULED, headers={"X-API-KEY": "wrong"}), 401),
    "not-found": (lambda c: c.get(f"{SCHEDULED}/{uuid.uuid4()}"), 404),
    "no-route": (lambda c: c.get("/api/nothing"), 404),
    "wrong-method": (lambda c: c.delete(SCHEDULED), 405),
    "types": (lambda c: c.get("/api/activities"), 200),
    "type": (lambda c: c.get("/api/activities/call"), 200),
    "team": (lambda c: c.get("/api/team"), 200),
    "lookup": (lambda c: c.get(LOOKUP, params={"identifier": "charles@customer.example"}), 200),
    "log": (lambda c: c.post(f"/api/activities/{CALL}/log-activity", json={"related_objects": []}), 201),
    "responses": (lambda c: c.post(f"/api/activities/{CALL}/responses", json={}), 200),
}


@pytest.mark.parametrize(("call", "status"), list(JSON_CALLS.values()), ids=list(JSON_CALLS))
def test_every_json_response_carries_a_request_id(http: httpx.Client, call: Call, status: int) -> None:
    first = call(http)
    second = call(http)

    for response in (first, second):
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Request-ID"]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize("fault", [Fault.RATE_LIMITED, Fault.SERVER_ERROR])
def test_an_injected_json_error_carries_a_request_id(sandbox: Sandbox, http: httpx.Client, fault: Fault) -> None:
    sandbox.faults.script(fault, method="GET", path=SCHEDULED)

    response = http.get(SCHEDULED)

    assert response.status_code == int(fault.value)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get("X-Request-ID")


@pytest.mark.parametrize("client", ["http", "loopback"])
def test_a_streamed_body_is_read_like_any_other(request: pytest.FixtureRequest, client: str) -> None:
    """A body sent in chunks (no Content-Length) is the same request on both transports."""
    http: httpx.Client = request.getfixturevalue(client)
    body = json.dumps(new_activity(note="streamed")).encode()

    response = http.post(SCHEDULED, content=iter([body]), headers={"Content-Type": "application/json"})

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["note"] == "streamed"
    assert count(http) == 1


# --- faults -----------------------------------------------------------------------------------


def test_a_rate_limit_answers_429_with_retry_after(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.script(Fault.RATE_LIMITED, method="POST", path=SCHEDULED)

    throttled = http.post(SCHEDULED, json=new_activity())

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["code"] == "throttled"
    assert count(http) == 0
    assert http.post(SCHEDULED, json=new_activity()).status_code == 201
    assert count(http) == 1


def test_retry_after_follows_the_plan() -> None:
    with Sandbox(faults=FaultPlan(retry_after=7)) as box, client_of(box) as http:
        box.faults.script(Fault.RATE_LIMITED)

        throttled = http.get(SCHEDULED)

        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        (Fault.SERVER_ERROR, 500, "application/json"),
        (Fault.BAD_GATEWAY, 502, "text/html"),
        (Fault.UNAVAILABLE, 503, "text/html"),
    ],
)
def test_a_server_fault_answers_its_status_and_applies_nothing(
    sandbox: Sandbox, http: httpx.Client, fault: Fault, status: int, content_type: str
) -> None:
    sandbox.faults.script(fault, method="POST", path=SCHEDULED)

    response = http.post(SCHEDULED, json=new_activity())

    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    assert count(http) == 0
    assert http.post(SCHEDULED, json=new_activity()).status_code == 201


def test_a_scripted_fault_hits_only_matching_requests(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.script(Fault.UNAVAILABLE, method="POST", path=SCHEDULED, times=2)

    statuses = [
        http.get(SCHEDULED).status_code,
        http.post("/api/activities/call/log-activity", json={"related_objects": []}).status_code,
        http.post(SCHEDULED, json=new_activity()).status_code,
        http.post(SCHEDULED, json=new_activity()).status_code,
        http.post(SCHEDULED, json=new_activity()).status_code,
    ]

    assert statuses == [200, 201, 503, 503, 201]
    assert [(m, p, f) for m, p, f in sandbox.faults.injected] == [("POST", SCHEDULED, Fault.UNAVAILABLE)] * 2


@pytest.mark.parametrize("client", ["http", "loopback"])
def test_a_drop_before_raises_and_creates_nothing(
    request: pytest.FixtureRequest, sandbox: Sandbox, client: str
) -> None:
    http: httpx.Client = request.getfixturevalue(client)
    sandbox.faults.script(Fault.DROP_BEFORE, method="POST", path=SCHEDULED)

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(SCHEDULED, json=new_activity(note="dropped"))

    assert count(http) == 0


@pytest.mark.parametrize("client", ["http", "loopback"])
def test_a_drop_after_raises_but_the_activity_was_created(
    request: pytest.FixtureRequest, sandbox: Sandbox, client: str
) -> None:
    http: httpx.Client = request.getfixturevalue(client)
    sandbox.faults.script(Fault.DROP_AFTER, method="POST", path=SCHEDULED)

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(SCHEDULED, json=new_activity(note="applied"))

    listed = http.get(SCHEDULED).json()
    assert listed["count"] == 1
    assert http.get(f"{SCHEDULED}/{listed['results'][0]['id']}").json()["note"] == "applied"


def _statuses(plan: FaultPlan, n: int = 60) -> list[int]:
    with Sandbox(faults=plan) as box, client_of(box) as http:
        return [http.get(SCHEDULED).status_code for _ in range(n)]


def test_a_seeded_fault_plan_gives_the_same_statuses_in_fresh_sandboxes() -> None:
    plan = FaultPlan(seed=7, rates={Fault.UNAVAILABLE: 0.3})

    first = _statuses(plan)
    second = _statuses(FaultPlan(seed=7, rates={Fault.UNAVAILABLE: 0.3}))

    assert first == second
    assert set(first) == {200, 503}
    assert 0.1 < first.count(503) / len(first) < 0.5
    assert _statuses(FaultPlan(seed=8, rates={Fault.UNAVAILABLE: 0.3})) != first

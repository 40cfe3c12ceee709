"""Scheduled activities over raw HTTP: create, read, PATCH, PUT, DELETE, the list and its pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.sandbox import Sandbox, schemas
from tests.conftest import (
    ADA,
    CALL,
    CHARLES,
    CONTACTS,
    GRACE,
    MEETING,
    ROLE,
    SCHEDULED,
    assert_read_shape,
    new_activity,
)

READ_FIELDS = {
    "associated_entities",
    "id",
    "note",
    "due_datetime",
    "original_due_datetime",
    "completed_at",
    "logged_activity_id",
    "activity_object",
    "employee",
    "role",
    "mentions",
    "associated_fields",
    "notifications",
    "created",
    "access",
}
SUMMARY_FIELDS = {
    "id",
    "activity_object",
    "employee",
    "role",
    "due_datetime",
    "original_due_datetime",
    "completed_at",
    "logged_activity_id",
    "created",
}
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
CHARLES_LINK = {"custom_object": {"id": CONTACTS}, "entity": {"name": "charles@customer.example"}}
REMINDER = {"type": "email", "time_amount": 15, "time_unit": "minute"}


def create(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = http.post(SCHEDULED, json=new_activity(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def get(http: httpx.Client, activity_id: str) -> dict[str, Any]:
    response = http.get(f"{SCHEDULED}/{activity_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get(SCHEDULED, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_ids(http: httpx.Client, **params: Any) -> list[str]:
    return [item["id"] for item in listed(http, **params)["results"]]


def rich(http: httpx.Client) -> dict[str, Any]:
    """An activity with every optional field set, so a reset or a stray change shows."""
    return create(
        http,
        note="Bring the contract",
        mentions=[GRACE],
        notifications=[REMINDER],
        associated_entities=[CHARLES_LINK],
        notify_mentioned=True,
    )


# --- create and read --------------------------------------------------------------------------


def test_create_is_201_with_the_full_read_shape_and_open_completion(http: httpx.Client) -> None:
    response = http.post(SCHEDULED, json=new_activity(note="Kick-off"))

    assert response.status_code == 201
    body = response.json()
    assert_read_shape(body)
    assert set(body) == READ_FIELDS
    assert READ_FIELDS == set(schemas.CORRECTED["components"]["schemas"]["ScheduledActivityV2Read"]["required"])
    assert body["completed_at"] is None
    assert body["logged_activity_id"] is None
    assert body["note"] == "Kick-off"
    assert body["due_datetime"] == "2030-01-01T09:00:00Z"
    assert body["activity_object"]["id"] == MEETING
    assert body["employee"]["id"] == ADA
    assert body["role"] is None
    assert body["access"] == {"view": True, "edit": True, "remove": True}


def test_create_with_every_optional_field_passes_the_read_shape(http: httpx.Client) -> None:
    body = rich(http)

    assert_read_shape(body)
    assert [m["id"] for m in body["mentions"]] == [GRACE]
    assert body["notifications"] == [REMINDER]
    assert [(e["custom_object_id"], e["entity_id"]) for e in body["associated_entities"]] == [(CONTACTS, CHARLES)]


def test_original_due_datetime_defaults_to_due_datetime(http: httpx.Client) -> None:
    body = create(http, due_datetime="2030-03-04T05:06:07Z")

    assert body["original_due_datetime"] == body["due_datetime"] == "2030-03-04T05:06:07Z"


def test_original_due_datetime_is_kept_when_given(http: httpx.Client) -> None:
    body = create(http, due_datetime="2030-03-05T10:00:00Z", original_due_datetime="2030-03-04T10:00:00Z")

    assert body["due_datetime"] == "2030-03-05T10:00:00Z"
    assert body["original_due_datetime"] == "2030-03-04T10:00:00Z"
    assert get(http, body["id"])["original_due_datetime"] == "2030-03-04T10:00:00Z"


def test_a_due_time_with_an_offset_comes_back_in_utc_z(http: httpx.Client) -> None:
    body = create(http, due_datetime="2030-01-01T10:30:00+01:00")

    assert body["due_datetime"] == "2030-01-01T09:30:00Z"
    assert body["original_due_datetime"] == "2030-01-01T09:30:00Z"
    assert get(http, body["id"])["due_datetime"] == "2030-01-01T09:30:00Z"


def test_get_one_returns_what_create_returned(http: httpx.Client) -> None:
    created = rich(http)

    fetched = get(http, created["id"])

    assert fetched == created
    assert_read_shape(fetched)


# --- PATCH ------------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(http: httpx.Client) -> None:
    created = rich(http)

    response = http.patch(f"{SCHEDULED}/{created['id']}", json={"due_datetime": "2030-02-02T08:00:00Z"})

    assert response.status_code == 200
    patched = response.json()
    assert_read_shape(patched)
    assert patched["due_datetime"] == "2030-02-02T08:00:00Z"
    assert {k: v for k, v in patched.items() if k != "due_datetime"} == {
        k: v for k, v in created.items() if k != "due_datetime"
    }
    assert get(http, created["id"]) == patched

    noted = http.patch(f"{SCHEDULED}/{created['id']}", json={"note": "New note"}).json()
    assert noted["note"] == "New note"
    assert {k: v for k, v in noted.items() if k != "note"} == {k: v for k, v in patched.items() if k != "note"}


def test_patch_refuses_original_due_datetime(http: httpx.Client) -> None:
    created = create(http)

    response = http.patch(
        f"{SCHEDULED}/{created['id']}",
        json={"original_due_datetime": "2029-12-31T09:00:00Z", "note": "would change"},
    )

    assert response.status_code == 400
    assert "original_due_datetime" in response.json()
    assert get(http, created["id"]) == created


@pytest.mark.parametrize(
    "change",
    [{"activity_object_id": CALL}, {"activity_object_name": "Call"}],
    ids=["by-id", "by-name"],
)
def test_patch_refuses_a_change_of_activity_type(http: httpx.Client, change: dict[str, str]) -> None:
    created = create(http)

    response = http.patch(f"{SCHEDULED}/{created['id']}", json={**change, "note": "would change"})

    assert response.status_code == 400
    assert set(response.json()) & {"activity_object_id", "activity_object_name"}
    assert get(http, created["id"]) == created


def test_patch_accepts_the_same_activity_type(http: httpx.Client) -> None:
    created = create(http)

    response = http.patch(f"{SCHEDULED}/{created['id']}", json={"activity_object_id": MEETING, "note": "same type"})

    assert response.status_code == 200
    assert response.json()["note"] == "same type"
    assert response.json()["activity_object"]["id"] == MEETING


# --- PUT --------------------------------------------------------------------------------------


def test_put_resets_the_absent_fields(http: httpx.Client) -> None:
    created = rich(http)

    response = http.put(
        f"{SCHEDULED}/{created['id']}",
        json={"activity_object_id": MEETING, "due_datetime": "2030-01-02T09:00:00Z", "role_id": ROLE},
    )

    assert response.status_code == 200
    body = response.json()
    assert_read_shape(body)
    assert body["note"] == ""
    assert body["mentions"] == []
    assert body["notifications"] == []
    assert body["associated_entities"] == []
    assert body["employee"] is None
    assert body["role"]["id"] == ROLE
    assert body["due_datetime"] == "2030-01-02T09:00:00Z"
    for kept in ("id", "original_due_datetime", "created", "activity_object"):
        assert body[kept] == created[kept]
    assert get(http, created["id"]) == body


def test_put_requires_due_datetime(http: httpx.Client) -> None:
    created = rich(http)

    response = http.put(f"{SCHEDULED}/{created['id']}", json={"employee_id": ADA, "note": "would change"})

    assert response.status_code == 400
    assert response.json()["due_datetime"] == ["This field is required."]
    assert get(http, created["id"]) == created


# --- DELETE -----------------------------------------------------------------------------------


def test_delete_is_204_then_get_is_404(http: httpx.Client) -> None:
    created = create(http)
    other = create(http)

    response = http.delete(f"{SCHEDULED}/{created['id']}")

    assert response.status_code == 204
    assert response.content == b""
    gone = http.get(f"{SCHEDULED}/{created['id']}")
    assert gone.status_code == 404
    assert gone.json() == NOT_FOUND
    assert listed_ids(http) == [other["id"]]
    assert http.delete(f"{SCHEDULED}/{created['id']}").status_code == 404


# --- the list ---------------------------------------------------------------------------------


def test_list_results_carry_exactly_the_summary_fields(http: httpx.Client) -> None:
    created = rich(http)

    body = listed(http)

    assert set(body) == {"count", "next", "previous", "results", "errors"}
    assert body["count"] == 1
    assert body["errors"] == []
    (item,) = body["results"]
    assert set(item) == SUMMARY_FIELDS
    assert "note" not in item
    assert item == {k: created[k] for k in SUMMARY_FIELDS}


def test_list_bounds_are_exclusive_on_due_datetime(http: httpx.Client) -> None:
    at_nine = create(http, due_datetime="2030-01-01T09:00:00Z")["id"]
    at_ten = create(http, due_datetime="2030-01-01T10:00:00Z")["id"]
    at_eleven = create(http, due_datetime="2030-01-01T11:00:00Z")["id"]

    assert listed_ids(http, from_date="2030-01-01T09:00:00Z", to_date="2030-01-01T11:00:00Z") == [at_ten]
    assert listed_ids(http, from_date="2030-01-01T08:59:59Z", to_date="2030-01-01T11:00:01Z") == [
        at_nine,
        at_ten,
        at_eleven,
    ]
    assert listed_ids(http, from_date="2030-01-01T10:00:00Z") == [at_eleven]
    assert listed_ids(http, to_date="2030-01-01T10:00:00Z") == [at_nine]
    # a bound with an offset is the same instant: 10:00+01:00 is 09:00Z, excluded
    assert listed_ids(http, from_date="2030-01-01T10:00:00+01:00") == [at_ten, at_eleven]


def test_list_takes_date_only_bounds_as_midnight_utc(http: httpx.Client) -> None:
    create(http, due_datetime="2030-01-01T00:00:00Z")
    midday = create(http, due_datetime="2030-01-01T12:00:00Z")["id"]
    create(http, due_datetime="2030-01-02T00:00:00Z")
    next_day = create(http, due_datetime="2030-01-02T12:00:00Z")["id"]

    assert listed_ids(http, from_date="2030-01-01", to_date="2030-01-02") == [midday]
    assert listed_ids(http, from_date="2030-01-02") == [next_day]


@pytest.mark.parametrize("param", ["from_date", "to_date"])
# the last two are before year 1 and after year 9999 once in UTC: each was a 500
@pytest.mark.parametrize(
    "value",
    ["2030-01-01T09:00:00", "2030-01-01 09:00", "yesterday", "2030-02-30", "0001-01-01T00:00:00+01:00"]
    + ["9999-12-31T23:30:00-01:00"],
)
def test_list_refuses_a_naive_or_malformed_bound(http: httpx.Client, param: str, value: str) -> None:
    create(http)

    response = http.get(SCHEDULED, params={param: value})

    assert response.status_code == 400
    body = response.json()
    assert body["errors"]
    assert all(isinstance(e, str) for e in body["errors"])
    assert any(param in e for e in body["errors"])
    assert body["results"] == []


def test_list_filters_by_employee_ids(http: httpx.Client) -> None:
    ada = create(http)["id"]
    grace = create(http, employee_id=GRACE)["id"]
    role_only = create(http, employee_id=None, role_id=ROLE)["id"]

    assert listed_ids(http, employee_ids=GRACE) == [grace]
    assert listed_ids(http, employee_ids=f"{ADA},{GRACE}") == [ada, grace]
    assert listed_ids(http) == [ada, grace, role_only]
    refused = http.get(SCHEDULED, params={"employee_ids": "not-a-uuid"})
    assert refused.status_code == 400
    assert refused.json()["errors"]


def test_list_filters_by_uuids_written_in_upper_case(http: httpx.Client) -> None:
    """A UUID is the same UUID in either case; the body fields accept both, so the filters should too."""
    ada = create(http)["id"]
    create(http, employee_id=GRACE, activity_object_id=CALL)

    assert listed_ids(http, employee_ids=ADA.upper()) == [ada]
    assert listed_ids(http, activity_id=MEETING.upper()) == [ada]


def test_list_filters_by_completed(http: httpx.Client) -> None:
    done = create(http)["id"]
    still_open = create(http)["id"]
    logged = http.post(
        f"/api/activities/{MEETING}/log-activity", json={"related_objects": [], "scheduled_activity_id": done}
    )
    assert logged.status_code == 201, logged.text

    assert listed_ids(http, completed="true") == [done]
    assert listed_ids(http, completed="false") == [still_open]
    assert listed_ids(http) == [done, still_open]


def test_list_search_matches_the_note_case_insensitively(http: httpx.Client) -> None:
    quote = create(http, note="Send Charles the QUOTE")["id"]
    lunch = create(http, note="lunch with Grace")["id"]
    create(http, note="")

    assert listed_ids(http, search="quote") == [quote]
    assert listed_ids(http, search="LUNCH") == [lunch]
    assert listed_ids(http, search="nothing like it") == []


def test_list_search_also_matches_the_activity_type_name(http: httpx.Client) -> None:
    call = create(http, activity_object_id=CALL, note="")["id"]
    create(http, note="lunch")

    assert listed_ids(http, search="cALL") == [call]


def test_list_orders_by_descending_due_datetime(http: httpx.Client) -> None:
    middle = create(http, due_datetime="2030-01-02T09:00:00Z")["id"]
    last = create(http, due_datetime="2030-01-03T09:00:00Z")["id"]
    first = create(http, due_datetime="2030-01-01T09:00:00Z")["id"]

    assert listed_ids(http, ordering="-due_datetime") == [last, middle, first]
    assert listed_ids(http, ordering="due_datetime") == [first, middle, last]
    assert listed_ids(http) == [first, middle, last]


def test_list_filters_by_activity_id_or_activity_name_but_not_both(http: httpx.Client) -> None:
    meeting = create(http)["id"]
    call = create(http, activity_object_id=CALL)["id"]

    assert listed_ids(http, activity_id=CALL) == [call]
    assert listed_ids(http, activity_name="Meeting") == [meeting]
    both = http.get(SCHEDULED, params={"activity_id": CALL, "activity_name": "Call"})
    assert both.status_code == 400
    assert both.json()["errors"]


@pytest.mark.parametrize("param", ["modified_since", "updated_after", "updated_since"])
def test_an_unknown_query_parameter_is_ignored(http: httpx.Client, param: str) -> None:
    ids = [create(http)["id"], create(http, due_datetime="2031-01-01T09:00:00Z")["id"]]

    body = listed(http, **{param: "2099-01-01T00:00:00Z"})

    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == ids


def test_no_response_carries_an_etag(http: httpx.Client) -> None:
    created = http.post(SCHEDULED, json=new_activity())
    activity = f"{SCHEDULED}/{created.json()['id']}"
    responses = [
        created,
        http.get(activity),
        http.get(SCHEDULED),
        http.patch(activity, json={"note": "x"}),
        http.put(activity, json=new_activity()),
        http.get(activity, headers={"If-None-Match": "*"}),
        http.post(SCHEDULED, json={}),
        http.delete(activity),
        http.get(activity),
    ]

    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200, 200, 400, 204, 404]
    for response in responses:
        assert "etag" not in response.headers
        assert "last-modified" not in response.headers


# --- pages ------------------------------------------------------------------------------------


def _fill(sandbox: Sandbox, n: int) -> set[str]:
    ids = set()
    for i in range(n):
        minute = f"{i // 60 % 24:02d}:{i % 60:02d}"
        created = sandbox.service.create_scheduled(
            new_activity(due_datetime=f"2030-{1 + i // 1440:02d}-01T{minute}:00Z", note=f"#{i}")
        )
        ids.add(created["id"])
    return ids


def test_paging_past_a_thousand_items_follows_next_to_the_end(sandbox: Sandbox, http: httpx.Client) -> None:
    created = _fill(sandbox, 1050)

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    url: str | None = f"{SCHEDULED}?page_size=1000"
    while url is not None:
        response = http.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        seen.extend(item["id"] for item in page["results"])
        url = page["next"]
        assert len(pages) <= 3, "next never became null"

    assert [len(p["results"]) for p in pages] == [1000, 50]
    assert all(p["count"] == 1050 for p in pages)
    assert pages[0]["previous"] is None
    assert pages[1]["previous"] is not None
    assert pages[0]["next"].startswith("http")
    assert len(seen) == len(set(seen)) == 1050
    assert set(seen) == created

    past_the_end = http.get(SCHEDULED, params={"page_size": 1000, "page": 3})
    assert past_the_end.status_code == 404
    assert past_the_end.json() == {"detail": "Invalid page.", "code": "not_found"}


def test_page_size_above_a_thousand_is_clamped(sandbox: Sandbox, http: httpx.Client) -> None:
    _fill(sandbox, 1001)

    body = listed(http, page_size=5000)

    assert body["count"] == 1001
    assert len(body["results"]) == 1000
    assert body["next"] is not None
    second = http.get(body["next"]).json()
    assert len(second["results"]) == 1


def test_default_page_size_is_a_hundred(sandbox: Sandbox, http: httpx.Client) -> None:
    _fill(sandbox, 101)

    body = listed(http)

    assert len(body["results"]) == 100
    assert len(http.get(body["next"]).json()["results"]) == 1


@pytest.mark.parametrize("page", ["2", "9"])
def test_a_page_past_the_end_is_404_in_kizens_shape(http: httpx.Client, page: str) -> None:
    create(http)
    create(http)

    response = http.get(SCHEDULED, params={"page": page, "page_size": 2})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}

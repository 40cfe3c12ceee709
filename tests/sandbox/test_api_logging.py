"""Logging activities over raw HTTP: completing scheduled ones, logged reads, responses, the webhook."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from syncd.sandbox import Sandbox, World, load_world
from tests.conftest import CALL, CHARLES, CONTACTS, GRACE, MEETING, SCHEDULED, assert_read_shape, new_activity

ECHO_FIELDS = {"id", "notes", "related_objects", "scheduled_activity_id", "mentions", "fields"}
CHARLES_RECORD = {"custom_object": CONTACTS, "entity_id": CHARLES}
OUTCOME = "0b9f5a4e-3c2d-4e1f-9a8b-7c6d5e4f3a21"
DEMO = "5d7c1e2a-9b3f-4a6d-8e0c-1f2a3b4c5d6e"
RETIRED = "6e8d2f3b-0c4a-4b7e-9f1d-2a3b4c5d6e7f"


def log(http: httpx.Client, type_ref: str, **body: Any) -> httpx.Response:
    return http.post(f"/api/activities/{type_ref}/log-activity", json={"related_objects": [], **body})


def schedule(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = http.post(SCHEDULED, json=new_activity(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def get(http: httpx.Client, path: str) -> dict[str, Any]:
    response = http.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def responses(http: httpx.Client, type_ref: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    response = http.post(f"/api/activities/{type_ref}/responses", json=body or {}, params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- completing a scheduled activity ----------------------------------------------------------


@pytest.mark.parametrize("type_ref", [MEETING, "meeting"], ids=["by-id", "by-api-name"])
def test_logging_with_scheduled_activity_id_completes_it(http: httpx.Client, type_ref: str) -> None:
    scheduled = schedule(http)

    response = log(
        http,
        type_ref,
        scheduled_activity_id=scheduled["id"],
        notes="Went well",
        related_objects=[CHARLES_RECORD],
        mentions=[GRACE],
    )

    assert response.status_code == 201, response.text
    echo = response.json()
    assert set(echo) == ECHO_FIELDS
    assert uuid.UUID(echo["id"])
    assert echo["notes"] == "Went well"
    assert echo["related_objects"] == [CHARLES_RECORD]
    assert echo["scheduled_activity_id"] == scheduled["id"]
    assert echo["mentions"] == [GRACE]
    assert echo["fields"] == []

    completed = get(http, f"{SCHEDULED}/{scheduled['id']}")
    assert_read_shape(completed)
    assert completed["completed_at"] is not None
    assert completed["logged_activity_id"] == echo["id"]
    assert completed["access"] == {"view": True, "edit": False, "remove": False}
    assert {k: v for k, v in completed.items() if k not in ("completed_at", "logged_activity_id", "access")} == {
        k: v for k, v in scheduled.items() if k not in ("completed_at", "logged_activity_id", "access")
    }


def test_a_logged_activity_can_be_read_back(http: httpx.Client) -> None:
    scheduled = schedule(http)
    echo = log(
        http, "meeting", scheduled_activity_id=scheduled["id"], notes="Minutes", related_objects=[CHARLES_RECORD]
    )
    logged_id = echo.json()["id"]

    logged = get(http, f"/api/activities/logged/{logged_id}")

    assert logged["id"] == logged_id
    assert logged["notes"] == "Minutes"
    assert logged["scheduled_activity_id"] == scheduled["id"]
    assert logged["activity_object"]["id"] == MEETING
    assert logged["completed_at"] == get(http, f"{SCHEDULED}/{scheduled['id']}")["completed_at"]
    assert logged["logged_by"]["email"] == "ada@example.com"
    assert [(e["custom_object_id"], e["entity_id"]) for e in logged["associated_entities"]] == [(CONTACTS, CHARLES)]


@pytest.mark.parametrize("logged_id", ["a334119c-fd73-4e22-a36c-8d131e803525", "not-a-uuid"])
def test_an_unknown_logged_activity_is_404(http: httpx.Client, logged_id: str) -> None:
    response = http.get(f"/api/activities/logged/{logged_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_logging_the_same_scheduled_activity_twice_is_400(http: httpx.Client) -> None:
    scheduled = schedule(http)
    first = log(http, MEETING, scheduled_activity_id=scheduled["id"])
    assert first.status_code == 201
    completed = get(http, f"{SCHEDULED}/{scheduled['id']}")

    second = log(http, MEETING, scheduled_activity_id=scheduled["id"], notes="again")

    assert second.status_code == 400
    assert "scheduled_activity_id" in second.json()
    assert get(http, f"{SCHEDULED}/{scheduled['id']}") == completed
    assert responses(http, MEETING)["count"] == 1


def test_logging_a_scheduled_activity_of_another_type_is_400(http: httpx.Client) -> None:
    scheduled = schedule(http)  # a meeting

    response = log(http, CALL, scheduled_activity_id=scheduled["id"])

    assert response.status_code == 400
    assert "scheduled_activity_id" in response.json()
    assert get(http, f"{SCHEDULED}/{scheduled['id']}")["completed_at"] is None
    assert responses(http, CALL)["count"] == 0


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"note": "changed"}),
        ("PUT", new_activity(note="changed")),
        ("DELETE", None),
    ],
)
def test_a_completed_scheduled_activity_refuses_changes(
    http: httpx.Client, method: str, body: dict[str, Any] | None
) -> None:
    scheduled = schedule(http, note="original")
    assert log(http, MEETING, scheduled_activity_id=scheduled["id"]).status_code == 201
    completed = get(http, f"{SCHEDULED}/{scheduled['id']}")

    response = http.request(method, f"{SCHEDULED}/{scheduled['id']}", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "activity_completed"
    assert get(http, f"{SCHEDULED}/{scheduled['id']}") == completed


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_logged_activity_cannot_be_changed_or_deleted(http: httpx.Client, method: str) -> None:
    logged_id = log(http, CALL, notes="as logged").json()["id"]
    before = get(http, f"/api/activities/logged/{logged_id}")

    response = http.request(method, f"/api/activities/logged/{logged_id}", json={"notes": "changed"})

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert get(http, f"/api/activities/logged/{logged_id}") == before


def test_there_is_no_list_of_logged_activities(http: httpx.Client) -> None:
    log(http, CALL)

    response = http.get("/api/activities/logged")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_related_objects_is_required(http: httpx.Client) -> None:
    scheduled = schedule(http)

    response = http.post(
        f"/api/activities/{MEETING}/log-activity", json={"scheduled_activity_id": scheduled["id"], "notes": "x"}
    )

    assert response.status_code == 400
    assert response.json()["related_objects"] == ["This field is required."]
    assert get(http, f"{SCHEDULED}/{scheduled['id']}") == scheduled
    assert responses(http, MEETING)["count"] == 0


def test_a_direct_log_is_not_completed(http: httpx.Client) -> None:
    response = log(http, CALL, notes="Called back")

    assert response.status_code == 201
    assert response.json()["scheduled_activity_id"] is None
    logged = get(http, f"/api/activities/logged/{response.json()['id']}")
    assert logged["completed_at"] is None
    assert logged["completed_by"] is None
    assert logged["scheduled_activity_id"] is None
    assert logged["logged_at"] is not None


def test_a_field_with_a_malformed_id_is_400(http: httpx.Client) -> None:
    """A field reference that is not a string is a field error, like any other bad id."""
    response = log(http, CALL, fields=[{"id": ["not", "an", "id"], "value": "x"}])

    assert response.status_code == 400
    assert "fields" in response.json()
    assert responses(http, CALL)["count"] == 0


# --- responses --------------------------------------------------------------------------------


def test_responses_lists_the_types_logged_activities_paged_oldest_first(http: httpx.Client) -> None:
    ids = [log(http, CALL, notes=f"call {i}").json()["id"] for i in range(3)]
    log(http, MEETING, notes="a meeting")

    first = responses(http, CALL, page_size=2)
    second = http.post(first["next"], json={}).json()

    assert set(first) == {"count", "next", "previous", "results", "errors"}
    assert first["count"] == 3
    assert first["previous"] is None
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert [r["id"] for r in second["results"]] == ids[2:]
    assert second["next"] is None
    assert second["previous"] is not None
    assert {r["activity_object"]["id"] for r in first["results"] + second["results"]} == {CALL}
    assert [r["id"] for r in responses(http, "call")["results"]] == ids
    assert responses(http, MEETING)["count"] == 1


def test_responses_without_a_body_lists_them_all(http: httpx.Client) -> None:
    """Kizen: an empty body lists all; a POST with no body at all (no Content-Type) included."""
    logged = log(http, CALL, notes="one").json()["id"]

    response = http.post("/api/activities/call/responses")

    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["results"]] == [logged]


def test_responses_filters_by_notes(http: httpx.Client) -> None:
    wanted = log(http, CALL, notes="Discussed the RENEWAL").json()["id"]
    log(http, CALL, notes="Small talk")

    found = responses(http, CALL, {"search": "renewal"})

    assert found["count"] == 1
    assert [r["id"] for r in found["results"]] == [wanted]


def test_responses_filters_by_custom_object_before_paging(http: httpx.Client) -> None:
    """The filter applies to the whole list: count, pages and results agree."""
    log(http, CALL, notes="alone")
    with_contact = log(http, CALL, notes="with Charles", related_objects=[CHARLES_RECORD]).json()["id"]

    found = responses(http, CALL, {"custom_object_id": CONTACTS})
    first_page = responses(http, CALL, {"custom_object_id": CONTACTS}, page_size=1)

    assert (found["count"], [r["id"] for r in found["results"]]) == (1, [with_contact])
    assert (first_page["count"], [r["id"] for r in first_page["results"]], first_page["next"]) == (
        1,
        [with_contact],
        None,
    )


def test_responses_past_the_end_is_404(http: httpx.Client) -> None:
    log(http, CALL)

    response = http.post(f"/api/activities/{CALL}/responses", json={}, params={"page": 2})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}


# --- worlds with webhooks, required fields, disabled types ------------------------------------


class Receiver:
    """A small HTTP server on loopback that records every POST it gets."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server convention)
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/kizen/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def world_with(webhook_url: str | None = None) -> World:
    """The default business, plus a Demo type (a required Outcome field, the webhook) and a disabled type."""
    seed = load_world().model_dump(mode="json")
    seed["activity_types"] = [
        {**t, "webhook_url": webhook_url} if t["id"] == CALL else t for t in seed["activity_types"]
    ] + [
        {
            "id": DEMO,
            "name": "Demo",
            "api_name": "demo",
            "webhook_url": webhook_url,
            "fields": [{"id": OUTCOME, "name": "outcome", "display_name": "Outcome", "required": True}],
        },
        {"id": RETIRED, "name": "Retired", "api_name": "retired", "enabled": False},
    ]
    return World.model_validate(seed)


@contextmanager
def client_of(world: World) -> Iterator[tuple[Sandbox, httpx.Client]]:
    with Sandbox(world) as box:
        transport = box.transport()
        with httpx.Client(transport=transport, base_url="http://kizen.test", headers=box.headers) as client:
            yield box, client


def test_a_log_posts_the_activity_logged_webhook_once(receiver: Receiver) -> None:
    with client_of(world_with(receiver.url)) as (box, client):
        scheduled = schedule(client, activity_object_id=CALL)
        logged_id = log(client, CALL, scheduled_activity_id=scheduled["id"]).json()["id"]

        box.webhooks.drain()

        assert receiver.posts == [
            (
                "/webhooks/kizen/secret",
                {
                    "event": "activity.logged",
                    "logged_activity_id": logged_id,
                    "activity_object": {"id": CALL, "api_name": "call"},
                    "scheduled_activity_id": scheduled["id"],
                },
            )
        ]
        assert [d.status for d in box.webhooks.deliveries] == [204]


def test_only_types_with_a_webhook_url_post_it_and_only_for_successful_logs(receiver: Receiver) -> None:
    with client_of(world_with(receiver.url)) as (box, client):
        assert log(client, MEETING).status_code == 201  # no webhook_url on meetings
        assert log(client, CALL, related_objects=None).status_code == 400  # refused: nothing logged
        direct = log(client, CALL).json()["id"]

        box.webhooks.drain()

        assert [body["logged_activity_id"] for _, body in receiver.posts] == [direct]
        assert receiver.posts[0][1]["scheduled_activity_id"] is None


def test_a_required_field_must_have_a_value(receiver: Receiver) -> None:
    with client_of(world_with(receiver.url)) as (box, client):
        scheduled = schedule(client, activity_object_id=DEMO)

        missing = log(client, "demo", scheduled_activity_id=scheduled["id"])
        blank = log(client, "demo", scheduled_activity_id=scheduled["id"], fields=[{"id": OUTCOME, "value": ""}])

        for refused in (missing, blank):
            assert refused.status_code == 400
            assert "fields" in refused.json()
        assert get(client, f"{SCHEDULED}/{scheduled['id']}")["completed_at"] is None
        assert responses(client, "demo")["count"] == 0

        accepted = log(client, "demo", scheduled_activity_id=scheduled["id"], fields=[{"id": OUTCOME, "value": "Won"}])
        assert accepted.status_code == 201
        assert accepted.json()["fields"] == [{"id": OUTCOME, "value": "Won"}]
        logged = get(client, f"/api/activities/logged/{accepted.json()['id']}")
        assert [(f["name"], f["value"]) for f in logged["fields"]] == [("outcome", "Won")]

        box.webhooks.drain()
        assert [body["logged_activity_id"] for _, body in receiver.posts] == [accepted.json()["id"]]


def test_a_disabled_type_refuses_logs_and_creates() -> None:
    with client_of(world_with()) as (_, client):
        logged = log(client, "retired")
        created = client.post(SCHEDULED, json=new_activity(activity_object_id=RETIRED))

        assert logged.status_code == 400
        assert created.status_code == 400
        assert client.get(SCHEDULED).json()["count"] == 0
        assert responses(client, "retired")["count"] == 0


def test_a_kizen_user_completing_an_activity_completes_it_and_fires_the_webhook(receiver: Receiver) -> None:
    with client_of(world_with(receiver.url)) as (box, client):
        scheduled = schedule(
            client, activity_object_id=DEMO, associated_entities=[{"entity_id": CHARLES, "custom_object_id": CONTACTS}]
        )

        logged = box.user("grace@example.com").complete(scheduled["id"], notes="Done by Grace")

        completed = get(client, f"{SCHEDULED}/{scheduled['id']}")
        assert_read_shape(completed)
        assert completed["completed_at"] is not None
        assert completed["logged_activity_id"] == logged["id"]
        read_back = get(client, f"/api/activities/logged/{logged['id']}")
        assert read_back["notes"] == "Done by Grace"
        assert read_back["completed_by"]["email"] == "grace@example.com"
        assert [(f["name"], f["value"]) for f in read_back["fields"]] == [("outcome", "Done")]
        assert [e["entity_id"] for e in read_back["associated_entities"]] == [CHARLES]

        box.webhooks.drain()
        assert [body for _, body in receiver.posts] == [
            {
                "event": "activity.logged",
                "logged_activity_id": logged["id"],
                "activity_object": {"id": DEMO, "api_name": "demo"},
                "scheduled_activity_id": scheduled["id"],
            }
        ]

"""The sandbox's HTTP face: Kizen's paths, auth headers, envelope and error shapes, as WSGI.

Every request goes, in order: route (404/405), body size (413), the three auth headers (401),
faults, JSON body (415/400), then the service. Answers are JSON with an ``X-Request-ID``.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd.sandbox.faults import DropConnection, Fault, Faults
from syncd.sandbox.service import ApiError, Service, not_found
from syncd.sandbox.shapes import Json
from syncd.sandbox.world import World

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_ROUTES = Map(
    [
        Rule("/api/activities/scheduled-activity", endpoint="scheduled_list", methods=["GET"]),
        Rule("/api/activities/scheduled-activity", endpoint="scheduled_create", methods=["POST"]),
        Rule("/api/activities/scheduled-activity/<activity_id>", endpoint="scheduled_get", methods=["GET"]),
        Rule("/api/activities/scheduled-activity/<activity_id>", endpoint="scheduled_patch", methods=["PATCH"]),
        Rule("/api/activities/scheduled-activity/<activity_id>", endpoint="scheduled_put", methods=["PUT"]),
        Rule("/api/activities/scheduled-activity/<activity_id>", endpoint="scheduled_delete", methods=["DELETE"]),
        Rule("/api/activities/logged/<logged_id>", endpoint="logged_get", methods=["GET"]),
        Rule("/api/activities/<type_ref>/log-activity", endpoint="log_activity", methods=["POST"]),
        Rule("/api/activities/<type_ref>/responses", endpoint="responses", methods=["POST"]),
        Rule("/api/activities", endpoint="types", methods=["GET"]),
        Rule("/api/activities/<type_ref>", endpoint="type_get", methods=["GET"]),
        Rule("/api/records/<object_ref>/lookup", endpoint="lookup", methods=["GET"]),
        Rule("/api/team", endpoint="team", methods=["GET"]),
    ]
)

_WRITES = frozenset({"POST", "PUT", "PATCH"})

_SERVER_ERRORS = {
    Fault.SERVER_ERROR: (500, "application/json", json.dumps({"detail": "A server error occurred.", "code": "error"})),
    Fault.BAD_GATEWAY: (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    Fault.UNAVAILABLE: (503, "text/html", "<html><body><h1>503 Service Unavailable</h1></body></html>"),
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def _error(status: int, detail: str, code: str) -> Response:
    return _json({"detail": detail, "code": code}, status)


class SandboxApp:
    """The WSGI application of the emulated Kizen API."""

    def __init__(self, world: World, service: Service, faults: Faults, sleep: Callable[[float], None] = time.sleep):
        self.world = world
        self.service = service
        self.faults = faults
        self.sleep = sleep
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        with self._calls_lock:
            self.calls[request.method] += 1
        response = self.handle(request)
        # Werkzeug upper-cases reason phrases; Kizen (Django) sends the standard ones.
        response.status = f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
        response.headers["X-Request-ID"] = uuid.uuid4().hex
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, "Not found.", "not_found")
        except MethodNotAllowed as exc:
            response = _error(405, f'Method "{request.method}" not allowed.', "method_not_allowed")
            response.headers["Allow"] = ", ".join(exc.valid_methods or [])
            return response
        limit = self.world.business.max_body_bytes
        if (request.content_length or 0) > limit:
            return _error(413, f"Request body is larger than {limit} bytes.", "request_too_large")
        if refusal := self._authenticate(request):
            return refusal
        fault = self.faults.draw(request.method, request.path)
        if delay := self.faults.delay():
            self.sleep(delay)
        if fault is Fault.RATE_LIMITED:
            seconds = self.faults.plan.retry_after
            response = _error(429, f"Request was throttled. Expected available in {seconds} seconds.", "throttled")
            response.headers["Retry-After"] = str(seconds)
            return response
        if fault in _SERVER_ERRORS:
            status, mimetype, text = _SERVER_ERRORS[fault]
            return Response(text, status=status, mimetype=mimetype)
        if fault is Fault.DROP_BEFORE:
            raise DropConnection("fault injected: connection dropped before the request was applied")
        try:
            body = self._body(request) if request.method in _WRITES else {}
            response = getattr(self, f"_{endpoint}")(request, body, **args)
        except ApiError as exc:
            response = _json(exc.body, exc.status)
        if fault is Fault.DROP_AFTER:
            raise DropConnection("fault injected: connection dropped after the request was applied")
        return response

    def _authenticate(self, request: Request) -> Response | None:
        given = [request.headers.get(h) for h in ("X-API-KEY", "X-BUSINESS-ID", "X-USER-ID")]
        if not all(given):
            return _error(401, "Authentication credentials were not provided.", "not_authenticated")
        key, business, user = (value or "" for value in given)
        business_ok = business == str(self.world.business.id)
        user_ok = user == str(self.world.api_user.id)
        key_ok = hmac.compare_digest(key.encode(), self.world.business.api_key.encode())
        if not (key_ok and business_ok and user_ok):
            return _error(401, "Invalid API key, business or user.", "authentication_failed")
        return None

    def _body(self, request: Request) -> Json:
        """The JSON object of a write. An empty body is ``{}`` whatever its Content-Type, as in
        Django REST framework, which parses nothing when there is nothing to parse: so a POST
        without a body lists all of ``/responses`` and is a create's field errors, not a 415."""
        raw = request.get_data(cache=False)
        if not raw:
            return {}
        mimetype = request.mimetype
        if mimetype != "application/json":
            raise ApiError(
                415, {"detail": f'Unsupported media type "{mimetype}" in request.', "code": "unsupported_media_type"}
            )
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, {"detail": f"JSON parse error - {exc}", "code": "parse_error"}) from exc
        if not isinstance(body, dict):
            kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(body), "null")
            raise ApiError(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
        return body

    # --- pagination ---------------------------------------------------------------------------

    @staticmethod
    def _page(request: Request) -> tuple[int, int]:
        """Django REST framework's rules: a bad page is 404; a bad page_size means the default."""
        try:
            page = int(request.args.get("page", "1"))
        except ValueError:
            raise not_found("Invalid page.") from None
        if page < 1:
            raise not_found("Invalid page.")
        try:
            size = int(request.args.get("page_size", ""))
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        return page, min(size, MAX_PAGE_SIZE) if size > 0 else DEFAULT_PAGE_SIZE

    @staticmethod
    def _envelope(request: Request, page: int, size: int, count: int, results: list[Json]) -> Response:
        if page > 1 and (page - 1) * size >= count:
            raise not_found("Invalid page.")

        def link(number: int) -> str:
            args = MultiDict(request.args)
            args["page"] = str(number)
            return f"{request.base_url}?{urlencode(list(args.items(multi=True)))}"

        return _json(
            {
                "count": count,
                "next": link(page + 1) if page * size < count else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": results,
                "errors": [],
            }
        )

    def _paged(self, request: Request, fetch: Callable[[int, int], tuple[int, list[Json]]]) -> Response:
        page, size = self._page(request)
        count, results = fetch((page - 1) * size, size)
        return self._envelope(request, page, size, count, results)

    # --- endpoints ----------------------------------------------------------------------------

    def _scheduled_list(self, request: Request, body: Json) -> Response:
        return self._paged(request, lambda offset, limit: self.service.list_scheduled(request.args, offset, limit))

    def _scheduled_create(self, request: Request, body: Json) -> Response:
        return _json(self.service.create_scheduled(body), 201)

    def _scheduled_get(self, request: Request, body: Json, activity_id: str) -> Response:
        return _json(self.service.get_scheduled(activity_id))

    def _scheduled_patch(self, request: Request, body: Json, activity_id: str) -> Response:
        return _json(self.service.update_scheduled(activity_id, body, partial=True))

    def _scheduled_put(self, request: Request, body: Json, activity_id: str) -> Response:
        return _json(self.service.update_scheduled(activity_id, body, partial=False))

    def _scheduled_delete(self, request: Request, body: Json, activity_id: str) -> Response:
        self.service.delete_scheduled(activity_id)
        return Response(status=204)

    def _logged_get(self, request: Request, body: Json, logged_id: str) -> Response:
        return _json(self.service.get_logged(logged_id))

    def _log_activity(self, request: Request, body: Json, type_ref: str) -> Response:
        return _json(self.service.log_activity(type_ref, body, actor=self.world.api_user), 201)

    def _responses(self, request: Request, body: Json, type_ref: str) -> Response:
        return self._paged(request, lambda offset, limit: self.service.list_logged(type_ref, body, offset, limit))

    def _types(self, request: Request, body: Json) -> Response:
        types = [self.service.render_type(t) for t in self.world.activity_types]
        return self._paged(request, lambda offset, limit: (len(types), types[offset : offset + limit]))

    def _type_get(self, request: Request, body: Json, type_ref: str) -> Response:
        return _json(self.service.render_type(self.service.activity_type(type_ref), detail=True))

    def _lookup(self, request: Request, body: Json, object_ref: str) -> Response:
        return _json(self.service.lookup(object_ref, request.args.get("identifier")))

    def _team(self, request: Request, body: Json) -> Response:
        people = self.service.team(request.args.get("search"))
        if "page_size" not in request.args and "search" not in request.args:
            return _json(people)
        return self._paged(request, lambda offset, limit: (len(people), people[offset : offset + limit]))

"""A typed client for Kizen's activity endpoints: no sync logic, only correct HTTP.

- One injected ``httpx.Client`` (base URL, explicit timeouts, transport); this module never
  builds one of its own except through :func:`http_client`.
- Requests that are safe to repeat (reads, PATCH, DELETE, list POSTs) are retried with bounded
  exponential backoff and full jitter on 429 (honouring ``Retry-After``), 502, 503, 504 and
  connection failures. A 429 (or a ``Retry-After``) holds back every request of the business,
  from every thread, for as long as Kizen asked (:mod:`syncd.kizen.limiter`).
- A create (a new scheduled activity, a log) is retried only when Kizen certainly did not act on
  it: a 429, or a connection that was never made. Once it may have reached Kizen (a timeout, a
  dropped connection, a 5xx) it is never re-sent: :class:`CreateOutcomeUnknown` is raised so the
  engine can settle its journaled intent first.
- Kizen's ``detail``, ``code`` and field errors are carried into syncd's errors. Neither the
  API key nor any other header appears in a log line or an exception's text.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from syncd.errors import CreateOutcomeUnknown, KizenError, KizenNotFound, KizenRejected, KizenUnavailable
from syncd.kizen.limiter import Limiter
from syncd.kizen.models import (
    ActivityType,
    Contact,
    Employee,
    LoggedActivity,
    LogReceipt,
    LogRequest,
    NewScheduledActivity,
    Page,
    ScheduledActivity,
    ScheduledActivityChanges,
    ScheduledActivitySummary,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
MAX_PAGE_SIZE = 1000
CONTACTS_OBJECT = "client_client"

_RETRYABLE_STATUS = frozenset({502, 503, 504})
# Failures that happen before a single byte of the request reached Kizen.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Credentials:
    """The three headers every Kizen call carries."""

    api_key: SecretStr
    business_id: str
    user_id: str

    def headers(self) -> dict[str, str]:
        return {
            "X-API-KEY": self.api_key.get_secret_value(),
            "X-BUSINESS-ID": self.business_id,
            "X-USER-ID": self.user_id,
        }


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, delays growing from ``base_delay`` to ``max_delay``.

    A ``Retry-After`` longer than ``max_retry_after`` is not waited for: the request fails with
    :class:`KizenUnavailable` carrying it, and the next run tries again.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0


def http_client(
    base_url: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The one httpx client a process talks to Kizen with."""
    return httpx.Client(base_url=base_url, timeout=timeout, transport=transport, follow_redirects=False)


@dataclass
class ActivitiesClient:
    """Kizen's activity endpoints, typed.

    Args:
        http: the injected client; its ``base_url`` is Kizen's (or the sandbox's).
        credentials: the three auth headers.
        retry: the retry policy.
        sleep, rng: injected so tests run without waiting and with repeatable jitter.
        limiter: the business's pace, shared by every thread using this client: a 429 holds
            back all of them (:mod:`syncd.kizen.limiter`); give it the clock ``sleep`` keeps.
    """

    http: httpx.Client
    credentials: Credentials
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    limiter: Limiter = field(default_factory=Limiter)

    # --- scheduled activities -------------------------------------------------------------

    def create(self, activity: NewScheduledActivity) -> ScheduledActivity:
        """Creates a scheduled activity; raises CreateOutcomeUnknown if the answer was lost."""
        body = activity.model_dump(mode="json", exclude_none=True)
        response = self._call("POST", "/api/activities/scheduled-activity", json=body, repeatable=False)
        return _parse(ScheduledActivity, response)

    def get(self, activity_id: UUID | str) -> ScheduledActivity:
        """One scheduled activity with its details; KizenNotFound if deleted (or not visible)."""
        return _parse(ScheduledActivity, self._call("GET", f"/api/activities/scheduled-activity/{activity_id}"))

    def update(self, activity_id: UUID | str, changes: ScheduledActivityChanges) -> ScheduledActivity:
        """PATCHes the fields set in ``changes``, and only those."""
        body = changes.model_dump(mode="json", exclude_unset=True)
        response = self._call("PATCH", f"/api/activities/scheduled-activity/{activity_id}", json=body)
        return _parse(ScheduledActivity, response)

    def delete(self, activity_id: UUID | str) -> None:
        """Deletes a scheduled activity.

        If an earlier attempt's answer was lost and the retry finds it gone (404), the delete
        is taken as done: the activity is gone either way.
        """
        self._call("DELETE", f"/api/activities/scheduled-activity/{activity_id}", gone_after_retry_ok=True)

    def list_scheduled(
        self,
        *,
        completed: bool,
        employee_ids: Sequence[UUID | str] | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        search: str | None = None,
        ordering: str = "due_datetime",
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[ScheduledActivitySummary]:
        """Scheduled activities "without details", every page, following ``next``.

        ``completed`` is required: whether Kizen includes completed ones by default is unknown.
        Whether ``from_date``/``to_date`` are inclusive is unknown too: a caller that must see an
        activity due exactly at a bound widens the window.
        """
        params: dict[str, str] = {"completed": "true" if completed else "false", "ordering": ordering}
        if employee_ids is not None:
            params["employee_ids"] = ",".join(str(e) for e in employee_ids)
        if from_date is not None:
            params["from_date"] = _utc(from_date)
        if to_date is not None:
            params["to_date"] = _utc(to_date)
        if search:
            params["search"] = search
        params["page_size"] = str(min(page_size, MAX_PAGE_SIZE))
        return self._pages(ScheduledActivitySummary, "GET", "/api/activities/scheduled-activity", params=params)

    # --- logged activities ----------------------------------------------------------------

    def log(self, activity_type: UUID | str, request: LogRequest) -> LogReceipt:
        """Logs an activity of a type (id or api_name); with ``scheduled_activity_id``, completes it."""
        body = request.model_dump(mode="json", exclude_none=True)
        response = self._call("POST", f"/api/activities/{activity_type}/log-activity", json=body, repeatable=False)
        return _parse(LogReceipt, response)

    def get_logged(self, logged_id: UUID | str) -> LoggedActivity:
        return _parse(LoggedActivity, self._call("GET", f"/api/activities/logged/{logged_id}"))

    def list_logged(self, activity_type: UUID | str, *, search: str | None = None) -> Iterator[LoggedActivity]:
        """The logged activities of one type: the only way Kizen enumerates them."""
        body: dict[str, Any] = {"search": search} if search else {}
        params = {"page_size": str(MAX_PAGE_SIZE)}
        return self._pages(
            LoggedActivity, "POST", f"/api/activities/{activity_type}/responses", params=params, json=body
        )

    # --- activity types, team, contacts ---------------------------------------------------

    def activity_types(self) -> Iterator[ActivityType]:
        return self._pages(ActivityType, "GET", "/api/activities", params={"page_size": str(MAX_PAGE_SIZE)})

    def activity_type(self, ref: UUID | str) -> ActivityType:
        """One activity type by id or api_name."""
        return _parse(ActivityType, self._call("GET", f"/api/activities/{ref}"))

    def team(self) -> list[Employee]:
        """Every employee the API user may see (only itself without the all-team permission)."""
        data = self._call("GET", "/api/team").json()
        rows = data["results"] if isinstance(data, dict) and "results" in data else data
        try:
            return TypeAdapter(list[Employee]).validate_python(rows)
        except ValidationError as exc:
            raise KizenError(f"unexpected answer: {_summary(exc)}", method="GET", path="/api/team") from exc

    def find_contact(self, email: str, object_name: str = CONTACTS_OBJECT) -> Contact | None:
        """The contact with this email, or None.

        Kizen's look-up matches exactly, so the email is tried as written, then lower-cased.
        """
        for candidate in dict.fromkeys([email, email.lower()]):
            try:
                response = self._call("GET", f"/api/records/{object_name}/lookup", params={"identifier": candidate})
            except KizenNotFound:
                continue
            return _parse(Contact, response)
        return None

    # --- HTTP -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        repeatable: bool | None = None,
        gone_after_retry_ok: bool = False,
    ) -> httpx.Response:
        """Sends one request with retries; returns a 2xx response or raises a KizenError.

        ``gone_after_retry_ok``: a 404 on a retry counts as success (a DELETE whose first
        answer was lost).
        """
        if repeatable is None:
            repeatable = method in ("GET", "HEAD", "PATCH", "PUT", "DELETE")
        path = httpx.URL(url).path
        status: int | None = None
        retry_after: float | None = None
        for attempt in range(1, self.retry.attempts + 1):
            status = retry_after = None
            self.limiter.wait(self.sleep)
            try:
                response = self.http.request(method, url, params=params, json=json, headers=self.credentials.headers())
            except _NOT_SENT as exc:
                failure = f"cannot connect ({type(exc).__name__})"
            except httpx.TransportError as exc:
                if not repeatable:
                    raise CreateOutcomeUnknown(
                        f"sent, but the answer was lost ({type(exc).__name__}); it may have been applied",
                        method=method,
                        path=path,
                    ) from exc
                failure = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 400 or (status == 404 and gone_after_retry_ok and attempt > 1):
                    return response
                failure = f"{status} {response.reason_phrase}"
                if status >= 500 and not repeatable:
                    raise CreateOutcomeUnknown(f"{failure}; it may have been applied", method=method, path=path)
                if status != 429 and status not in _RETRYABLE_STATUS:
                    raise (
                        _rejection(response, method, path)
                        if status < 500
                        else KizenUnavailable(failure, status=status, method=method, path=path)
                    )
                retry_after = _retry_after(response)
            if attempt == self.retry.attempts:
                break
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                raise KizenUnavailable(
                    f"{failure}; Kizen asked to wait {retry_after:.0f}s",
                    status=status,
                    retry_after=retry_after,
                    method=method,
                    path=path,
                )
            delay = self._backoff(attempt, retry_after)
            log.warning(
                "Kizen %s %s: %s; retry %d of %d in %.1fs",
                method,
                path,
                failure,
                attempt,
                self.retry.attempts - 1,
                delay,
            )
            if status == 429 or retry_after is not None:
                self.limiter.hold(delay)  # Kizen asked the business to slow down: every worker waits
            else:
                self.sleep(delay)
        raise KizenUnavailable(
            f"{failure}, still after {self.retry.attempts} attempts",
            status=status,
            retry_after=retry_after,
            method=method,
            path=path,
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over an exponential ceiling, but never less than Kizen's Retry-After."""
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        jittered = self.rng.uniform(0, ceiling)
        return max(jittered, retry_after) if retry_after is not None else jittered

    def _pages(
        self,
        model: type[M],
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Iterator[M]:
        """Every result of a paginated list, following ``next`` on the same origin only."""
        origin = self.http.base_url
        page_model = Page[model]  # type: ignore[valid-type]
        next_url: str | None = url
        first = True
        while next_url is not None:
            response = self._call(method, next_url, params=params if first else None, json=json, repeatable=True)
            page = _parse(page_model, response)
            yield from page.results
            first = False
            next_url = page.next
            if next_url is not None:
                target = httpx.URL(next_url)
                if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
                    raise KizenError(
                        "a page's next link leaves Kizen's host; not followed", method=method, path=httpx.URL(url).path
                    )


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: Kizen needs an instant (give a tzinfo)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _rejection(response: httpx.Response, method: str, path: str) -> KizenRejected:
    """Kizen's 4xx, with its detail, code and field errors (the reason phrase if it sent none)."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.reason_phrase}
    return KizenRejected.from_answer(response.status_code, body, method=method, path=path)


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise KizenError(
            f"unexpected answer: {_summary(exc)}", method=response.request.method, path=response.request.url.path
        ) from exc


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])

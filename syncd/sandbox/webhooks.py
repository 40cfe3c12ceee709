"""The ``activity.logged`` webhook, posted as Kizen does: after the log, off the request path.

Kizen publishes neither the payload nor retries nor a signature, so the sandbox takes the
stricter reading: one attempt, no signature, and a body that carries little more than the
logged activity's id, so a receiver has to read the record back (DESIGN treats the body as a hint).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    url: str
    payload: dict[str, Any]
    status: int | None
    error: str | None


def payload(logged: dict[str, Any], activity_type_id: str, api_name: str) -> dict[str, Any]:
    """The webhook body for one logged activity."""
    return {
        "event": "activity.logged",
        "logged_activity_id": logged["id"],
        "activity_object": {"id": activity_type_id, "api_name": api_name},
        "scheduled_activity_id": logged["scheduled_activity_id"],
    }


class WebhookSender:
    """Posts webhooks from one background thread, in the order they were logged."""

    def __init__(self, http: httpx.Client | None = None) -> None:
        self._http = http or httpx.Client(timeout=httpx.Timeout(5.0))
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.deliveries: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def post(self, url: str, body: dict[str, Any]) -> None:
        self._queue.put((url, body))

    def drain(self) -> None:
        """Waits until every queued webhook has been attempted."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._http.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            url, body = item
            try:
                response = self._http.post(url, json=body)
                self.deliveries.append(Delivery(url, body, response.status_code, None))
            except httpx.HTTPError as exc:
                log.warning(
                    "webhook to %s failed: %s", httpx.URL(url).host, type(exc).__name__
                )  # the path holds a secret
                self.deliveries.append(Delivery(url, body, None, type(exc).__name__))
            finally:
                self._queue.task_done()
        self._queue.task_done()

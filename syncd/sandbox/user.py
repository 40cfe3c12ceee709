"""A person at work in Kizen's web app, for tests and demos.

Kept apart from the emulated API: these actions change the sandbox the way Kizen's own UI would
(completing fires the webhook, as any log does), and syncd's code never calls them. Kizen's
refusals come back as syncd's own errors (KizenNotFound, KizenRejected), as through the client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from syncd.errors import ConfigError, KizenRejected
from syncd.sandbox.service import ApiError, Service, iso
from syncd.sandbox.shapes import Json
from syncd.sandbox.world import Employee

P = ParamSpec("P")
R = TypeVar("R")


def _as_kizen_errors(action: Callable[P, R]) -> Callable[P, R]:
    @wraps(action)
    def acting(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return action(*args, **kwargs)
        except ApiError as refusal:
            raise KizenRejected.from_answer(refusal.status, refusal.body, method="user", path=action.__name__) from None

    return acting


class KizenUser:
    """Acts as one employee of the sandbox's business."""

    def __init__(self, service: Service, employee: Employee) -> None:
        self.service = service
        self.employee = employee

    @_as_kizen_errors
    def create(
        self,
        activity_type: str,
        due: datetime,
        *,
        note: str = "",
        assignee: str | None = None,
        original_due: datetime | None = None,
    ) -> Json:
        """Schedules an activity (assigned to ``assignee``'s email, else to this user)."""
        body: Json = {
            "activity_object_id": str(self.service.activity_type(activity_type).id),
            "due_datetime": iso(due),
            "note": note,
            "employee_id": str(self._employee(assignee).id),
        }
        if original_due is not None:
            body["original_due_datetime"] = iso(original_due)
        return self.service.create_scheduled(body)

    @_as_kizen_errors
    def reschedule(self, activity_id: str, due: datetime) -> Json:
        return self.service.update_scheduled(activity_id, {"due_datetime": iso(due)}, partial=True)

    @_as_kizen_errors
    def edit_note(self, activity_id: str, note: str) -> Json:
        return self.service.update_scheduled(activity_id, {"note": note}, partial=True)

    @_as_kizen_errors
    def reassign(self, activity_id: str, email: str) -> Json:
        return self.service.update_scheduled(activity_id, {"employee_id": str(self._employee(email).id)}, partial=True)

    @_as_kizen_errors
    def delete(self, activity_id: str) -> None:
        self.service.delete_scheduled(activity_id)

    @_as_kizen_errors
    def complete(self, activity_id: str, notes: str = "", fields: dict[str, Any] | None = None) -> Json:
        """Completes a scheduled activity: logs it, as the "Complete" button does.

        Required fields of the type not in ``fields`` are filled with ``"Done"``, as a person
        filling the form would; returns the logged activity.
        """
        scheduled = self.service.get_scheduled(activity_id)
        activity_type = self.service.activity_type(scheduled["activity_object"]["id"])
        values = {f.name: "Done" for f in activity_type.fields if f.required} | (fields or {})
        by_name = {f.name: str(f.id) for f in activity_type.fields}
        created = self.service.log_activity(
            str(activity_type.id),
            {
                "related_objects": [
                    {"custom_object": e["custom_object"]["id"], "entity_id": e["entity"]["id"]}
                    for e in scheduled["associated_entities"]
                ],
                "notes": notes,
                "scheduled_activity_id": activity_id,
                "fields": [{"id": by_name[name], "value": value} for name, value in values.items()],
            },
            actor=self.employee,
        )
        return self.service.get_logged(created["id"])

    @_as_kizen_errors
    def log(self, activity_type: str, notes: str = "") -> Json:
        """Logs an activity directly, with no scheduled activity behind it."""
        t = self.service.activity_type(activity_type)
        fields = [{"id": str(f.id), "value": "Done"} for f in t.fields if f.required]
        created = self.service.log_activity(
            str(t.id), {"related_objects": [], "notes": notes, "fields": fields}, actor=self.employee
        )
        return self.service.get_logged(created["id"])

    def _employee(self, email: str | None) -> Employee:
        if email is None:
            return self.employee
        return _employee(self.service, email)


def _employee(service: Service, email: str) -> Employee:
    found = service.world.employee(email)
    if found is None:
        raise ConfigError([f"no employee with email {email!r} in the sandbox's business"])
    return found


def acting_as(service: Service, email: str | None) -> KizenUser:
    """The Kizen user with this email, or the API user if None."""
    return KizenUser(service, service.world.api_user if email is None else _employee(service, email))

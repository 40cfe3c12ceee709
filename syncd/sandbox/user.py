"""A person at work in Kizen's web app, for tests and demos.

Kept apart from the emulated API: these actions change the sandbox the way Kizen's own UI would
(completing fires the webhook, as any log does), and syncd's code never calls them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncd.sandbox.service import Json, Service, iso
from syncd.sandbox.world import Employee


class KizenUser:
    """Acts as one employee of the sandbox's business."""

    def __init__(self, service: Service, employee: Employee) -> None:
        self.service = service
        self.employee = employee

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

    def reschedule(self, activity_id: str, due: datetime) -> Json:
        return self.service.update_scheduled(activity_id, {"due_datetime": iso(due)}, partial=True)

    def edit_note(self, activity_id: str, note: str) -> Json:
        return self.service.update_scheduled(activity_id, {"note": note}, partial=True)

    def reassign(self, activity_id: str, email: str) -> Json:
        return self.service.update_scheduled(activity_id, {"employee_id": str(self._employee(email).id)}, partial=True)

    def delete(self, activity_id: str) -> None:
        self.service.delete_scheduled(activity_id)

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
        for e in self.service.world.employees:
            if e.email == email:
                return e
        raise LookupError(f"no employee with email {email!r} in the sandbox")

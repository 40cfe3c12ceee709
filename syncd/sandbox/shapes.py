"""Kizen's read shapes of the sandbox's records: what its answers look like.

The corrected ``ScheduledActivityV2Read`` for one scheduled activity, the list's summary, the
logged activity, the team's ``EmployeeSerpy``, and the activity type.
"""

from __future__ import annotations

import uuid
from typing import Any

from syncd.sandbox.store import Record
from syncd.sandbox.world import ActivityType, Employee, World

Json = dict[str, Any]

SUMMARY_FIELDS = (
    "id",
    "activity_object",
    "employee",
    "role",
    "due_datetime",
    "original_due_datetime",
    "completed_at",
    "logged_activity_id",
    "created",
)


class Shapes:
    """Renders records in Kizen's shapes; the service inherits it (it needs only ``world``)."""

    world: World

    def render_type(self, t: ActivityType, *, detail: bool = False) -> Json:
        body: Json = {
            "id": str(t.id),
            "name": t.name,
            "api_name": t.api_name,
            "association_mode": t.association_mode,
            "calendar_sync_duration": t.calendar_sync_duration,
            "enabled": t.enabled,
        }
        if detail:
            body["submission_action"] = "trigger_webhook" if t.webhook_url else "redirect"
            body["webhook_url"] = t.webhook_url
            body["fields"] = [self._render_field_definition(f) for f in t.fields]
        return body

    def render_scheduled(self, record: Record) -> Json:
        """The full read shape (the corrected ``ScheduledActivityV2Read``)."""
        employee = self.world.employees_by_id.get(uuid.UUID(record["employee_id"])) if record["employee_id"] else None
        role = self.world.roles_by_id.get(uuid.UUID(record["role_id"])) if record["role_id"] else None
        open_ = record["completed_at"] is None
        return {
            "associated_entities": [self._render_entity(e) for e in record["associated_entities"]],
            "id": record["id"],
            "note": record["note"],
            "due_datetime": record["due_datetime"],
            "original_due_datetime": record["original_due_datetime"],
            "completed_at": record["completed_at"],
            "logged_activity_id": record["logged_activity_id"],
            "activity_object": self._render_type_summary(record["activity_object_id"]),
            "employee": self._render_assignee(employee) if employee else None,
            "role": {"id": str(role.id), "name": role.name} if role else None,
            "mentions": [self.render_employee(self.world.employees_by_id[uuid.UUID(m)]) for m in record["mentions"]],
            "associated_fields": [],
            "notifications": record["notifications"],
            "created": record["created"],
            "access": {"view": True, "edit": open_, "remove": open_},
        }

    def render_scheduled_summary(self, record: Record) -> Json:
        """A list result: only the fields the list carries ("without details")."""
        full = self.render_scheduled(record)
        return {k: full[k] for k in SUMMARY_FIELDS}

    def render_logged(self, record: Record) -> Json:
        activity_type = self.world.types_by_id[uuid.UUID(record["activity_object_id"])]
        by = self.world.employees_by_id.get(uuid.UUID(record["logged_by"]))
        completed_by = (
            self.world.employees_by_id.get(uuid.UUID(record["completed_by"])) if record["completed_by"] else None
        )
        definitions = {str(f.id): f for f in activity_type.fields}
        return {
            "id": record["id"],
            "notes": record["notes"],
            "activity_object": {
                "id": str(activity_type.id),
                "name": activity_type.name,
                "api_name": activity_type.api_name,
                "association_mode": activity_type.association_mode,
            },
            "associated_entities": [
                self._render_entity({"custom_object_id": o["custom_object"], "entity_id": o["entity_id"]})
                for o in record["related_objects"]
            ],
            "logged_at": record["logged_at"],
            "logged_by": self._render_assignee(by) if by else None,
            "completed_at": record["completed_at"],
            "completed_by": self._render_assignee(completed_by) if completed_by else None,
            "scheduled_activity_id": record["scheduled_activity_id"],
            "mentions": record["mentions"],
            "fields": [
                {
                    "id": f["id"],
                    "value": f["value"],
                    "field_type": definitions[f["id"]].field_type,
                    "custom_field_type": None,
                    "name": definitions[f["id"]].name,
                    "display_name": definitions[f["id"]].display_name,
                }
                for f in record["fields"]
            ],
        }

    def render_employee(self, e: Employee) -> Json:
        """An employee as the seed's ``EmployeeSerpy``."""
        return {
            "picture_url": e.picture_url,
            "id": str(e.id),
            "first_name": e.first_name,
            "last_name": e.last_name,
            "email": e.email,
            "display_name": e.display_name,
            "account_type": e.account_type,
        }

    @staticmethod
    def _render_assignee(e: Employee) -> Json:
        return {"id": str(e.id), "display_name": e.display_name, "email": e.email, "picture_url": e.picture_url}

    def _render_type_summary(self, type_id: str) -> Json:
        t = self.world.types_by_id[uuid.UUID(type_id)]
        return {
            "id": str(t.id),
            "name": t.name,
            "api_name": t.api_name,
            "association_mode": t.association_mode,
            "calendar_sync_duration": t.calendar_sync_duration,
        }

    def _render_entity(self, link: Record) -> Json:
        custom_object = self.world.objects_by_id[uuid.UUID(link["custom_object_id"])]
        contact = self.world.contacts_by_id[uuid.UUID(link["entity_id"])]
        return {
            "custom_object": {
                "id": str(custom_object.id),
                "name": custom_object.name,
                "object_name": custom_object.object_name,
            },
            "entity": {
                "id": str(contact.id),
                "name": contact.display_name,
                "email": contact.email,
                "display_name": contact.display_name,
            },
            "custom_object_id": str(custom_object.id),
            "object_name": custom_object.display_name,
            "object_api_name": custom_object.object_name,
            "entity_id": str(contact.id),
            "name": contact.display_name,
            "display_name": contact.display_name,
        }

    @staticmethod
    def _render_field_definition(f: Any) -> Json:
        return {
            "id": str(f.id),
            "name": f.name,
            "display_name": f.display_name,
            "field_type": f.field_type,
            "is_required": f.required,
        }

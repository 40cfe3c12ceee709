"""Typed shapes of Kizen's activity payloads.

Read models ignore fields they do not know, so a field Kizen adds never breaks a sync; write
models forbid unknown fields, so a typo never reaches Kizen. Date-times are timezone-aware
and sent in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

T = TypeVar("T")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDatetime = Annotated[AwareDatetime, PlainSerializer(_utc, return_type=str)]


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- reads -------------------------------------------------------------------------------------


class ActivityTypeRef(_Read):
    id: UUID
    name: str
    api_name: str
    association_mode: str | None = None
    calendar_sync_duration: int | None = None


class ActivityType(ActivityTypeRef):
    """An activity type ("activity object"): Meeting, Call, ..."""

    enabled: bool = True


class EmployeeRef(_Read):
    id: UUID
    display_name: str
    email: str
    picture_url: str | None = None


class Employee(EmployeeRef):
    """A team member, as ``GET /api/team`` lists them."""

    first_name: str = ""
    last_name: str = ""
    account_type: str | None = None


class RoleRef(_Read):
    id: UUID
    name: str


class Notification(_Read):
    """A reminder before the due time; the same shape is read and written."""

    type: Literal["email", "text"]
    time_amount: int = Field(ge=1, le=2_147_483_647)
    time_unit: Literal["minute", "hour", "day"]


class CustomObjectRef(_Read):
    id: UUID
    name: str
    object_name: str


class EntityRef(_Read):
    id: UUID
    name: str
    email: str | None = None
    display_name: str | None = None


class AssociatedEntity(_Read):
    custom_object: CustomObjectRef
    entity: EntityRef


class ScheduledActivitySummary(_Read):
    """A scheduled activity as the list returns it: no note, no notifications."""

    id: UUID
    activity_object: ActivityTypeRef
    employee: EmployeeRef | None
    role: RoleRef | None
    due_datetime: AwareDatetime
    original_due_datetime: AwareDatetime | None
    completed_at: AwareDatetime | None
    logged_activity_id: UUID | None
    created: AwareDatetime

    @property
    def completed(self) -> bool:
        return self.completed_at is not None or self.logged_activity_id is not None


class ScheduledActivity(ScheduledActivitySummary):
    """A scheduled activity with its details (``GET`` one, create, update)."""

    note: str
    mentions: list[Employee]
    notifications: list[Notification]
    associated_entities: list[AssociatedEntity]
    associated_fields: list[Any]


class LoggedField(_Read):
    id: UUID
    value: Any = None
    name: str | None = None
    display_name: str | None = None
    field_type: str | None = None


class LoggedActivity(_Read):
    """A logged activity: immutable, the record that something happened."""

    id: UUID
    notes: str | None = None
    activity_object: ActivityTypeRef
    logged_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    scheduled_activity_id: UUID | None = None
    mentions: list[UUID] = []
    fields: list[LoggedField] = []


class LogReceipt(_Read):
    """What ``log-activity`` answers: the new logged activity's id and an echo of the request."""

    id: UUID
    scheduled_activity_id: UUID | None = None


class Contact(_Read):
    id: UUID
    email: str
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None


class Page(_Read, Generic[T]):
    """Kizen's pagination envelope."""

    count: int | None = None
    next: str | None = None
    previous: str | None = None
    results: list[T]
    errors: Any = None


# --- writes ------------------------------------------------------------------------------------


class ObjectRef(_Write):
    id: UUID | None = None
    name: str | None = None


class EntityLink(_Write):
    """Links a record: for a contact, ``entity.name`` may be the contact's email."""

    custom_object: ObjectRef
    entity: ObjectRef


class NewScheduledActivity(_Write):
    """The create request (``ScheduledActivityV2WriteRequest``)."""

    activity_object_id: UUID
    due_datetime: UtcDatetime
    original_due_datetime: UtcDatetime | None = None
    employee_id: UUID | None = None
    role_id: UUID | None = None
    note: str = ""
    mentions: list[UUID] = []
    notifications: list[Notification] = []
    associated_entities: list[EntityLink] = []


class ScheduledActivityChanges(_Write):
    """A PATCH: only the fields set are sent; never the type, never ``original_due_datetime``."""

    due_datetime: UtcDatetime | None = None
    employee_id: UUID | None = None
    role_id: UUID | None = None
    note: str | None = None
    mentions: list[UUID] | None = None
    notifications: list[Notification] | None = None
    associated_entities: list[EntityLink] | None = None


class RelatedObject(_Write):
    custom_object: UUID
    entity_id: UUID


class FieldValue(_Write):
    id: UUID
    value: Any


class LogRequest(_Write):
    """``log-activity``: with ``scheduled_activity_id`` it completes that scheduled activity."""

    related_objects: list[RelatedObject] = []
    notes: str = ""
    scheduled_activity_id: UUID | None = None
    mentions: list[UUID] = []
    fields: list[FieldValue] = []

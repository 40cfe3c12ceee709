"""What the emulated Kizen does with a request, apart from HTTP.

Each public method takes the parsed JSON (or query) of one request and returns the JSON of the
answer, or raises :class:`ApiError` carrying Kizen's status and error body. The choices made
where Kizen's behaviour is unknown are listed in the package docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from jsonschema.exceptions import ValidationError

from syncd.sandbox import schemas
from syncd.sandbox.shapes import Json, Shapes
from syncd.sandbox.store import ORDERINGS, Record, ScheduledQuery, Store, micros
from syncd.sandbox.world import ActivityType, Employee, World

Clock = Callable[[], datetime]

REQUIRED = "This field is required."


class ApiError(Exception):
    """An error answer of the emulated API: its HTTP status and Kizen-shaped body.

    This is the sandbox's server-side signal, turned into a response by the app; it never
    reaches syncd's code, which sees only the HTTP answer.
    """

    def __init__(self, status: int, body: Json) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status} {body}")


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, {"detail": detail, "code": "not_found"})


def invalid(detail: str, code: str = "invalid") -> ApiError:
    return ApiError(400, {"detail": detail, "code": code})


class FieldErrors:
    """Collects field errors keyed by field name, nested by item index for arrays.

    ``{"due_datetime": ["This field is required."], "notifications": {"0": {"time_unit": [...]}}}``
    is the shape Django REST framework gives a list of objects and a list of scalars alike.
    """

    def __init__(self) -> None:
        self.errors: Json = {}

    def add(self, path: Iterable[str | int], message: str) -> None:
        *parents, last = [str(key) for key in path] or ["non_field_errors"]
        node = self.errors
        for key in parents:
            node = node.setdefault(key, {})
        node.setdefault(last, []).append(message)

    def has(self, field: str) -> bool:
        return field in self.errors

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(400, self.errors)


def iso(value: datetime | None) -> str | None:
    """Kizen's date-time format: UTC, ISO 8601, ``Z``, microseconds only when there are any."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time (the schema has checked its format) as an aware UTC datetime.

    Raises:
        ValueError: a form RFC 3339 allows and Django's parser does not (a lowercase ``t`` or
            ``z``); OverflowError: an instant outside years 1 to 9999 once in UTC
            (``0001-01-01T00:00:00+01:00``). :meth:`Service._schema_errors` turns both into the
            field errors Django REST framework answers with, before any field is used.
    """
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_bound(text: str) -> datetime:
    """A list filter bound: an RFC 3339 date-time with an offset, or a date (midnight UTC)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("Enter a valid date/time.") from exc
    if value.tzinfo is None:
        raise ValueError("Enter a date/time with a UTC offset.")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise ValueError("Datetime value out of the supported range.") from exc


_DATETIME_FORMAT = "YYYY-MM-DDThh:mm[:ss[.uuuuuu]](+HH:MM|-HH:MM|Z)."
_DATETIME_WRONG_FORMAT = "Datetime has wrong format. Use one of these formats instead: " + _DATETIME_FORMAT
_DATETIME_FIELDS = ("due_datetime", "original_due_datetime")
_TYPE_MESSAGES = {
    "string": "Not a valid string.",
    "integer": "A valid integer is required.",
    "boolean": "Must be a valid boolean.",
    "array": "Expected a list of items.",
    "object": "Invalid data. Expected a dictionary.",
}


def _schema_message(error: ValidationError) -> str:
    """Django REST framework's wording for the commonest schema failures."""
    match error.validator:
        case "format" if error.validator_value == "uuid":
            return "Must be a valid UUID."
        case "format" if error.validator_value == "date-time":
            return _DATETIME_WRONG_FORMAT
        case "type":
            return _TYPE_MESSAGES.get(str(error.validator_value), error.message)
        case "enum":
            return f'"{error.instance}" is not a valid choice.'
        case "minimum":
            return f"Ensure this value is greater than or equal to {error.validator_value}."
        case "maximum":
            return f"Ensure this value is less than or equal to {error.validator_value}."
        case "minLength":
            return "This field may not be blank."
    return error.message


class Service(Shapes):
    """The emulated Kizen business: its rules for scheduled and logged activities."""

    def __init__(self, world: World, store: Store, clock: Clock, on_logged: Callable[[ActivityType, Json], None]):
        self.world = world
        self.store = store
        self.clock = clock
        self.on_logged = on_logged

    # --- scheduled activities -------------------------------------------------------------

    def create_scheduled(self, body: Json) -> Json:
        errors = self._schema_errors(body)
        activity_type = self._activity_type_of(body, errors)
        if "due_datetime" not in body and not errors.has("due_datetime"):
            errors.add(["due_datetime"], REQUIRED)
        record: Record = {"id": str(uuid.uuid4()), "activity_object_id": str(activity_type.id) if activity_type else ""}
        self._merge_fields(record, body, errors, partial=False)
        errors.raise_if_any()
        assert activity_type is not None
        if not activity_type.enabled:
            raise invalid("This activity type is disabled.")
        record["original_due_datetime"] = iso(parse_instant(body.get("original_due_datetime") or body["due_datetime"]))
        record["created"] = iso(self.clock())
        record["completed_at"] = None
        record["logged_activity_id"] = None
        self._save(record)
        return self.render_scheduled(record)

    def get_scheduled(self, activity_id: str) -> Json:
        return self.render_scheduled(self._scheduled(activity_id))

    def update_scheduled(self, activity_id: str, body: Json, *, partial: bool) -> Json:
        with self.store.transaction():
            record = self._scheduled(activity_id)
            if record["completed_at"] is not None:
                raise invalid("A completed activity cannot be changed.", "activity_completed")
            errors = self._schema_errors(body)
            if "activity_object_id" in body or "activity_object_name" in body:
                given = self._activity_type_of(body, errors)
                if given is not None and str(given.id) != record["activity_object_id"]:
                    errors.add(["activity_object_id"], "The activity type cannot be changed.")
            if "original_due_datetime" in body:
                errors.add(["original_due_datetime"], "This field cannot be changed after creation.")
            if not partial and "due_datetime" not in body and not errors.has("due_datetime"):
                errors.add(["due_datetime"], REQUIRED)
            updated = dict(record)
            self._merge_fields(updated, body, errors, partial=partial)
            errors.raise_if_any()
            self._save(updated)
        return self.render_scheduled(updated)

    def delete_scheduled(self, activity_id: str) -> None:
        with self.store.transaction():
            record = self._scheduled(activity_id)
            if record["completed_at"] is not None:
                raise invalid("A completed activity cannot be deleted.", "activity_completed")
            self.store.delete_scheduled(activity_id)

    def list_scheduled(self, params: Mapping[str, str], offset: int, limit: int) -> tuple[int, list[Json]]:
        count, records = self.store.list_scheduled(self._scheduled_query(params), offset, limit)
        return count, [self.render_scheduled_summary(r) for r in records]

    def _scheduled_query(self, params: Mapping[str, str]) -> ScheduledQuery:
        problems: list[str] = []
        bounds: dict[str, int | None] = {"from_date": None, "to_date": None}
        for name in bounds:
            if params.get(name):
                try:
                    bounds[name] = micros(parse_bound(params[name]))
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
        employee_ids = None
        if "employee_ids" in params:
            employee_ids = []
            for part in filter(None, (p.strip() for p in params["employee_ids"].split(","))):
                if _is_uuid(part):
                    employee_ids.append(str(uuid.UUID(part)))
                else:
                    problems.append(f"employee_ids: {part!r} is not a valid UUID.")
        completed = None
        if "completed" in params:
            completed = {"true": True, "false": False}.get(params["completed"].lower())
            if completed is None:
                problems.append("completed: Must be a valid boolean.")
        type_id = None
        if "activity_id" in params and "activity_name" in params:
            problems.append("activity_id, activity_name: send one of them, not both.")
        elif "activity_id" in params:
            if _is_uuid(params["activity_id"]):
                type_id = str(uuid.UUID(params["activity_id"]))
            else:
                problems.append(f"activity_id: {params['activity_id']!r} is not a valid UUID.")
        elif "activity_name" in params:
            named = self.world.activity_type_named(params["activity_name"])
            type_id = str(named.id) if named else ""
        if problems:
            raise ApiError(400, {"count": 0, "next": None, "previous": None, "results": [], "errors": problems})
        search = params.get("search") or None
        ordering = params.get("ordering", "due_datetime")
        return ScheduledQuery(
            after_us=bounds["from_date"],
            before_us=bounds["to_date"],
            employee_ids=employee_ids,
            completed=completed,
            type_id=type_id,
            search=search,
            type_ids_named=[
                str(t.id) for t in self.world.activity_types if search and search.lower() in t.name.lower()
            ],
            ordering=ordering if ordering in ORDERINGS else "due_datetime",
        )

    # --- logged activities -----------------------------------------------------------------

    def log_activity(self, type_ref: str, body: Json, actor: Employee) -> Json:
        activity_type = self.activity_type(type_ref)
        if not activity_type.enabled:
            raise invalid("This activity type is disabled.")
        errors = FieldErrors()
        related = self._related_objects(body, errors)
        if activity_type.association_mode == "none" and related:
            errors.add(["related_objects"], "This activity type takes no associated records.")
        if activity_type.association_mode == "required" and not related and not errors.has("related_objects"):
            errors.add(["related_objects"], "This activity type needs an associated record.")
        notes = body.get("notes", "")
        if not isinstance(notes, str):
            errors.add(["notes"], "Not a valid string.")
        mentions = self._mentions(body.get("mentions", []), errors)
        fields = self._logged_fields(activity_type, body.get("fields", []), errors)
        scheduled_id = body.get("scheduled_activity_id")
        with self.store.transaction():
            scheduled = None
            if scheduled_id is not None:
                scheduled = self._scheduled_to_complete(str(scheduled_id), activity_type, errors)
            errors.raise_if_any()
            now = self.clock()
            logged: Record = {
                "id": str(uuid.uuid4()),
                "activity_object_id": str(activity_type.id),
                "notes": notes,
                "related_objects": related,
                "logged_at": iso(now),
                "logged_by": str(actor.id),
                "completed_at": iso(now) if scheduled else None,
                "completed_by": str(actor.id) if scheduled else None,
                "scheduled_activity_id": scheduled["id"] if scheduled else None,
                "mentions": mentions,
                "fields": fields,
            }
            self.store.add_logged(logged)
            if scheduled is not None:
                scheduled["completed_at"] = logged["completed_at"]
                scheduled["logged_activity_id"] = logged["id"]
                self._save(scheduled)
        self.on_logged(activity_type, logged)
        return {k: logged[k] for k in ("id", "notes", "related_objects", "scheduled_activity_id", "mentions", "fields")}

    def get_logged(self, logged_id: str) -> Json:
        record = self.store.logged(logged_id) if _is_uuid(logged_id) else None
        if record is None:
            raise not_found()
        return self.render_logged(record)

    def list_logged(self, type_ref: str, body: Json, offset: int, limit: int) -> tuple[int, list[Json]]:
        activity_type = self.activity_type(type_ref)
        search = body.get("search")
        if search is not None and not isinstance(search, str):
            raise ApiError(400, {"search": ["Not a valid string."]})
        object_id = body.get("custom_object_id")
        if object_id is not None and not (isinstance(object_id, str) and _is_uuid(object_id)):
            raise ApiError(400, {"custom_object_id": ["Must be a valid UUID."]})
        count, records = self.store.list_logged(str(activity_type.id), search, object_id, offset, limit)
        return count, [self.render_logged(r) for r in records]

    # --- activity types, team, records ------------------------------------------------------

    def activity_type(self, ref: str) -> ActivityType:
        found = self.world.activity_type(ref)
        if found is None:
            raise not_found()
        return found

    def team(self, search: str | None) -> list[Json]:
        people = self.world.employees if self.world.business.team_visible else (self.world.api_user,)
        if search:
            needle = search.lower()
            people = tuple(p for p in people if needle in f"{p.display_name} {p.email}".lower())
        return [self.render_employee(p) for p in people]

    def lookup(self, object_ref: str, identifier: str | None) -> Json:
        custom_object = self.world.custom_object(object_ref)
        if custom_object is None:
            raise not_found()
        if not identifier:
            raise ApiError(400, {"identifier": [REQUIRED]})
        for contact in self.world.contacts:
            if contact.object == custom_object.object_name and contact.email == identifier:
                return {
                    "id": str(contact.id),
                    "email": contact.email,
                    "first_name": contact.first_name,
                    "last_name": contact.last_name,
                    "display_name": contact.display_name,
                }
        raise not_found()

    # --- validation -------------------------------------------------------------------------

    def _schema_errors(self, body: Json) -> FieldErrors:
        errors = FieldErrors()
        for error in schemas.request_validator("ScheduledActivityV2WriteRequest").iter_errors(body):
            path = list(error.absolute_path)
            if error.validator == "required":  # name the missing field itself, as Kizen does
                missing = next(p for p in error.validator_value if repr(p) in error.message)  # type: ignore[union-attr]
                errors.add([*path, missing], REQUIRED)
            else:
                errors.add(path, _schema_message(error))
        for field in _DATETIME_FIELDS:  # the schema checks the form, the parser the instant
            value = body.get(field)
            if isinstance(value, str) and not errors.has(field):
                try:
                    parse_instant(value)
                except ValueError:
                    errors.add([field], _DATETIME_WRONG_FORMAT)
                except OverflowError:
                    errors.add([field], "Datetime value out of the supported range.")
        return errors

    def _activity_type_of(self, body: Json, errors: FieldErrors) -> ActivityType | None:
        if errors.has("activity_object_id") or errors.has("activity_object_name"):
            return None
        by_id = by_name = None
        if body.get("activity_object_id") is not None:
            by_id = self.world.types_by_id.get(uuid.UUID(body["activity_object_id"]))
            if by_id is None:
                errors.add(
                    ["activity_object_id"], f'Invalid pk "{body["activity_object_id"]}" - object does not exist.'
                )
        if body.get("activity_object_name") is not None:
            by_name = self.world.activity_type_named(body["activity_object_name"])
            if by_name is None:
                errors.add(["activity_object_name"], f"Object with name={body['activity_object_name']} does not exist.")
        if by_id is None and by_name is None:
            if "activity_object_id" not in body and "activity_object_name" not in body:
                errors.add(["activity_object_id"], "Send activity_object_id or activity_object_name.")
            return None
        if by_id and by_name and by_id != by_name:
            errors.add(["activity_object_name"], "Names another activity type than activity_object_id.")
            return None
        return by_id or by_name

    def _merge_fields(self, record: Record, body: Json, errors: FieldErrors, *, partial: bool) -> None:
        """Sets the writable fields from ``body``; a full write resets the absent ones."""

        def given(field: str) -> bool:
            return field in body and not errors.has(field)

        defaults: Json = {
            "note": "",
            "mentions": [],
            "notifications": [],
            "associated_entities": [],
            "notify_mentioned": False,
        }
        if not partial:
            record.update({**defaults, "employee_id": None, "role_id": None})
        if given("due_datetime"):
            record["due_datetime"] = iso(parse_instant(body["due_datetime"]))
        for field in ("note", "notify_mentioned", "notifications"):
            if given(field):
                record[field] = body[field]
        if given("employee_id"):
            record["employee_id"] = self._known(body["employee_id"], self.world.employees_by_id, "employee_id", errors)
        if given("role_id"):
            record["role_id"] = self._known(body["role_id"], self.world.roles_by_id, "role_id", errors)
        if given("mentions"):
            record["mentions"] = self._mentions(body["mentions"], errors)
        if given("associated_entities"):
            record["associated_entities"] = self._associated_entities(body["associated_entities"] or [], errors)
        if (
            record.get("employee_id") is None
            and record.get("role_id") is None
            and not errors.has("employee_id")
            and not errors.has("role_id")
        ):
            errors.add(["employee_id"], "Assign the activity to an employee (employee_id) or a role (role_id).")

    @staticmethod
    def _known(value: str | None, known: Mapping[uuid.UUID, Any], field: str, errors: FieldErrors) -> str | None:
        if value is None:
            return None
        if uuid.UUID(value) not in known:
            errors.add([field], f'Invalid pk "{value}" - object does not exist.')
            return None
        return str(uuid.UUID(value))

    def _mentions(self, values: Any, errors: FieldErrors) -> list[str]:
        if not isinstance(values, list):
            errors.add(["mentions"], f'Expected a list of items but got type "{type(values).__name__}".')
            return []
        found: list[str] = []
        for index, value in enumerate(values):
            if value is None:
                continue
            if not isinstance(value, str) or not _is_uuid(value):
                errors.add(["mentions", index], "Must be a valid UUID.")
            elif uuid.UUID(value) not in self.world.employees_by_id:
                errors.add(["mentions", index], f'Invalid pk "{value}" - object does not exist.')
            else:
                found.append(str(uuid.UUID(value)))
        return found

    def _associated_entities(self, items: list[Json], errors: FieldErrors) -> list[Record]:
        links: list[Record] = []
        for index, item in enumerate(items):
            ref = item.get("custom_object") or {}
            object_ref = ref.get("id") or ref.get("name") or item.get("custom_object_id")
            custom_object = self.world.custom_object(str(object_ref)) if object_ref else None
            if custom_object is None:
                errors.add(
                    ["associated_entities", index, "custom_object"],
                    f"Object {object_ref!r} does not exist." if object_ref else REQUIRED,
                )
                continue
            entity_ref = item.get("entity") or {}
            entity_id = entity_ref.get("id") or item.get("entity_id")
            entity_name = entity_ref.get("name")
            contact = None
            for candidate in self.world.contacts:
                if candidate.object != custom_object.object_name:
                    continue
                if (entity_id and str(candidate.id) == entity_id) or (not entity_id and entity_name == candidate.email):
                    contact = candidate
            if contact is None:
                what = entity_id or entity_name
                errors.add(
                    ["associated_entities", index, "entity"],
                    f"Object with name={what} does not exist." if what else REQUIRED,
                )
                continue
            links.append({"custom_object_id": str(custom_object.id), "entity_id": str(contact.id)})
        return links

    def _related_objects(self, body: Json, errors: FieldErrors) -> list[Json]:
        related = body.get("related_objects")
        if related is None:
            errors.add(["related_objects"], REQUIRED)
            return []
        if not isinstance(related, list):
            errors.add(["related_objects"], f'Expected a list of items but got type "{type(related).__name__}".')
            return []
        seen: set[str] = set()
        links: list[Json] = []
        for index, item in enumerate(related):
            object_id = item.get("custom_object") if isinstance(item, dict) else None
            entity_id = item.get("entity_id") if isinstance(item, dict) else None
            if not (
                isinstance(object_id, str)
                and _is_uuid(object_id)
                and isinstance(entity_id, str)
                and _is_uuid(entity_id)
            ):
                errors.add(["related_objects", index], "Send custom_object and entity_id, both UUIDs.")
                continue
            if object_id in seen:
                errors.add(["related_objects", index], "Only one record per object can be associated.")
                continue
            seen.add(object_id)
            custom_object = self.world.objects_by_id.get(uuid.UUID(object_id))
            contact = self.world.contacts_by_id.get(uuid.UUID(entity_id))
            if custom_object is None or contact is None or contact.object != custom_object.object_name:
                errors.add(["related_objects", index], f'Invalid pk "{entity_id}" - object does not exist.')
                continue
            links.append({"custom_object": str(custom_object.id), "entity_id": str(contact.id)})
        return links

    def _logged_fields(self, activity_type: ActivityType, values: Any, errors: FieldErrors) -> list[Json]:
        definitions = {str(f.id): f for f in activity_type.fields}
        given: dict[str, Any] = {}
        if not isinstance(values, list):
            errors.add(["fields"], f'Expected a list of items but got type "{type(values).__name__}".')
            values = []
        for index, item in enumerate(values):
            field_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(field_id, str) or field_id not in definitions:
                errors.add(["fields", index], f'Invalid pk "{field_id}" - object does not exist.')
                continue
            given[field_id] = item.get("value")
        for field_id, definition in definitions.items():
            if definition.required and given.get(field_id) in (None, "", []):
                errors.add(["fields"], f"{definition.display_name} is required.")
        return [{"id": k, "value": v} for k, v in given.items()]

    def _scheduled(self, activity_id: str) -> Record:
        record = self.store.scheduled(activity_id) if _is_uuid(activity_id) else None
        if record is None:
            raise not_found()
        return record

    def _scheduled_to_complete(
        self, activity_id: str, activity_type: ActivityType, errors: FieldErrors
    ) -> Record | None:
        record = self.store.scheduled(activity_id) if _is_uuid(activity_id) else None
        if record is None:
            errors.add(["scheduled_activity_id"], f'Invalid pk "{activity_id}" - object does not exist.')
        elif record["activity_object_id"] != str(activity_type.id):
            errors.add(["scheduled_activity_id"], "The scheduled activity is of another activity type.")
        elif record["completed_at"] is not None:
            errors.add(["scheduled_activity_id"], "The scheduled activity is already completed.")
        else:
            return record
        return None

    def _save(self, record: Record) -> None:
        completed = parse_instant(record["completed_at"]) if record["completed_at"] else None
        self.store.put_scheduled(record, due=parse_instant(record["due_datetime"]), completed=completed)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True

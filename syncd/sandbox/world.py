"""The sandbox's business: employees, roles, activity types, custom objects and contacts.

Read from a TOML seed file (``default.toml`` beside this module unless another is named) and
fixed for the sandbox's lifetime; only activities change, and they live in the store.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from syncd.errors import ConfigError


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Business(_Seed):
    id: UUID
    api_key: str = Field(min_length=1)
    api_user: str = Field(description="email of the employee the API key belongs to")
    team_visible: bool = True
    max_body_bytes: int = Field(default=2_621_440, gt=0)


class Employee(_Seed):
    id: UUID
    first_name: str
    last_name: str
    email: str
    picture_url: str = ""
    account_type: str = "user"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Role(_Seed):
    id: UUID
    name: str
    members: tuple[UUID, ...] = ()


class ActivityField(_Seed):
    id: UUID
    name: str
    display_name: str
    field_type: str = "text"
    required: bool = False


class ActivityType(_Seed):
    id: UUID
    name: str
    api_name: str
    association_mode: Literal["any", "none", "required"] = "any"
    calendar_sync_duration: int | None = 30
    enabled: bool = True
    webhook_url: str | None = None
    fields: tuple[ActivityField, ...] = ()


class CustomObject(_Seed):
    id: UUID
    name: str
    object_name: str
    display_name: str


class Contact(_Seed):
    id: UUID
    first_name: str
    last_name: str
    email: str
    object: str = "client_client"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class World(_Seed):
    """Everything a seed file defines, with the look-ups the API needs."""

    business: Business
    employees: tuple[Employee, ...]
    roles: tuple[Role, ...] = ()
    activity_types: tuple[ActivityType, ...]
    custom_objects: tuple[CustomObject, ...] = ()
    contacts: tuple[Contact, ...] = ()

    @model_validator(mode="after")
    def _api_user_exists(self) -> World:
        if self.employee(self.business.api_user) is None:
            raise ValueError(f"business.api_user {self.business.api_user!r} is not an employee's email")
        return self

    @cached_property
    def api_user(self) -> Employee:
        employee = self.employee(self.business.api_user)
        assert employee is not None  # checked on load
        return employee

    @cached_property
    def employees_by_id(self) -> dict[UUID, Employee]:
        return {e.id: e for e in self.employees}

    @cached_property
    def roles_by_id(self) -> dict[UUID, Role]:
        return {r.id: r for r in self.roles}

    @cached_property
    def types_by_id(self) -> dict[UUID, ActivityType]:
        return {t.id: t for t in self.activity_types}

    @cached_property
    def objects_by_id(self) -> dict[UUID, CustomObject]:
        return {o.id: o for o in self.custom_objects}

    @cached_property
    def contacts_by_id(self) -> dict[UUID, Contact]:
        return {c.id: c for c in self.contacts}

    def employee(self, email: str) -> Employee | None:
        """The employee with this email (exact, as Kizen's team look-up)."""
        return next((e for e in self.employees if e.email == email), None)

    def activity_type(self, ref: str) -> ActivityType | None:
        """The activity type whose id or ``api_name`` is ``ref``."""
        for t in self.activity_types:
            if t.api_name == ref or str(t.id) == ref:
                return t
        return None

    def activity_type_named(self, name: str) -> ActivityType | None:
        """The activity type whose display name is ``name`` (what ``activity_object_name`` means)."""
        return next((t for t in self.activity_types if t.name == name), None)

    def custom_object(self, ref: str) -> CustomObject | None:
        """The custom object whose id, name or object name is ``ref``."""
        for o in self.custom_objects:
            if ref in (str(o.id), o.name, o.object_name):
                return o
        return None


def load_world(path: Path | None = None) -> World:
    """Reads a seed file, or the packaged default; a bad file is a ConfigError naming the place."""
    where = str(path) if path else "the sandbox's default seed"
    try:
        if path is None:
            text = resources.files(__package__).joinpath("default.toml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return World.model_validate(tomllib.loads(text))
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not TOML: {exc}"]) from exc
    except ValidationError as exc:
        raise ConfigError(
            [f"{where}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        ) from exc

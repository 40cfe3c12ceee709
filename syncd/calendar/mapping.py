"""Mapping rules: from a calendar occurrence to the fields of a Kizen activity.

Rules live in TOML files (``mappings/*.toml``), are validated on load (a bad rule is reported
with its file, index and field), and are tried in order: the first whose every ``match`` holds
wins, else the ``[default]`` rule. A rule ``set``s the activity type, the assignee, the contacts,
a note template and the notifications, or skips the item. :func:`apply_rules` is pure: the Kizen
look-ups it implies (a type's id, an employee by email, a contact by email) are the engine's.

Choices where DESIGN is silent, for the next engineer:
- The owner's PARTSTAT is their ATTENDEE's; an owner who organizes without being listed, or an
  item without attendees, counts as ``ACCEPTED``; an owner absent from a meeting as ``NONE``.
- A note template line whose every placeholder is empty is left out, so a meeting without a
  location has no ``Location:`` line.
- An alarm's lead maps to the largest unit that divides it exactly, in whole minutes at least.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncd.errors import ConfigError
from syncd.model import Occurrence

DEFAULT_NOTE = "{summary}\n{description}\nLocation: {location}\nJoin: {conference}"
_PLACEHOLDERS = frozenset({"summary", "description", "location", "conference", "url", "organizer", "categories"})


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Strings = Annotated[tuple[str, ...], Field(min_length=1)]


class Match(_Rules):
    """Conditions, all of which must hold; a list means any of its values."""

    source: Strings | None = None
    collection: Strings | None = None
    kind: Literal["VEVENT", "VTODO"] | None = None
    categories: Strings | None = None
    summary: str | None = Field(default=None, description="a regular expression, searched case-insensitively")
    organizer: Strings | None = Field(default=None, description="emails, or domains written @example.com")
    attendee_domains: Strings | None = None
    external_attendees: bool | None = Field(default=None, description="whether any attendee is outside the company")
    classification: Strings | None = Field(default=None, alias="class")
    transparency: Literal["OPAQUE", "TRANSPARENT"] | None = Field(default=None, alias="transp")
    partstat: Strings | None = Field(default=None, description="the owner's participation status")

    @field_validator("summary")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("classification", "partstat", "categories")
    @classmethod
    def _upper(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(v.upper() for v in value) if value is not None else None

    @field_validator("organizer", "attendee_domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return (
            tuple(v.lower().lstrip("@") if "@" not in v.lstrip("@") else v.lower() for v in value) if value else value
        )


class Actions(_Rules):
    """What a matching rule sets. Unset fields fall back to the default rule's."""

    skip: bool = False
    reason: str | None = None
    activity_type: str | None = Field(default=None, min_length=1, description="name or id of a Kizen activity type")
    assignee: str | None = Field(default=None, description='"owner", "organizer", "role:NAME" or an email')
    assignee_map: Mapping[str, str] | None = Field(default=None, description="organizer email -> Kizen user email")
    contacts: Literal["external_attendees", "none"] | None = None
    unknown_contacts: Literal["skip", "fail"] | None = None
    note: str | None = None
    notifications: Literal["alarms", "none"] | None = None
    notification_type: Literal["email", "text"] | None = None

    @field_validator("assignee")
    @classmethod
    def _assignee(cls, value: str | None) -> str | None:
        if value is None or value in ("owner", "organizer") or value.startswith("role:") or "@" in value:
            return value
        raise ValueError('use "owner", "organizer", "role:NAME" or an employee\'s email')

    @field_validator("note")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = {name for _, name, _, _ in string.Formatter().parse(value) if name} - _PLACEHOLDERS
            if unknown:
                raise ValueError(f"unknown placeholders {sorted(unknown)}; use {sorted(_PLACEHOLDERS)}")
        return value


class Rule(_Rules):
    name: str | None = None
    match: Match = Match()
    set: Actions


class DefaultRule(Actions):
    activity_type: str = Field(min_length=1)

    @model_validator(mode="after")
    def _not_skip(self) -> DefaultRule:
        if self.skip:
            raise ValueError("the default rule cannot skip: give a rule that matches what to skip")
        return self


class RuleFile(_Rules):
    rule: tuple[Rule, ...] = ()
    default: DefaultRule | None = None


@dataclass(frozen=True)
class RuleSet:
    """The rules of every mapping file, in order, and the one default rule."""

    rules: tuple[tuple[str, Rule], ...]
    default: DefaultRule


@dataclass(frozen=True)
class Context:
    """What a rule needs to know beyond the occurrence: whose calendar, and who is a colleague."""

    owner: str
    internal_domains: frozenset[str]
    collection: str = ""


@dataclass(frozen=True)
class Notification:
    type: Literal["email", "text"]
    time_amount: int
    time_unit: Literal["minute", "hour", "day"]


@dataclass(frozen=True)
class Assignee:
    """Who the activity goes to: ``owner``, an employee's ``email``, or a ``role`` by name or id."""

    kind: Literal["owner", "email", "role"]
    value: str = ""


@dataclass(frozen=True)
class Mapped:
    """The activity an occurrence maps to, before the engine's Kizen look-ups."""

    rule: str
    activity_type: str
    assignee: Assignee
    contact_emails: tuple[str, ...]
    unknown_contacts: Literal["skip", "fail"]
    note: str
    notifications: tuple[Notification, ...]


@dataclass(frozen=True)
class Skip:
    rule: str
    reason: str


def load_rules(paths: Sequence[Path]) -> RuleSet:
    """Reads and validates mapping files; every problem in every file is reported at once."""
    problems: list[str] = []
    rules: list[tuple[str, Rule]] = []
    defaults: list[tuple[Path, DefaultRule]] = []
    for path in paths:
        try:
            parsed = RuleFile.model_validate(tomllib.loads(path.read_text("utf-8")))
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror}")
            continue
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not TOML: {exc}")
            continue
        except ValidationError as exc:
            problems += [f"{path}: {_place(e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        rules += [(f"{path.name}: {rule.name or f'rule[{index}]'}", rule) for index, rule in enumerate(parsed.rule)]
        if parsed.default is not None:
            defaults.append((path, parsed.default))
    if not defaults and not problems:
        problems.append("no [default] rule in " + ", ".join(str(p) for p in paths))
    if len(defaults) > 1:
        problems.append("more than one [default] rule: " + ", ".join(str(p) for p, _ in defaults))
    if problems:
        raise ConfigError(problems)
    return RuleSet(tuple(rules), defaults[0][1])


def _place(location: Iterable[Any]) -> str:
    """``("rule", 2, "match", "summary")`` as ``rule[2].match.summary``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def apply_rules(occurrence: Occurrence, rules: RuleSet, context: Context) -> Mapped | Skip:
    """The first matching rule's activity for ``occurrence``, or why it is skipped."""
    name, chosen = next(
        ((n, r.set) for n, r in rules.rules if _matches(r.match, occurrence, context)), ("default", None)
    )
    if chosen is not None and chosen.skip:
        return Skip(name, chosen.reason or f"skipped by {name}")
    default = rules.default

    def pick(field: str) -> Any:
        value = getattr(chosen, field) if chosen is not None else None
        return value if value is not None else getattr(default, field)

    return Mapped(
        rule=name,
        activity_type=pick("activity_type"),
        assignee=_assignee(pick("assignee") or "owner", pick("assignee_map") or {}, occurrence),
        contact_emails=_contacts(occurrence, context) if (pick("contacts") or "external_attendees") != "none" else (),
        unknown_contacts=pick("unknown_contacts") or "skip",
        note=render_note(pick("note") or DEFAULT_NOTE, occurrence),
        notifications=_notifications(occurrence, pick("notification_type") or "email")
        if (pick("notifications") or "alarms") == "alarms"
        else (),
    )


def _matches(match: Match, o: Occurrence, context: Context) -> bool:
    """Whether every condition of ``match`` holds, the cheap ones first; a rule stops looking at
    its first condition that fails (mapping runs for every occurrence of every cycle)."""
    return (
        (match.source is None or o.location.source in match.source)
        and (match.kind is None or o.kind == match.kind)
        and (match.transparency is None or o.transparency == match.transparency)
        and (match.classification is None or o.classification in match.classification)
        and (match.collection is None or bool({o.location.collection, context.collection} & set(match.collection)))
        and (match.categories is None or bool({c.upper() for c in o.categories} & set(match.categories)))
        and (match.organizer is None or _email_in(o.organizer, match.organizer))
        and (match.attendee_domains is None or any(_domain(a.email) in match.attendee_domains for a in o.attendees))
        and (match.external_attendees is None or bool(_contacts(o, context)) == match.external_attendees)
        and (match.partstat is None or owner_partstat(o, context.owner) in match.partstat)
        and (match.summary is None or re.search(match.summary, o.summary, re.IGNORECASE) is not None)
    )


def owner_partstat(o: Occurrence, owner: str) -> str:
    """The owner's participation status (see the module's notes)."""
    for attendee in o.attendees:
        if attendee.email.lower() == owner.lower():
            return attendee.partstat
    if not o.attendees or o.organizer.lower() == owner.lower():
        return "ACCEPTED"
    return "NONE"


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _email_in(email: str, wanted: tuple[str, ...]) -> bool:
    return email.lower() in wanted or _domain(email) in wanted


def _contacts(o: Occurrence, context: Context) -> tuple[str, ...]:
    """Attendee emails outside the company's domains, the organizer's too, as written, once each."""
    people = [a.email for a in o.attendees]
    if o.organizer:
        people.append(o.organizer)
    seen: dict[str, str] = {}
    for email in people:
        if "@" in email and _domain(email) not in context.internal_domains and email.lower() != context.owner.lower():
            seen.setdefault(email.lower(), email)
    return tuple(seen.values())


def _assignee(setting: str, organizer_map: Mapping[str, str], o: Occurrence) -> Assignee:
    if setting == "owner":
        return Assignee("owner")
    if setting.startswith("role:"):
        return Assignee("role", setting[5:])
    if setting == "organizer":
        if not o.organizer:
            return Assignee("owner")
        mapped = {k.lower(): v for k, v in organizer_map.items()}.get(o.organizer.lower())
        return Assignee("email", mapped or o.organizer)
    return Assignee("email", setting)


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render_note(template: str, o: Occurrence) -> str:
    """Fills the template; a line whose every placeholder is empty is left out."""
    values = _Blank(
        summary=o.summary.strip(),
        description=o.description.strip(),
        location=o.place.strip(),
        conference=o.conference,
        url=o.url,
        organizer=o.organizer,
        categories=", ".join(o.categories),
    )
    lines = []
    for line, names in _template(template):
        if names and not any(values[name] for name in names):
            continue
        lines.append(line.format_map(values))
    return "\n".join(lines).strip()


@functools.lru_cache(maxsize=64)
def _template(template: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A note template's lines, each with the placeholders it names (parsed once, not per item)."""
    parsed = string.Formatter().parse
    return tuple((line, tuple(name for _, name, _, _ in parsed(line) if name)) for line in template.splitlines())


def _notifications(o: Occurrence, kind: Literal["email", "text"]) -> tuple[Notification, ...]:
    found: dict[tuple[int, str], Notification] = {}
    for lead in o.alarms:
        minutes = max(1, round(lead / timedelta(minutes=1)))
        amount, unit = (
            (minutes // 1440, "day")
            if minutes % 1440 == 0
            else (minutes // 60, "hour")
            if minutes % 60 == 0
            else (minutes, "minute")
        )
        found.setdefault((amount, unit), Notification(kind, amount, unit))  # type: ignore[arg-type]
    return tuple(sorted(found.values(), key=lambda n: (n.time_unit, n.time_amount)))

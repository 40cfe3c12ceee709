"""Mapping rules: loading and validation, matching, and the fields they set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.calendar.mapping import Assignee, Context, Mapped, Notification, Skip, apply_rules, load_rules, render_note
from syncd.errors import ConfigError
from syncd.model import Attendee, Location, Occurrence, OccurrenceId

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = Context(owner="ada@example.com", internal_domains=frozenset({"example.com"}), collection="Work")


def occurrence(**fields: Any) -> Occurrence:
    base: dict[str, Any] = {
        "id": OccurrenceId("uid-1"),
        "location": Location("ada-caldav", "https://dav.example.com/ada/desk/", "1.ics"),
        "kind": "VEVENT",
        "due": datetime(2026, 7, 10, 9, tzinfo=UTC),
        "summary": "Quarterly review",
        "organizer": "ada@example.com",
        "attendees": (Attendee("ada@example.com", "ACCEPTED"), Attendee("Charles@Customer.example", "ACCEPTED")),
    }
    return Occurrence(**{**base, **fields})


def rules_from(tmp_path: Path, text: str, name: str = "rules.toml") -> Any:
    path = tmp_path / name
    path.write_text(text)
    return load_rules([path])


DEFAULT = '[default]\nactivity_type = "Meeting"\n'


@pytest.mark.parametrize("name", ["default.toml", "sales-team.toml"])
def test_the_shipped_mappings_load(name: str) -> None:
    rules = load_rules([ROOT / "mappings" / name])
    assert rules.default.activity_type == "Meeting" and rules.rules


def test_the_default_mapping_makes_a_meeting_with_customer_contacts() -> None:
    rules = load_rules([ROOT / "mappings" / "default.toml"])
    mapped = apply_rules(occurrence(place="Room 1", alarms=(timedelta(minutes=15),)), rules, CONTEXT)
    assert mapped == Mapped(
        rule="default",
        activity_type="Meeting",
        assignee=Assignee("owner"),
        contact_emails=("Charles@Customer.example",),
        unknown_contacts="skip",
        note="Quarterly review\nLocation: Room 1",
        notifications=(Notification("email", 15, "minute"),),
    )
    declined = occurrence(attendees=(Attendee("ada@example.com", "DECLINED"),), organizer="boss@example.com")
    assert isinstance(apply_rules(declined, rules, CONTEXT), Skip)
    todo = apply_rules(occurrence(kind="VTODO", attendees=(), organizer=""), rules, CONTEXT)
    assert isinstance(todo, Mapped) and todo.activity_type == "Follow-up"


def test_the_first_matching_rule_wins_and_unset_fields_come_from_the_default(tmp_path: Path) -> None:
    rules = rules_from(
        tmp_path,
        '[[rule]]\nname = "calls"\nmatch = { summary = "call" }\nset = { activity_type = "Call" }\n'
        '[[rule]]\nname = "reviews"\nmatch = { summary = "review|call" }\nset = { activity_type = "Review", notification_type = "text" }\n'
        + DEFAULT
        + 'notification_type = "email"\n',
    )
    call = apply_rules(occurrence(summary="Intro CALL", alarms=(timedelta(hours=1),)), rules, CONTEXT)
    assert isinstance(call, Mapped) and (call.rule, call.activity_type) == ("rules.toml: calls", "Call")
    assert call.notifications == (Notification("email", 1, "hour"),)
    review = apply_rules(occurrence(alarms=(timedelta(days=1),)), rules, CONTEXT)
    assert isinstance(review, Mapped) and review.activity_type == "Review"
    assert review.notifications == (Notification("text", 1, "day"),)
    other = apply_rules(occurrence(summary="Lunch"), rules, CONTEXT)
    assert isinstance(other, Mapped) and (other.rule, other.activity_type) == ("default", "Meeting")


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ('source = ["ada-caldav"]', {}, {"location": Location("other", "x", "y")}),
        ('collection = ["Work"]', {}, {}),
        ('kind = "VTODO"', {"kind": "VTODO"}, {}),
        ('categories = ["sales"]', {"categories": ("Sales", "Q3")}, {"categories": ("Personal",)}),
        ('summary = "^quarterly"', {}, {"summary": "The quarterly review"}),
        ('organizer = ["@customer.example"]', {"organizer": "Boss@Customer.example"}, {}),
        ('organizer = ["ada@example.com"]', {}, {"organizer": "grace@example.com"}),
        ('attendee_domains = ["customer.example"]', {}, {"attendees": (Attendee("grace@example.com"),)}),
        ("external_attendees = true", {}, {"attendees": (Attendee("grace@example.com"),)}),
        ('class = ["private"]', {"classification": "PRIVATE"}, {}),
        ('transp = "TRANSPARENT"', {"transparency": "TRANSPARENT"}, {}),
        ('partstat = ["TENTATIVE"]', {"attendees": (Attendee("ADA@example.com", "TENTATIVE"),)}, {}),
        ('partstat = ["NONE"]', {"organizer": "boss@example.com", "attendees": (Attendee("x@customer.example"),)}, {}),
    ],
)
def test_each_condition_matches_what_it_names(
    tmp_path: Path, match: str, hit: dict[str, Any], miss: dict[str, Any]
) -> None:
    rules = rules_from(
        tmp_path, f'[[rule]]\nmatch = {{ {match} }}\nset = {{ skip = true, reason = "matched" }}\n' + DEFAULT
    )
    assert apply_rules(occurrence(**hit), rules, CONTEXT) == Skip("rules.toml: rule[0]", "matched")
    miss_context = (
        Context(CONTEXT.owner, CONTEXT.internal_domains, collection="Home") if "collection" in match else CONTEXT
    )
    assert isinstance(apply_rules(occurrence(**miss), rules, miss_context), Mapped)


@pytest.mark.parametrize(
    ("setting", "extra", "expected"),
    [
        ('"owner"', "", Assignee("owner")),
        ('"role:Account Executives"', "", Assignee("role", "Account Executives")),
        ('"grace@example.com"', "", Assignee("email", "grace@example.com")),
        ('"organizer"', "", Assignee("email", "boss@example.com")),
        (
            '"organizer"',
            'assignee_map = { "BOSS@example.com" = "boss.kizen@example.com" }\n',
            Assignee("email", "boss.kizen@example.com"),
        ),
    ],
)
def test_assignees(tmp_path: Path, setting: str, extra: str, expected: Assignee) -> None:
    rules = rules_from(tmp_path, DEFAULT + f"assignee = {setting}\n" + extra)
    mapped = apply_rules(occurrence(organizer="boss@example.com"), rules, CONTEXT)
    assert isinstance(mapped, Mapped) and mapped.assignee == expected


def test_contacts_are_external_attendees_once_each_or_none(tmp_path: Path) -> None:
    people = (
        Attendee("ada@example.com"),
        Attendee("grace@EXAMPLE.com"),
        Attendee("Charles@Customer.example"),
        Attendee("charles@customer.example"),
        Attendee("mary@other.example"),
    )
    rules = rules_from(tmp_path, DEFAULT)
    mapped = apply_rules(occurrence(attendees=people, organizer="boss@partner.example"), rules, CONTEXT)
    assert isinstance(mapped, Mapped)
    assert mapped.contact_emails == ("Charles@Customer.example", "mary@other.example", "boss@partner.example")
    none = apply_rules(occurrence(attendees=people), rules_from(tmp_path, DEFAULT + 'contacts = "none"\n'), CONTEXT)
    assert isinstance(none, Mapped) and none.contact_emails == ()


def test_a_note_template_drops_lines_whose_fields_are_empty() -> None:
    template = "{summary}\n{description}\nLocation: {location}\nJoin: {conference}\nTags: {categories}"
    full = occurrence(description="Agenda", place="Room 1", conference="https://zoom.us/j/1", categories=("A", "B"))
    assert (
        render_note(template, full)
        == "Quarterly review\nAgenda\nLocation: Room 1\nJoin: https://zoom.us/j/1\nTags: A, B"
    )
    assert render_note(template, occurrence()) == "Quarterly review"


@pytest.mark.parametrize(
    ("lead", "notification"),
    [
        (timedelta(minutes=15), Notification("email", 15, "minute")),
        (timedelta(minutes=90), Notification("email", 90, "minute")),
        (timedelta(hours=2), Notification("email", 2, "hour")),
        (timedelta(days=2), Notification("email", 2, "day")),
        (timedelta(seconds=20), Notification("email", 1, "minute")),
    ],
)
def test_alarms_map_to_the_largest_exact_unit(tmp_path: Path, lead: timedelta, notification: Notification) -> None:
    mapped = apply_rules(occurrence(alarms=(lead, lead)), rules_from(tmp_path, DEFAULT), CONTEXT)
    assert isinstance(mapped, Mapped) and mapped.notifications == (notification,)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[[rule]]\nmatch = { summary = "(" }\nset = { skip = true }\n' + DEFAULT,
            "rules.toml: rule[0].match.summary: Value error, not a regular expression",
        ),
        (
            '[[rule]]\nmatch = { colour = "red" }\nset = { skip = true }\n' + DEFAULT,
            "rules.toml: rule[0].match.colour: Extra inputs are not permitted",
        ),
        ('[[rule]]\nset = { assignee = "the boss" }\n' + DEFAULT, "rules.toml: rule[0].set.assignee: Value error, use"),
        (
            '[[rule]]\nset = { note = "{agenda}" }\n' + DEFAULT,
            "rules.toml: rule[0].set.note: Value error, unknown placeholders ['agenda']",
        ),
        ('[[rule]]\nset = { contacts = "everyone" }\n' + DEFAULT, "rules.toml: rule[0].set.contacts: Input should be"),
        ('[[rule]]\nmatch = { kind = "VEVENT" }\n' + DEFAULT, "rules.toml: rule[0].set: Field required"),
        (
            '[default]\nskip = true\nactivity_type = "Meeting"\n',
            "rules.toml: default: Value error, the default rule cannot skip",
        ),
        ("[[rule]]\nset = { skip = true }\n", "no [default] rule"),
        ("rule = [", "rules.toml: not TOML"),
    ],
)
def test_a_bad_rule_is_reported_with_its_file_index_and_field(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        rules_from(tmp_path, text)
    expected = problem if problem.startswith("no ") else str(tmp_path / problem)
    assert any(p.startswith(expected) for p in error.value.problems), error.value.problems


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[[rule]]\nmatch = { summary = "(" }\nset = { skip = true }\n' + DEFAULT)
    (tmp_path / "b.toml").write_text(DEFAULT + 'contacts = "all"\n')
    with pytest.raises(ConfigError) as error:
        load_rules([tmp_path / "a.toml", tmp_path / "b.toml"])
    assert len(error.value.problems) == 2
    (tmp_path / "b.toml").write_text(DEFAULT)
    (tmp_path / "c.toml").write_text(DEFAULT)
    with pytest.raises(ConfigError, match="more than one"):
        load_rules([tmp_path / "b.toml", tmp_path / "c.toml"])

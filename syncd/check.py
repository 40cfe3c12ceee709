"""``syncd check``: is this configuration ready to sync? Each finding says plainly what is wrong.

It validates the mappings, reaches Kizen (credentials, the team listing, the activity types the
rules name, the sources' owners) and every source (credentials, collections, the feed itself),
and changes nothing anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from syncd.activities import ActivitiesClient
from syncd.config import CalDAVSourceConfig, Config, SourceConfig
from syncd.connectors.caldav import CalDAVSource
from syncd.connectors.ics import IcsSource
from syncd.errors import ConfigError, KizenAuthFailed, KizenError, SourceError
from syncd.mapping import load_rules
from syncd.model import Cursor


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def check(config: Config, kizen: ActivitiesClient) -> list[Finding]:
    """Every finding, the good ones too, in the order a person would fix them."""
    findings: list[Finding] = []
    type_names: set[str] = set()
    try:
        rules = load_rules(list(config.sync.mappings))
        type_names = {rules.default.activity_type} | {
            r.set.activity_type for _, r in rules.rules if r.set.activity_type
        }
        findings.append(Finding(True, f"mappings: {len(rules.rules)} rule(s) and a default, all valid"))
    except ConfigError as error:
        findings += [Finding(False, f"mappings: {problem}") for problem in error.problems]
    findings += _kizen(config, kizen, type_names)
    for source in config.sources:
        findings.append(_source(source))
    return findings


def _kizen(config: Config, kizen: ActivitiesClient, type_names: set[str]) -> list[Finding]:
    try:
        team = kizen.team()
        types = list(kizen.activity_types())
    except KizenAuthFailed:
        return [Finding(False, "Kizen refused the credentials: check the API key, business id and user id")]
    except KizenError as error:
        return [Finding(False, f"Kizen cannot be reached: {error}")]
    found = [Finding(True, f"Kizen: reached; {len(team)} team member(s), {len(types)} activity type(s)")]
    emails = {person.email.lower() for person in team}
    owners = {source.owner.lower() for source in config.sources}
    if len(team) == 1 and owners - emails:
        found.append(
            Finding(False, "Kizen lists only the API user as the team: the key lacks the all-team-members permission")
        )
    else:
        found += [
            Finding(False, f"{owner} is not a Kizen employee the API user can see") for owner in sorted(owners - emails)
        ]
    known = {t.name.lower() for t in types} | {t.api_name.lower() for t in types} | {str(t.id) for t in types}
    found += [
        Finding(False, f"the activity type {name!r} (in the mappings) does not exist in Kizen")
        for name in sorted(type_names)
        if name.lower() not in known
    ]
    return found


def _source(source: SourceConfig) -> Finding:
    try:
        if isinstance(source, CalDAVSourceConfig):
            password = source.password()
            with CalDAVSource(
                source.name, source.url, username=source.username, password=password, collections=source.collections
            ) as caldav:
                collections = caldav.discover()
            names = ", ".join(c.name or c.url for c in collections)
            return Finding(True, f"source {source.name}: {len(collections)} calendar(s): {names}")
        with httpx.Client(timeout=30.0) as http:
            changes = IcsSource(source.name, source.url, http=http, max_bytes=source.max_bytes).changes(Cursor())
        return Finding(True, f"source {source.name}: a feed of {len(changes.changed)} item(s)")
    except (SourceError, ConfigError) as error:
        return Finding(False, str(error))

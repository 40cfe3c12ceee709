"""``syncd check``: is this configuration ready to sync? Each finding says plainly what is wrong.

It validates the mappings, reaches Kizen (credentials, the team listing, the activity types the
rules name, the sources' owners) and every source (credentials, collections, the feed itself),
compares each source's calendars with those the state store remembers (what the next sync will
add, stop reading or find anew), and changes nothing anywhere. A problem in the configuration
itself (a bad mapping, an unset secret, the daemon's too) is marked ``config``: the command then
exits 2, as ``run`` does for the same problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from syncd.calendar.connectors import connect
from syncd.calendar.mapping import load_rules
from syncd.calendar.reading import settings_of
from syncd.config import CalDAVSourceConfig, Config, SourceConfig
from syncd.errors import ConfigError, KizenAuthFailed, KizenError, SourceError, StateError
from syncd.kizen import ActivitiesClient
from syncd.model import Cursor
from syncd.state import Store, is_url, open_store
from syncd.wiring import feed_client


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    change: bool = False  # not a problem: what the next sync will do differently (a config edit)
    config: bool = False  # a problem in the configuration or a mapping: `run` would not start (exit 2)


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
        findings += [Finding(False, f"mappings: {problem}", config=True) for problem in error.problems]
    findings += _secrets(config)
    findings += _kizen(config, kizen, type_names)
    state = None
    if is_url(config.sync.state) or Path(config.sync.state).exists():
        try:
            state = open_store(config.sync.state, read_only=True)
        except StateError as error:
            findings.append(Finding(False, f"{error}: what the next sync changes is not compared"))
    try:
        for source in config.sources:
            finding, listed = _source(source)
            findings.append(finding)
            if state is not None and listed is not None:
                findings += _changes(source, listed, state)
    finally:
        if state is not None:
            state.close()
    return findings


def _secrets(config: Config) -> list[Finding]:
    """The daemon's secrets (feed tokens, the webhook's, the status page's): unset, `syncd run` would not start."""
    found = []
    for read in (config.feed_tokens, config.daemon.webhook_secret, config.status_secret):
        try:
            read()
        except ConfigError as error:
            found += [Finding(False, problem, config=True) for problem in error.problems]
    return found


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


def _source(source: SourceConfig) -> tuple[Finding, dict[str, str] | None]:
    """The source's finding, and the collections it would read now (URL -> name) if it can be read."""
    try:
        with feed_client() as http:
            connector = connect(source, http)
            try:
                collections = connector.discover()
                if connector.read_only:
                    changes = connector.changes(collections[0].url, Cursor(), {})
                    return Finding(True, f"source {source.name}: a feed of {len(changes.changed)} item(s)"), {
                        source.url: ""
                    }
            finally:
                connector.close()
        names = ", ".join(c.name or c.url for c in collections)
        listed = {c.url: c.name or c.url for c in collections}
        return Finding(True, f"source {source.name}: {len(collections)} calendar(s): {names}"), listed
    except ConfigError as error:  # an unset secret: `run` stops on it before it starts
        return Finding(False, "; ".join(error.problems), config=True), None
    except SourceError as error:
        return Finding(False, str(error)), None


def _changes(source: SourceConfig, listed: dict[str, str], state: Store) -> list[Finding]:
    """What the next sync of a source does differently from the last, as the state remembers it.

    A feed's URL is never shown (it often carries a secret token).
    """
    remembered = state.discovery(source.name)
    before = remembered.collections if remembered is not None else state.collections(source.name)
    if not before:
        return []  # never read: everything is new
    name, feed = source.name, not isinstance(source, CalDAVSourceConfig)
    edited = remembered is None or remembered.settings != settings_of(source)
    found = []
    paired = [p for p in state.pairings(open_only=True) if p.locations]

    def count(url: str) -> int:
        return sum(1 for p in paired if any(loc.source == name and loc.collection == url for loc in p.locations))

    def activities(url: str) -> str:
        return f"{count(url)} {'activity stays' if count(url) == 1 else 'activities stay'} in Kizen"

    if feed:
        return [
            Finding(
                True,
                f"source {name}: url changed: the new feed is read in full; items it shares with the old one keep "
                f"their activities, and none of the old feed's {count(url)} open activities is deleted",
                change=True,
            )
            for url in sorted(before.keys() - listed.keys())
        ]
    if remembered is not None and edited and json.loads(remembered.settings)["url"] != source.url:
        found.append(f"source {name}: url changed: collections will be re-discovered")
    later = "" if edited else " at the next reconciliation"
    added, dropped = listed.keys() - before.keys(), before.keys() - listed.keys()
    moved = {old: new for new in added for old in dropped if _path(new) == _path(old)}
    for url in sorted(added - set(moved.values())):
        found.append(f"source {name}: collection {listed[url]} will be added{later}")
    for url, new in sorted(moved.items()):
        found.append(f"source {name}: collection {url} will be read at {new}: its activities are re-paired by UID")
    for url in sorted(dropped - moved.keys()):
        if edited:
            found.append(f"source {name}: collection {url} is no longer configured: its {activities(url)}")
        else:
            found.append(f"source {name}: collection {url} is gone from the server{later}; its {activities(url)}")
    return [Finding(True, text, change=True) for text in found]


def _path(url: str) -> str:
    return urlsplit(url).path.rstrip("/")

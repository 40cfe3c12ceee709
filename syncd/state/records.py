"""The protocol's records from their rows: both stores keep the same columns, and times as ISO text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from syncd.model import Location, OccurrenceId, Policy
from syncd.state.protocol import ComponentStatus, Conflict, Failure, JournalEntry, Pairing, RenderedFeed


def stamp_now() -> datetime:
    return datetime.now(UTC)


def iso_text(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def location_of(value: dict[str, str] | None) -> Location | None:
    return Location(**value) if value else None


def pairing_row(pairing: Pairing) -> dict[str, Any]:
    """A pairing's row (its copies' locations are rows of their own). ``lead_source`` repeats the
    lead's source as an indexed column: a team's cycle asks for what its sources lead."""
    return {
        "uid": pairing.id.uid,
        "slot": pairing.id.slot,
        "activity_id": pairing.activity_id,
        "activity_type_id": pairing.activity_type_id,
        "original_due": iso_text(pairing.original_due),
        "due": iso_text(pairing.due),
        "created_by_syncd": int(pairing.created_by_syncd),
        "lead": json.dumps(asdict(pairing.lead)) if pairing.lead else None,
        "lead_source": pairing.lead_source,
        "calendar_seen": json.dumps(pairing.calendar_seen, sort_keys=True),
        "kizen_seen": json.dumps(pairing.kizen_seen, sort_keys=True),
        "hands_off": json.dumps(list(pairing.hands_off)),
        "settled": pairing.settled,
        "settled_reason": pairing.settled_reason,
        "logged_activity_id": pairing.logged_activity_id,
        "written_back": int(pairing.written_back),
        "changes": pairing.changes,
        "changed_at": iso_text(pairing.changed_at),
    }


def journal_entry_of(row: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        kind=row["kind"],
        id_=OccurrenceId(row["uid"], row["slot"]),
        activity_id=row["activity_id"],
        payload=json.loads(row["payload"]),
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def conflict_of(row: Mapping[str, Any]) -> Conflict:
    return Conflict(
        id=row["id"],
        occurrence=OccurrenceId(row["uid"], row["slot"]),
        activity_id=row["activity_id"],
        field=row["field"],
        calendar_value=row["calendar_value"],
        kizen_value=row["kizen_value"],
        policy=Policy(row["policy"]),
        status=row["status"],
        keep=Policy(row["keep"]) if row["keep"] else None,
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def failure_of(row: Mapping[str, Any]) -> Failure:
    return Failure(
        source=row["source"],
        uid=row["uid"],
        slot=row["slot"],
        kind=row["kind"],
        reason=row["reason"],
        first_seen=datetime.fromisoformat(row["first_seen"]),
        last_seen=datetime.fromisoformat(row["last_seen"]),
    )


def component_of(row: Mapping[str, Any]) -> ComponentStatus:
    return ComponentStatus(instant(row["last_success"]), row["last_error"], instant(row["failed_at"]))


def feed_row(name: str, feed: RenderedFeed) -> dict[str, Any]:
    return {"name": name, "body": feed.body, "etag": feed.etag, "changed_at": iso_text(feed.last_modified)}


def feed_of(row: Mapping[str, Any]) -> RenderedFeed:
    return RenderedFeed(bytes(row["body"]), row["etag"], datetime.fromisoformat(row["changed_at"]))


LAST_SUCCESSES = "SELECT source, MAX(finished_at) AS finished_at FROM runs WHERE status = 'ok' GROUP BY source"


def successes_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    return {row["source"]: datetime.fromisoformat(row["finished_at"]) for row in rows if row["finished_at"]}

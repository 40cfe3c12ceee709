"""What must hold after any fault once the runs have converged, checked from the data alone.

The checker reads the sandbox's SQLite file (Kizen's side), the state file and, for CalDAV, the
calendar's items as fetched; it never asks syncd. Every breach is a line naming the item:

- **duplicates**: two activities carry one provenance line (the note's last line, ``syncd:
  <source>/<digest>``), or one (UID, slot) has two activities (across sources, or an imported
  item that was also created from its calendar copy);
- **lost**: an in-window occurrence without exactly one activity due at the calendar's time; an
  activity whose calendar item was deleted still open; an activity made in Kizen never imported;
  a calendar item that disagrees with Kizen's time, or misses the write-back of its logged
  activity; or what a scenario adds (another client's edit, say);
- **touched**: a logged activity (and its scheduled one) changed in any field;
- **disagreements**: the state contradicts Kizen (a pairing to a missing activity, or due at
  another time, or an expected item paired with another activity) or holds unsettled intents;
- **stale failures** (kept apart, reported as their own count): items still listed as failed
  although they are in step.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar

from syncd.identifiers import imported_uid, provenance
from syncd.model import OccurrenceId

Record = dict[str, Any]


@dataclass(frozen=True)
class Expect:
    """What the converged runs must show.

    ``occurrences``: (source, identity) -> due, every in-window occurrence of the calendars as
    the scenario made them (Kizen's moves included). ``imported``: activities made in Kizen that
    the source ``importer`` must hold, id -> due. ``logged``: occurrences logged in Kizen whose
    calendar item must carry the write-back. ``window``: open activities of a checked source due
    in it must be expected, else a deletion was lost.
    """

    occurrences: Mapping[tuple[str, OccurrenceId], datetime]
    imported: Mapping[str, datetime] = field(default_factory=dict)
    logged: frozenset[tuple[str, OccurrenceId]] = frozenset()
    importer: str | None = None
    window: tuple[datetime, datetime] | None = None


@dataclass
class Verdict:
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    stale_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The four promises: no duplicate, nothing lost, no logged activity touched, state in step."""
        return not (self.duplicates or self.lost or self.touched or self.disagreements)

    def counts(self) -> dict[str, int]:
        return {
            "duplicates": len(self.duplicates),
            "lost": len(self.lost),
            "touched": len(self.touched),
            "disagreements": len(self.disagreements),
            "stale_failures": len(self.stale_failures),
        }

    def describe(self, limit: int = 8) -> str:
        """The breaches, a few of each kind, for an assertion message."""
        lines = [f"{self.counts()}"]
        for kind in ("duplicates", "lost", "touched", "disagreements", "stale_failures"):
            found: list[str] = getattr(self, kind)
            lines += [f"  {kind}: {line}" for line in found[:limit]]
            if len(found) > limit:
                lines.append(f"  {kind}: ... {len(found) - limit} more")
        return "\n".join(lines)


def rows(path: Path | str, query: str) -> list[tuple[Any, ...]]:
    """A query's rows from a SQLite file, or from a state's PostgreSQL database (its URL)."""
    if str(path).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(path)) as conn:
            return [tuple(row) for row in conn.execute(query.encode()).fetchall()]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def count_rows(path: Path, table: str) -> int:
    """How many rows a table of a SQLite file holds now (0 while the file is not there)."""
    if not path.exists():
        return 0
    try:
        return int(rows(path, f"SELECT COUNT(*) FROM {table}")[0][0])
    except sqlite3.OperationalError:  # not made yet
        return 0


def kizen_records(path: Path) -> tuple[dict[str, Record], dict[str, Record]]:
    """Every scheduled and logged activity in the sandbox's file, by id, as stored."""
    scheduled = {r["id"]: r for r in (json.loads(d) for (d,) in rows(path, "SELECT data FROM scheduled"))}
    logged = {r["id"]: r for r in (json.loads(d) for (d,) in rows(path, "SELECT data FROM logged"))}
    return scheduled, logged


def logged_snapshot(path: Path) -> dict[str, Record]:
    """The logged activities and the completed scheduled ones, whole: nothing may change them."""
    scheduled, logged = kizen_records(path)
    done = {f"scheduled {i}": r for i, r in scheduled.items() if r["completed_at"] is not None}
    return done | {f"logged {i}": r for i, r in logged.items()}


def provenance_of(note: str) -> str:
    last = note.rstrip().rsplit("\n", 1)[-1].strip()
    return last if last.startswith("syncd:") else ""


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _name(identity: OccurrenceId) -> str:
    return f"{identity.uid} {identity.slot or '-'}"


def check(
    kizen: Path,
    state: Path | str,
    expect: Expect,
    logged_before: Mapping[str, Record],
    *,
    calendar: Iterable[icalendar.cal.Component] | None = None,
) -> Verdict:
    """Checks every invariant; ``calendar`` is the importing/written-back collection's items, if any."""
    verdict = Verdict()
    scheduled, logged = kizen_records(kizen)
    pairings = [_pairing(row) for row in rows(state, _PAIRINGS)]
    by_line: dict[str, list[str]] = defaultdict(list)
    for activity_id, record in scheduled.items():
        if line := provenance_of(record["note"]):
            by_line[line].append(activity_id)
    for line, ids in sorted(by_line.items()):
        if len(ids) > 1:
            verdict.duplicates.append(f"{len(ids)} activities carry {line!r}: {', '.join(sorted(ids))}")

    # (UID, slot) -> the activities standing for it, whichever source's line they carry
    sources: dict[OccurrenceId, set[str]] = defaultdict(set)
    for source, identity in expect.occurrences:
        sources[identity].add(source)
    for pairing in pairings:
        if pairing["source"]:
            sources[pairing["id"]].add(pairing["source"])
    if expect.importer:
        for activity_id in expect.imported:
            sources[OccurrenceId(imported_uid(activity_id))].add(expect.importer)
    made_in_kizen = {p["id"]: p["activity_id"] for p in pairings if not p["created_by_syncd"]}
    imported = {imported_uid(i): i for i in expect.imported}
    for identity, names in sorted(sources.items(), key=lambda kv: (kv[0].uid, kv[0].slot)):
        groups = [set(by_line.get(provenance(source, identity), ())) for source in sorted(names)]
        standing: set[str] = set().union(*groups)
        if identity in made_in_kizen:
            standing.add(made_in_kizen[identity])
        if identity.uid in imported:  # the activity made in Kizen is this item's, paired or not
            standing.add(imported[identity.uid])
        if len(standing) > 1 and all(len(g) < len(standing) for g in groups):  # else told above
            listed = ", ".join(sorted(standing))
            verdict.duplicates.append(f"{_name(identity)} has {len(standing)} activities: {listed}")

    _lost(verdict, expect, scheduled, by_line, pairings)
    _touched(verdict, logged_before, scheduled, logged)
    _state(verdict, expect, scheduled, by_line, pairings, state)
    if calendar is not None:
        _calendar(verdict, expect, list(calendar))
    return verdict


def _lost(
    verdict: Verdict,
    expect: Expect,
    scheduled: Mapping[str, Record],
    by_line: Mapping[str, list[str]],
    pairings: list[dict[str, Any]],
) -> None:
    wanted = set()
    for (source, identity), due in sorted(expect.occurrences.items(), key=lambda kv: (kv[0][1].uid, kv[0][1].slot)):
        line = provenance(source, identity)
        wanted.add(line)
        ids = by_line.get(line, [])
        if not ids:
            verdict.lost.append(f"{_name(identity)} ({source}): no activity")
        elif len(ids) == 1 and _when(scheduled[ids[0]]["due_datetime"]) != due:
            got = scheduled[ids[0]]["due_datetime"]
            verdict.lost.append(f"{_name(identity)} ({source}): due {got} in Kizen, {due.isoformat()} expected")
    sources = {s for s, _ in expect.occurrences}
    if expect.importer:  # a second activity for an imported item is a duplicate, told as such
        wanted |= {provenance(expect.importer, OccurrenceId(imported_uid(i))) for i in expect.imported}
    for line, ids in by_line.items():
        source = line.removeprefix("syncd: ").split("/", 1)[0]
        if line in wanted or source not in sources or expect.window is None:
            continue
        for activity_id in ids:
            record = scheduled[activity_id]
            due = _when(record["due_datetime"])
            if record["completed_at"] is None and expect.window[0] <= due <= expect.window[1]:
                verdict.lost.append(f"{line}: deleted in the calendar, activity {activity_id} still open")
    imported = {p["activity_id"]: p for p in pairings if not p["created_by_syncd"]}
    for activity_id, due in sorted(expect.imported.items()):
        found = scheduled.get(activity_id)
        if found is None:
            verdict.lost.append(f"activity {activity_id} made in Kizen is gone")
        elif activity_id not in imported:
            verdict.lost.append(f"activity {activity_id} made in Kizen was never imported")
        elif _when(found["due_datetime"]) != due:
            verdict.lost.append(f"activity {activity_id}: due {found['due_datetime']}, {due.isoformat()} expected")


def _touched(
    verdict: Verdict, before: Mapping[str, Record], scheduled: Mapping[str, Record], logged: Mapping[str, Record]
) -> None:
    for key, record in sorted(before.items()):
        kind, _, activity_id = key.partition(" ")
        now = (scheduled if kind == "scheduled" else logged).get(activity_id)
        if now != record:
            changed = sorted(k for k in set(record) | set(now or {}) if (now or {}).get(k) != record.get(k))
            verdict.touched.append(f"{key}: {'deleted' if now is None else 'changed ' + ', '.join(changed)}")


def _state(
    verdict: Verdict,
    expect: Expect,
    scheduled: Mapping[str, Record],
    by_line: Mapping[str, list[str]],
    pairings: list[dict[str, Any]],
    state: Path | str,
) -> None:
    by_id = {(p["id"]): p for p in pairings}
    for pairing in pairings:
        name = _name(pairing["id"])
        record = scheduled.get(pairing["activity_id"])
        if pairing["settled"] is not None:
            continue
        if record is None:
            verdict.disagreements.append(f"{name}: paired with activity {pairing['activity_id']}, gone from Kizen")
        elif record["completed_at"] is not None:
            verdict.disagreements.append(f"{name}: activity {pairing['activity_id']} logged, pairing still open")
        elif pairing["kizen_due"] is not None and _when(pairing["kizen_due"]) != _when(record["due_datetime"]):
            verdict.disagreements.append(
                f"{name}: state saw Kizen's due {pairing['kizen_due']}, Kizen {record['due_datetime']}"
            )
    for source, identity in expect.occurrences:
        ids = by_line.get(provenance(source, identity), [])
        paired = by_id.get(identity)
        if len(ids) == 1 and (paired is None or paired["activity_id"] != ids[0]):
            held = "no pairing" if paired is None else f"paired with {paired['activity_id']}"
            verdict.disagreements.append(f"{_name(identity)}: activity {ids[0]} in Kizen, {held} in the state")
    for kind, uid, slot in rows(state, "SELECT kind, uid, slot FROM journal WHERE status = 'pending'"):
        verdict.disagreements.append(f"journal: a {kind} of {uid} {slot or '-'} still pending")
    breaches = "\n".join(verdict.duplicates + verdict.lost + verdict.disagreements)
    for source, uid, slot, reason in rows(state, "SELECT source, uid, slot, reason FROM failures WHERE kind='failed'"):
        owner = by_id.get(OccurrenceId(uid, slot or ""))
        if owner is not None and owner["activity_id"] in scheduled and uid not in breaches:
            verdict.stale_failures.append(f"{source} {uid} {slot or '-'}: listed as failed ({reason}), in step")


def _calendar(verdict: Verdict, expect: Expect, items: list[icalendar.cal.Component]) -> None:
    by_uid: dict[str, list[icalendar.cal.Component]] = defaultdict(list)
    for item in items:
        if "RECURRENCE-ID" not in item:
            by_uid[str(item["UID"])].append(item)
    for (source, identity), due in expect.occurrences.items():
        if identity.slot:
            continue  # a series' occurrences are checked on Kizen's side
        found = by_uid.get(identity.uid, [])
        if len(found) != 1:
            verdict.lost.append(f"{_name(identity)}: {len(found)} items in the calendar")
            continue
        start = _start(found[0])
        if (source, identity) not in expect.logged and start is not None and start != due:  # a logged one stays
            verdict.lost.append(
                f"{_name(identity)}: starts {start.isoformat()} in the calendar, {due.isoformat()} in Kizen"
            )
        if (source, identity) in expect.logged and "X-SYNCD-LOGGED-ACTIVITY-ID" not in found[0]:
            verdict.lost.append(f"{_name(identity)}: logged in Kizen, not written back to the calendar")
    for activity_id, due in sorted(expect.imported.items()):
        found = by_uid.get(imported_uid(activity_id), [])
        if len(found) != 1:
            kind = verdict.duplicates if len(found) > 1 else verdict.lost
            kind.append(f"activity {activity_id} made in Kizen is {len(found)} items in the calendar")
        elif (start := _start(found[0])) is not None and start != due:
            verdict.lost.append(
                f"imported {activity_id}: starts {start.isoformat()} in the calendar, {due.isoformat()}"
            )


def _start(item: icalendar.cal.Component) -> datetime | None:
    value = item.get("DTSTART") or item.get("DUE")
    when = value.dt if value is not None else None
    return when if isinstance(when, datetime) else None


_PAIRINGS = "SELECT uid, slot, activity_id, due, created_by_syncd, lead, settled, kizen_seen FROM pairings"


def _pairing(row: tuple[Any, ...]) -> dict[str, Any]:
    uid, slot, activity_id, due, created, lead, settled, seen = row
    return {
        "id": OccurrenceId(uid, slot or ""),
        "activity_id": activity_id,
        "due": datetime.fromisoformat(due),
        "created_by_syncd": bool(created),
        "source": json.loads(lead)["source"] if lead else None,
        "settled": settled,
        "kizen_due": json.loads(seen or "{}").get("due"),  # what syncd last saw of Kizen's due
    }

"""What the state store forgets, and what it must keep (DESIGN section 6).

A settled pairing is what stops its occurrence from being created again (a retired pairing, an
activity deleted in Kizen, one already logged), so it goes only when its identity cannot come
back into the sync window:

- its slot, its due time and its original due time are all older than ``keep`` (the runner
  passes the lookback plus ``watch_days``: long past the window, and past the watch of a
  pairing left overdue), and
- for a single item (no slot), also no copy of its calendar item is stored any more, at any of
  its locations: a single item's identity is not bound to a time, and while the item exists
  someone can move it back into the window. An occurrence of a series keeps its slot's time as
  its identity, so only an override dragging a months-old slot forward could bring it back.

An open pairing is never pruned, however old. The conflicts of a pruned pairing go with it.
Runs go after ``days`` days, except the last ``runs`` of each source; journal rows go ``days``
days after they settled, never while pending (an unsettled intent is what recovery reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from syncd.state.protocol import Settled

_OLD_SETTLED = """
SELECT p.uid, p.slot FROM pairings p
WHERE p.settled IN ({states}) AND p.due < :cutoff AND p.original_due < :cutoff
  AND (p.slot != '' OR (
    NOT EXISTS (
      SELECT 1 FROM pairing_locations l JOIN resources r
        ON r.source = l.source AND r.collection = l.collection AND r.href = l.href
      WHERE l.uid = p.uid AND l.slot = p.slot)
    AND NOT EXISTS (
      SELECT 1 FROM resources r
      WHERE p.lead IS NOT NULL AND r.source = json_extract(p.lead, '$.source')
        AND r.collection = json_extract(p.lead, '$.collection') AND r.href = json_extract(p.lead, '$.href'))))
""".replace("{states}", ", ".join(f"'{state}'" for state in Settled))  # every state this code knows, no other


@dataclass(frozen=True)
class Pruned:
    """How many rows one prune removed."""

    pairings: int = 0
    runs: int = 0
    journal: int = 0


def slot_start(slot: str) -> datetime | None:
    """The latest a slot can start: its UTC instant, or two days after its date (whatever the zone
    and the time of day); None for a single item's empty slot."""
    if len(slot) == 16:
        return datetime.strptime(slot, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if len(slot) == 8:
        return datetime.strptime(slot, "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=2)
    return None


def prune(db: sqlite_utils.Database, now: datetime, keep: timedelta, runs: int, days: int) -> Pruned:
    """Deletes what the module docstring allows; the caller holds the transaction."""
    cutoff = now - keep
    text = cutoff.astimezone(UTC).isoformat()
    gone = []
    for uid, slot in db.execute(_OLD_SETTLED, {"cutoff": text}).fetchall():
        start = slot_start(slot)
        if slot == "" or (start is not None and start < cutoff):
            gone.append((uid, slot))
    for table in ("pairings", "pairing_locations", "conflicts"):
        db.conn.executemany(f"DELETE FROM {table} WHERE uid = ? AND slot = ?", gone)
    old = (now - timedelta(days=days)).astimezone(UTC).isoformat()
    runs_gone = 0
    for (source,) in db.execute("SELECT DISTINCT source FROM runs").fetchall():
        kept = db.execute(
            "SELECT id FROM runs WHERE source = ? ORDER BY id DESC LIMIT 1 OFFSET ?", [source, runs - 1]
        ).fetchone()
        if kept is not None:
            deleted = db.execute(
                "DELETE FROM runs WHERE source = ? AND id < ? AND started_at < ?", [source, kept[0], old]
            )
            runs_gone += deleted.rowcount
    journal = db.execute("DELETE FROM journal WHERE settled_at < ? AND status != 'pending'", [old])
    return Pruned(len(gone), runs_gone, journal.rowcount)

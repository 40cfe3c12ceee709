"""syncd's own marks on what it writes, and how they are read back: one place for each.

- The provenance line, the last line of the note of every activity syncd makes
  (``syncd: <source>/<digest>``): it names the occurrence, so a lost state store is rebuilt
  by reading it back, and a calendar item is never made into a second activity.
- The UID of a calendar item syncd imports from Kizen (``<activity id>@kizen.syncd``), which
  pairs the item to its activity whatever the state holds.
- The UID of each event in syncd's own feed (``syncd-activity-<id>``), never imported back.
- The UTC text form of an instant (``2026-12-03T14:00:00Z``), as the state stores and compares it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from syncd.model import OccurrenceId

PROVENANCE = "syncd:"
IMPORTED_SUFFIX = "@kizen.syncd"
FEED_UID_PREFIX = "syncd-activity-"
_IMPORTED = re.compile(r"(?:^|#)([0-9a-fA-F-]{36})" + re.escape(IMPORTED_SUFFIX) + "$")


def provenance(source: str, identity: OccurrenceId) -> str:
    """The note's last line: which occurrence made the activity (survives a lost state store)."""
    digest = hashlib.sha256(f"{identity.uid}\x00{identity.slot}".encode()).hexdigest()[:16]
    return f"{PROVENANCE} {source}/{digest}"


def is_provenance(line: str) -> bool:
    """Whether a note's line is a provenance line (the feed leaves such lines out)."""
    return line.startswith(PROVENANCE)


def provenance_of(note: str) -> str:
    """The provenance line a note ends with, or ``""``."""
    last = note.rstrip().rsplit("\n", 1)[-1].strip()
    return last if is_provenance(last) else ""


def with_provenance(note: str, line: str) -> str:
    """The note syncd writes: the calendar's text, a blank line, the provenance line."""
    return f"{note}\n\n{line}" if note else line


def imported_uid(activity_id: str) -> str:
    """The UID of the calendar item syncd makes for an activity made in Kizen."""
    return f"{activity_id}{IMPORTED_SUFFIX}"


def imported_activity(uid: str) -> str | None:
    """The activity an imported calendar item belongs to (its UID, namespaced or not), or None."""
    match = _IMPORTED.search(uid)
    return match.group(1) if match else None


def feed_uid(activity_id: str) -> str:
    """The UID of an activity's event in syncd's feed."""
    return f"{FEED_UID_PREFIX}{activity_id}"


def utc_text(value: datetime) -> str:
    """An aware UTC instant as syncd stores and compares it: ISO 8601 with ``Z``."""
    return value.isoformat().replace("+00:00", "Z")

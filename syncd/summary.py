"""What ``syncd run --once`` prints: the summary of a cycle, and the plan of a dry run.

Light on imports (the command line imports it before any command runs). Counts are of changes
made: an action that only brought syncd's own bookkeeping up to date (an update whose every
field was left to Kizen, a pairing that only noted what it saw) counts nowhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.sync.actions import Action
    from syncd.sync.report import Report

LABELS = {
    "Create": "activities created",
    "Update": "activities updated",
    "Reschedule": "series occurrences moved",
    "Delete": "activities deleted",
    "Log": "activities logged",
    "WriteBack": "logged entries written back",
    "MoveInCalendar": "calendar items moved",
    "RecordConflict": "conflicts recorded",
    "Settle": "pairings closed (done on one side)",
    "Import": "activities imported to calendars",
}

_KIZEN_CHANGES = ("Create", "Update", "Reschedule", "Delete", "Log")


def summary_lines(report: Report) -> list[tuple[str, bool]]:
    """The run's summary, each line with whether it goes to stderr: counts, then one line per
    failure; "nothing to do" only when nothing changed and nothing failed."""
    out: list[tuple[str, bool]] = []
    counts = report.changes()
    if not counts and report.clean:
        out.append(("nothing to do: calendars and Kizen are in step", False))
    if report.kizen_failures:
        out.append((kizen_line(report), True))
    out += [(f"{LABELS[kind]:<36}{counts[kind]:>6}", False) for kind in LABELS if counts[kind]]
    for outcome in report.failures:
        out.append((f"failed: {outcome.source} {outcome.identity.uid} {outcome.identity.slot}: {outcome.detail}", True))
    out += [(f"source {source} not synced: {reason}", True) for source, reason in report.failed_sources.items()]
    out += [(f"source {source} stopped by a safety rail: {reason}", True) for source, reason in report.stopped.items()]
    if report.unknown_contacts:
        left_off = f"{report.unknown_contacts} attendee(s) left off: no Kizen contact has their email (-v names them)"
        out.append((left_off, False))
    out += [(f"quarantined: {source} UID {uid.uid}: {why}", True) for source, uid, why in report.quarantined]
    return out


def kizen_line(report: Report) -> str:
    """One line naming Kizen, the step and the cause, and what the run did in Kizen before it."""
    first = report.kizen_failures[0]
    counts = report.changes()
    changed = sum(counts[kind] for kind in _KIZEN_CHANGES)
    done = f"{changed} change(s) made in Kizen before that" if changed else "nothing was changed in Kizen"
    if report.held:
        done += f"; {report.held} planned action(s) wait for the next run"
    if first.kind == "auth":
        done += "; check kizen.api_key, business_id and user_id"
    more = f" (and {len(report.kizen_failures) - 1} more step(s))" if len(report.kizen_failures) > 1 else ""
    return f"{first.text}{more}; {done}"


def plan_row(action: Action) -> tuple[str, str, str, str, str]:
    """A planned action's columns: what, the calendar item (UID), its slot, the Kizen side, detail."""
    from syncd.identifiers import utc_text
    from syncd.sync.actions import Create, Import

    if isinstance(action, Create):
        d = action.desired
        return (
            "create",
            d.id.uid,
            d.id.slot or "-",
            f"due {utc_text(d.lead.due)}",
            f"{d.activity_type_id}: {d.lead.summary}",
        )
    if isinstance(action, Import):
        f = action.foreign
        return "import", "-", "-", f"activity {f.activity_id}", f"due {utc_text(f.due)} into {f.source}: {f.summary}"
    pairing: Any = action.pairing
    extra = ""
    if hasattr(action, "changes"):
        extra = ", ".join(sorted(action.changes))
    elif hasattr(action, "reason"):
        extra = action.reason
    return (
        type(action).__name__.lower(),
        pairing.id.uid,
        pairing.id.slot or "-",
        f"activity {pairing.activity_id}",
        extra,
    )


def plan_lines(actions: list[Action]) -> list[str]:
    """The dry run's plan, one action a line, in columns aligned over the whole plan (two spaces
    between columns, so a long UID never runs into the next column)."""
    rows = [plan_row(a) for a in actions]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]]).rstrip() for row in rows
    ]

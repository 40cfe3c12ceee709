"""The safety rails: a source whose calendar came back empty, or whose run would delete too much,
has its deletions held.

A rail decides from what the cycle read and what the state remembers (:class:`Guard`), so it is
part of the pure plan (:func:`syncd.sync.plan.plan`) and a dry run shows the stop a real run
makes. The stop is kept in the state and holds on every run (dry runs included) until
``--force-delete`` or the source's ``allow_mass_delete``, or until a run of that source has
nothing to delete any more (the calendar is back). A real run records what the rails decided
(:func:`syncd.sync.commit.commit_rails`); a dry run records nothing, so the next run sees the
emptied calendar, and trips the rail, again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from syncd.state.protocol import Pairing
from syncd.sync.actions import Action, Delete, Guard

FORCE = "run with --force-delete if that is right"


@dataclass(frozen=True)
class Rails:
    """What the rails decided for one cycle.

    Attributes:
        actions: the plan with the stopped sources' deletions held back.
        stopped: source -> why its deletions are held, for the report (and a dry run's output).
        stops: the stops to record in the state (a stop already recorded keeps its first reason).
        cleared: the sources whose recorded stop is lifted.
    """

    actions: list[Action]
    stopped: dict[str, str] = field(default_factory=dict)
    stops: dict[str, str] = field(default_factory=dict)
    cleared: frozenset[str] = frozenset()


def rails(actions: list[Action], pairings: Sequence[Pairing], guard: Guard, now: datetime | None) -> Rails:
    """Holds back the deletions of each source a rail stops, now or on an earlier run.

    The share counts a source's open pairings (``pairings``); a source over ``guard.minimum``
    that would delete more than ``guard.share`` of them stops, and so does one whose calendar
    came back empty, however few it would delete. A source removed from the config keeps the
    stop recorded for it, so its deletions stay held until forced.
    """
    per_source = Counter(p.lead.source for p in pairings if p.lead and p.settled is None)
    deletes = Counter(a.pairing.lead.source for a in actions if isinstance(a, Delete) and a.pairing.lead)
    when = f" ({now:%Y-%m-%d %H:%M} UTC)" if now is not None else ""
    stopped: dict[str, str] = {}
    stops: dict[str, str] = {}
    cleared: set[str] = set()
    for name in sorted(set(deletes) | set(guard.held)):
        count, share = deletes[name], deletes[name] / max(per_source[name], 1)
        if guard.force or name in guard.allowed:
            if name in guard.held and name in guard.read:
                cleared.add(name)
            continue
        if name in guard.emptied:
            reason = f"the calendar came back empty{when}; {FORCE}"
        elif per_source[name] > guard.minimum and share > guard.share:
            reason = f"would delete {count} of {per_source[name]} activities{when}; {FORCE}"
        elif name in guard.held and count:
            reason = guard.held[name]
        else:
            if name in guard.held and name in guard.read:
                cleared.add(name)  # nothing left to delete: the calendar is back
            continue
        stops[name] = reason
        stopped[name] = guard.held.get(name, reason) + (f"; {count} deletion(s) held" if count else "")
    kept = [a for a in actions if not (isinstance(a, Delete) and a.pairing.lead and a.pairing.lead.source in stopped)]
    return Rails(kept, stopped, stops, frozenset(cleared))

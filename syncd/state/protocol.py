"""What the sync core needs of the state, and the shapes it reads and writes (DESIGN section 6).

The engine, the effects, the safety checks and reading depend on these protocols, not on SQLite:
each part is one concern (pairings, the journal, conflicts, failures, runs, cursors, resources,
expansions, look-ups, rails), and :class:`SyncState` is all of them, as a cycle needs. The records are plain
frozen values. :class:`Store` adds what the commands use besides (the lock, pruning, status);
:class:`syncd.state.store.StateStore` (SQLite) and :class:`syncd.state.postgres.PostgresStore`
implement it, and :func:`syncd.state.open_store` picks one from ``[sync] state``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from syncd.model import Cursor, Location, OccurrenceId, Policy

if TYPE_CHECKING:
    from syncd.state.pruning import Pruned


class Settled(StrEnum):
    """Why a pairing is retired (never touched again); the text is what the state stores.

    A value this code does not know (a row written elsewhere) reads as itself, still settled,
    rather than making the state unreadable: :meth:`_missing_`.
    """

    LOGGED = "logged"  # completed, in the calendar or in Kizen
    DELETED = "deleted"  # deleted in Kizen; the calendar item is left alone
    REMOVED = "removed"  # its calendar item is gone, so syncd deleted the activity it had made
    GONE = "gone"  # its calendar item is gone; the activity, not made by syncd, is left in Kizen
    EXPIRED = "expired"  # overdue past the watch; left as it is

    @classmethod
    def _missing_(cls, value: object) -> Settled | None:
        if not isinstance(value, str):
            return None
        unknown = str.__new__(cls, value)
        unknown._name_, unknown._value_ = value.upper(), value
        return unknown


GONE_FROM_CALENDAR = frozenset({Settled.REMOVED, Settled.GONE})  # settled because the item left the calendar


@dataclass(frozen=True)
class Pairing:
    """An occurrence paired with its Kizen activity, and what each side last showed.

    ``calendar_seen`` and ``kizen_seen`` map a field (due, note, assignee, contacts,
    notifications) to the value each side last had, as syncd synced it: a side changed a field
    when its value differs from what it last showed. ``hands_off`` names the fields someone
    edited in Kizen, which syncd leaves alone from then on.
    """

    id: OccurrenceId
    activity_id: str
    activity_type_id: str
    original_due: datetime
    due: datetime
    created_by_syncd: bool = True
    lead: Location | None = None
    locations: tuple[Location, ...] = ()
    calendar_seen: dict[str, Any] = field(default_factory=dict)
    kizen_seen: dict[str, Any] = field(default_factory=dict)
    hands_off: tuple[str, ...] = ()
    settled: Settled | None = None
    settled_reason: str = ""
    logged_activity_id: str | None = None
    written_back: bool = False
    changes: int = 0
    changed_at: datetime | None = None

    @property
    def lead_source(self) -> str | None:
        """The source of the copy that leads; None when no copy is left."""
        return self.lead.source if self.lead is not None else None


@dataclass(frozen=True)
class Discovery:
    """A source's collections (URL -> zone) and import collection's URL, found under ``settings``."""

    settings: str  # the config that decides them, as JSON
    collections: dict[str, str | None]
    import_collection: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    id: int
    kind: str
    id_: OccurrenceId
    activity_id: str | None
    payload: dict[str, Any]
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Conflict:
    id: int
    occurrence: OccurrenceId
    activity_id: str
    field: str
    calendar_value: str
    kizen_value: str
    policy: Policy
    status: Literal["open", "resolved", "applied"]
    keep: Policy | None
    created_at: datetime


@dataclass(frozen=True)
class Failure:
    source: str
    uid: str
    slot: str
    kind: Literal["failed", "quarantined"]
    reason: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class RenderedFeed:
    """A served feed as last rendered: its bytes, strong ETag and Last-Modified. Kept in the state,
    so every process serving it (each worker, a restarted daemon) answers with the same three."""

    body: bytes
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class ComponentStatus:
    """Kizen as the last run found it: when it was last reached, and the error if the last run failed."""

    last_success: datetime | None
    last_error: str | None  # None when the last run reached it
    failed_at: datetime | None


class Transactions(Protocol):
    def atomic(self, *, durable: bool = False) -> AbstractContextManager[None]:
        """One transaction: an action's remote effect is recorded with all its rows or none.

        ``durable``: on disk before this returns, so it outlives a power loss (a batch of
        intents, written before their requests leave); other commits may only outlive a crash."""
        ...


class Pairings(Protocol):
    def pairings(self, *, open_only: bool = False) -> list[Pairing]: ...

    def pairing(self, occurrence: OccurrenceId) -> Pairing | None: ...

    def pairing_of(self, activity_id: str) -> Pairing | None: ...

    def pairings_at(self, source: str, collection: str, *, open_only: bool = False) -> list[Pairing]:
        """The pairings with a copy in a collection."""
        ...

    def pairings_for(
        self, sources: Collection[str], uids: Collection[str] = (), *, unled: bool = False
    ) -> list[Pairing]:
        """What a cycle of some sources plans from, instead of every pairing of the business: the
        open pairings with a copy in one of ``sources`` or led by one, the open ones no copy leads
        (``unled``), and every pairing of ``uids`` (the items its calendars hold), settled ones too."""
        ...

    def paired_activities(self, activity_ids: Collection[str]) -> set[str]:
        """Which of these activities a pairing holds, settled ones too."""
        ...

    def save_pairing(self, pairing: Pairing) -> None: ...

    def rekey(self, old: OccurrenceId, pairing: Pairing) -> None: ...

    def settle(self, pairing: Pairing, settled: Settled, reason: str) -> Pairing: ...


class Journal(Protocol):
    def intend(
        self, kind: str, occurrence: OccurrenceId, payload: dict[str, Any], activity_id: str | None = None
    ) -> int: ...

    def settle_intent(
        self, intent: int, status: Literal["done", "failed", "abandoned"], outcome: dict[str, Any]
    ) -> None: ...

    def pending_intents(self) -> list[JournalEntry]: ...


class Conflicts(Protocol):
    def record_conflict(
        self, pairing: Pairing, field_name: str, calendar_value: str, kizen_value: str, policy: Policy
    ) -> int: ...

    def conflicts(self, *, open_only: bool = False) -> list[Conflict]: ...

    def mark_conflict_applied(self, conflict_id: int) -> None: ...


class Failures(Protocol):
    def record_failure(
        self, source: str, occurrence: OccurrenceId, kind: Literal["failed", "quarantined"], reason: str
    ) -> None: ...

    def clear_failure(self, source: str, occurrence: OccurrenceId) -> None: ...

    def failures(self, source: str | None = None) -> list[Failure]: ...


class Runs(Protocol):
    def start_run(self, source: str) -> int: ...

    def finish_run(self, run: int, status: str, counts: dict[str, int], errors: list[str]) -> None: ...

    def record_component(self, name: str, error: str | None) -> None: ...


class Cursors(Protocol):
    """Where each collection's reading stopped, and each source's collections as discovered."""

    def cursor(self, source: str, collection: str) -> Cursor: ...

    def save_cursor(self, source: str, collection: str, cursor: Cursor, zone: str | None = None) -> None: ...

    def collections(self, source: str) -> dict[str, str | None]: ...

    def discovery(self, source: str) -> Discovery | None: ...

    def save_discovery(self, source: str, discovery: Discovery) -> None: ...

    def forget_collection(self, source: str, collection: str) -> None: ...


class Resources(Protocol):
    def resources(self, source: str, collection: str) -> dict[str, tuple[str | None, str]]: ...

    def save_resource(self, location: Location, etag: str | None, ical: str) -> None: ...

    def delete_resource(self, location: Location) -> None: ...


class Expansions(Protocol):
    """Each stored calendar object's expansion as last computed, so an unchanged one is not parsed.

    The entries are opaque JSON text (:mod:`syncd.calendar.remembered` writes and checks them);
    an entry that is missing or stale is only a cost, never a wrong result, so a store may drop
    any of them (``forget_collection`` should drop a collection's).
    """

    def expansions(self, source: str, collection: str) -> dict[str, str]:
        """href -> entry of a collection's remembered expansions."""
        ...

    def save_expansions(self, source: str, collection: str, changed: Mapping[str, str], dropped: Iterable[str]) -> None:
        """Writes the changed entries (href -> entry) and drops those of the hrefs ``dropped``."""
        ...


SKIPPED = "skipped"  # the look-up kind holding each source's skips by reason (JSON), for ``syncd status``


class Lookups(Protocol):
    def lookup(self, kind: str, key: str) -> str | None: ...

    def remember(self, kind: str, key: str, value: str) -> None: ...

    def forget(self, kind: str, key: str | None = None) -> None: ...


class Rails(Protocol):
    """The safety rails that hold a source, and the sources adoption has rebuilt."""

    def rails(self) -> dict[str, str]: ...

    def stop(self, source: str, reason: str) -> None: ...

    def clear_rail(self, source: str) -> None: ...

    def rebuilt(self) -> set[str]: ...

    def mark_rebuilt(self, sources: set[str]) -> None: ...


class SyncState(
    Transactions, Pairings, Journal, Conflicts, Failures, Runs, Cursors, Resources, Expansions, Lookups, Rails, Protocol
):
    """Everything a sync cycle reads and writes between runs."""


class Store(SyncState, Protocol):
    """A state store as a command holds it: what a cycle needs, and the lock, pruning, the
    decisions ``conflicts resolve`` records and the facts ``status`` shows."""

    def close(self) -> None: ...

    def lock(self, command: str) -> AbstractContextManager[None]:
        """Holds the sync lock (one sync at a time per state); a second holder is refused, named."""
        ...

    def prune(self, now: datetime, keep: timedelta, *, runs: int = ..., days: int = ...) -> Pruned: ...

    def resolve_conflict(self, conflict_id: int, keep: Policy) -> None: ...

    def last_runs(self) -> dict[str, dict[str, Any]]: ...

    def last_successes(self) -> dict[str, datetime]:
        """When each source's last run that ended ``ok`` finished."""
        ...

    def component(self, name: str) -> ComponentStatus | None: ...

    def save_feed(self, name: str, feed: RenderedFeed) -> None: ...

    def feed(self, name: str) -> RenderedFeed | None:
        """The feed as last saved, or None before its first rendering."""
        ...

    def feed_etag(self, name: str) -> str | None:
        """The saved feed's ETag alone: what a request whose copy is current costs."""
        ...

    def cursor_times(self, source: str) -> dict[str, datetime | None]: ...

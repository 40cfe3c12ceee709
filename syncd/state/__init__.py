"""The state store (DESIGN section 6): its public names, importable from ``syncd.state``."""

from syncd.state.store import (
    BUSY_TIMEOUT,
    ComponentStatus,
    Conflict,
    Discovery,
    Failure,
    JournalEntry,
    Pairing,
    Settled,
    StateStore,
    migrations,
)

__all__ = [
    "BUSY_TIMEOUT",
    "ComponentStatus",
    "Conflict",
    "Discovery",
    "Failure",
    "JournalEntry",
    "Pairing",
    "Settled",
    "StateStore",
    "migrations",
]

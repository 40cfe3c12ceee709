"""The state store (DESIGN section 6): its public names, importable from ``syncd.state``.

``protocol`` is what the sync core needs (and the records it reads), ``store`` the SQLite store,
``migrations`` its schema, ``pruning`` what it forgets, ``faults`` how its errors are told.
"""

from syncd.state.protocol import (
    ComponentStatus,
    Conflict,
    Discovery,
    Failure,
    JournalEntry,
    Pairing,
    Settled,
    SyncState,
)
from syncd.state.store import BUSY_TIMEOUT, StateStore

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
    "SyncState",
]

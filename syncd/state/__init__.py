"""The state store (DESIGN section 6): its public names, importable from ``syncd.state``.

``protocol`` is what the sync core needs (and the records it reads), ``store`` the SQLite store,
``migrations`` its schema, ``postgres`` and ``pg_migrations`` the same on PostgreSQL, ``pruning``
what it forgets, ``faults`` and ``pg_faults`` how their errors are told. :func:`open_store` opens
the one ``[sync] state`` names.
"""

from __future__ import annotations

from pathlib import Path

from syncd.state.protocol import (
    ComponentStatus,
    Conflict,
    Discovery,
    Failure,
    JournalEntry,
    Pairing,
    RenderedFeed,
    Settled,
    Store,
    SyncState,
)
from syncd.state.store import BUSY_TIMEOUT, StateStore


def is_url(where: Path | str) -> bool:
    """Whether ``[sync] state`` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


def open_store(where: Path | str, busy_timeout: float = BUSY_TIMEOUT, *, read_only: bool = False) -> Store:
    """The state store ``where`` names: a PostgreSQL URL opens :class:`PostgresStore` (psycopg is
    imported only then), anything else is a SQLite file (:class:`StateStore`).

    Raises:
        StateError: the store cannot be opened or migrated (each store's own messages), or the
            URL names PostgreSQL and psycopg is not installed (``pip install 'syncd[postgresql]'``).
    """
    if not is_url(where):
        if read_only:
            return StateStore(where, busy_timeout, read_only=True)
        return StateStore(where) if busy_timeout == BUSY_TIMEOUT else StateStore(where, busy_timeout)
    from syncd.errors import StateError

    try:
        from syncd.state.postgres import PostgresStore
    except ImportError as exc:
        raise StateError(
            f"[sync] state names a PostgreSQL database, but {exc.name or 'psycopg'} is not installed: "
            "install syncd's postgresql extra (pip install 'syncd[postgresql]')"
        ) from None
    return PostgresStore(str(where), busy_timeout, read_only=read_only)


__all__ = [
    "BUSY_TIMEOUT",
    "ComponentStatus",
    "Conflict",
    "Discovery",
    "Failure",
    "JournalEntry",
    "Pairing",
    "RenderedFeed",
    "Settled",
    "StateStore",
    "Store",
    "SyncState",
    "is_url",
    "open_store",
]

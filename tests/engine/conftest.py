"""Every engine test runs on both state backends: SQLite and PostgreSQL (``tests/backends.py``)."""

from __future__ import annotations

import pytest

from tests.backends import Backend


@pytest.fixture(autouse=True)
def _every_backend(backend: Backend) -> Backend:
    return backend

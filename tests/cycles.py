"""Running one sync cycle in a test: a config file, the sandbox (in-process or its server), a clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from syncd.calendar.reading import Connector
from syncd.config import load
from syncd.runner import Cycle, Report, sandbox_client
from syncd.sandbox import Sandbox
from syncd.state import StateStore


def run_cycle(
    config_path: Path,
    box: Sandbox,
    now: datetime,
    *,
    url: str | None = None,
    connectors: Mapping[str, Connector] | None = None,
    **options: object,
) -> Report:
    """One cycle of ``syncd run --once`` on ``config_path``, Kizen being ``box``, holding the lock."""
    config = load(config_path)
    state = StateStore(config.sync.state)
    client = sandbox_client(box, url, sleep=lambda _: None)
    cycle = Cycle(config, state, client, clock=lambda: now)
    cycle.connectors.update(connectors or {})
    try:
        with state.lock("test"):
            return cycle.run(**options)  # type: ignore[arg-type]
    finally:
        cycle.close()
        client.http.close()
        state.close()

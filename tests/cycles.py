"""Running one sync cycle in a test: a config file, the sandbox (in-process or its server), a clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from syncd.calendar.connectors import Source
from syncd.config import load
from syncd.runner import Cycle
from syncd.sandbox import Sandbox
from syncd.service.workers import keeper
from syncd.state import open_store
from syncd.sync.report import Report
from syncd.wiring import sandbox_client


def run_cycle(
    config_path: Path,
    box: Sandbox,
    now: datetime,
    *,
    url: str | None = None,
    connectors: Mapping[str, Source] | None = None,
    team: str | None = None,
    stop: threading.Event | None = None,
    **options: object,
) -> Report:
    """One cycle of ``syncd run --once`` on ``config_path``, Kizen being ``box``, holding the lock;
    with ``team``, the cycle a worker runs for that team (its sources only); ``stop`` set: the cycle
    is asked to stop (it applies no action)."""
    config = load(config_path)
    state = open_store(config.sync.state)
    client = sandbox_client(box, url, sleep=lambda _: None)
    cycle = Cycle(config, state, client, clock=lambda: now)
    cycle.stop = stop
    if team is not None:
        cycle.team, cycle.common = team, team == keeper(config)
        options["only"] = config.teams()[team]
    cycle.connectors.update(connectors or {})
    try:
        with state.lock("test"):
            return cycle.run(**options)  # type: ignore[arg-type]
    finally:
        cycle.close()
        client.http.close()
        state.close()

"""A worker's ``/healthz`` from the runs the state records (whichever worker ran them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from syncd.config import load
from syncd.service.workers import health_of
from syncd.state import open_store


def test_health_comes_from_the_recorded_runs_and_goes_stale_after_three_intervals(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    sources = "".join(
        f'[[sources]]\nname = "{n}"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{n}.ics"\n'
        for n in ("ada", "grace", "alan")
    )
    path.write_text(f'[kizen.sandbox]\n[sync]\nstate = "state.sqlite"\n[daemon]\ninterval_seconds = 60\n{sources}')
    config = load(path)
    state = open_store(config.sync.state)
    try:
        state.finish_run(state.start_run("ada"), "ok", {}, [])
        state.finish_run(state.start_run("grace"), "ok", {}, [])
        state.finish_run(state.start_run("grace"), "failed", {}, ["cannot read grace.ics", "and more"])
        state.record_component("kizen", None)
        ok = state.last_successes()
        started = ok["ada"]
        fresh = health_of(config, state, started, started + timedelta(minutes=2))
        assert fresh.ok and fresh.kizen.last_error is None and fresh.kizen.last_success is not None
        assert fresh.sources["ada"].last_success == ok["ada"] and fresh.sources["ada"].last_error is None
        assert fresh.sources["grace"].last_error == "cannot read grace.ics"  # its last run failed
        assert fresh.sources["grace"].last_success == ok["grace"]
        assert fresh.sources["alan"].last_success is None and not fresh.sources["alan"].stale
        late = health_of(config, state, started, started + timedelta(minutes=3, seconds=1))
        assert not late.ok and all(h.stale for h in late.sources.values()) and late.kizen.stale
        state.record_component("kizen", "Kizen not reached while reading the scheduled activities: 503")
        told = health_of(config, state, started, started + timedelta(minutes=1))
        assert told.kizen.last_error == "Kizen not reached while reading the scheduled activities: 503"
    finally:
        state.close()

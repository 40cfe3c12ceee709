"""What a team's cycle may touch while other teams' cycles run beside it, over whole cycles on
both state backends, and the locks that keep teams apart on PostgreSQL.

- The journal: a team's cycle settles only its own sources' intents. Another team's create may
  be in flight in another worker; "settled" (looked for, not found yet, abandoned) it would be
  created a second time by its own team.
- Pruning and the pairings no source leads are kept by one team's cycles (the first by name).
- The sync lock: workers hold it shared (a whole-state ``syncd run`` is refused while any
  runs), and each team cycle holds its team's lock (a second cycle of it is refused, another
  team's is not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from syncd.cli import ExitCode, cli
from syncd.config import DEFAULT_TEAM, load
from syncd.errors import ConfigError, CreateOutcomeUnknown, StateError
from syncd.kizen import ActivitiesClient, NewScheduledActivity
from syncd.sandbox import Sandbox
from syncd.service.workers import QUEUE, SYNC_TEAM, build_app, cron_of, keeper, sync_team
from syncd.state.postgres import PostgresStore
from tests.backends import Backend, open_state
from tests.engine.test_cycle import NOW, World, by_note, calendar, vevent
from tests.pg import Server


@pytest.fixture
def world(tmp_path: Path, backend: Backend) -> Iterator[World]:
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield World(tmp_path, box, teams={"ada": "b", "grace": "a"})  # "a" keeps what no source leads


def notes(world: World) -> list[str]:
    return sorted(a["note"].splitlines()[0] for a in world.activities())


def pending(world: World) -> list[str]:
    state = open_state(world.folder)
    try:
        return [f"{i.kind} {i.id_.uid}" for i in state.pending_intents()]
    finally:
        state.close()


def test_a_teams_cycle_leaves_another_teams_create_in_flight_for_that_team_to_settle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.feed(calendar(vevent("a0", "20261203T090000Z", "Ada call")), "ada")
    world.feed(calendar(vevent("g0", "20261203T100000Z", "Grace call")), "grace")
    assert world.run().counts() == {"Create": 2}  # both sources rebuilt: no adoption will look again
    world.feed(
        calendar(vevent("g0", "20261203T100000Z", "Grace call"), vevent("g1", "20261204T100000Z", "Grace demo")),
        "grace",
    )
    in_flight: list[NewScheduledActivity] = []
    send = ActivitiesClient.create

    def lost(self: ActivitiesClient, new: NewScheduledActivity) -> Any:
        in_flight.append(new)  # sent, its answer not back yet: the intent stays pending
        raise CreateOutcomeUnknown("the answer is not back yet")

    monkeypatch.setattr(ActivitiesClient, "create", lost)
    assert not world.run(team="a").clean  # grace's team: its create of g1 is in flight
    monkeypatch.setattr(ActivitiesClient, "create", send)
    assert pending(world) == ["create g1"]

    report = world.run(team="b")  # ada's team, while grace's create is in flight
    assert report.actions == [] and pending(world) == ["create g1"]  # not looked for, not abandoned

    (new,) = in_flight
    world.box.service.create_scheduled(new.model_dump(mode="json", exclude_none=True))  # it arrives
    assert world.run(team="a").counts() == {}  # its own team finds it, and creates nothing
    assert pending(world) == []
    assert notes(world) == ["Ada call", "Grace call", "Grace demo"]
    assert world.run().actions == []


def test_only_the_team_that_keeps_what_no_source_leads_prunes(world: World) -> None:
    weekly = vevent("weekly", "20261123T090000Z", "Standup", "RRULE:FREQ=WEEKLY;COUNT=4")
    world.feed(calendar(weekly), "ada")
    world.feed(calendar(), "grace")
    assert world.run().counts() == {"Create": 4}
    world.now = NOW + timedelta(days=200)  # the slots are long overdue: settled, then prunable
    assert world.run(team="b").counts() == {"Settle": 4}  # ada's team settles them...
    state = open_state(world.folder)
    assert len(state.pairings()) == 4  # ...and, keeping nothing common, prunes nothing
    state.close()
    assert world.run(team="a").actions == []
    state = open_state(world.folder)
    assert state.pairings() == []  # the keeping team's cycle pruned them
    state.close()


def test_teams_default_to_one_and_the_first_by_name_keeps_what_no_source_leads(tmp_path: Path) -> None:
    world = World(tmp_path, Sandbox(), teams={"grace": "sales"})
    world.feed(calendar(), "ada")
    world.feed(calendar(), "grace")
    world.feed(calendar(), "alan")
    path = tmp_path / "config.toml"
    path.write_text(world.config_text())
    config = load(path)
    assert config.teams() == {DEFAULT_TEAM: ("ada", "alan"), "sales": ("grace",)}
    assert keeper(config) == DEFAULT_TEAM
    world.box.close()


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [(1, "* * * * * */1"), (7, "* * * * * */6"), (45, "* * * * * */30"), (60, "*/1 * * * *"), (300, "*/5 * * * *"),
     (3599, "*/30 * * * *"), (7200, "0 */2 * * *"), (86400 * 2, "0 */24 * * *")],
)  # fmt: skip
def test_the_interval_becomes_the_longest_cron_period_that_fits(seconds: float, cron: str) -> None:
    assert cron_of(seconds) == cron


@pytest.fixture
def store(pg_server: Server) -> Iterator[PostgresStore]:
    url = pg_server.database(migrated=True)
    store = PostgresStore(url)
    try:
        yield store
    finally:
        store.close()
        pg_server.drop(url)


def test_a_team_cycle_refuses_a_second_of_its_team_and_not_another_team(store: PostgresStore) -> None:
    with store.team_lock("east", "worker, team east"):
        with pytest.raises(StateError, match=r"a cycle of this team is running \(pid \d+ .*team east\)"):
            with store.team_lock("east", "worker, team east"):
                pass
        with store.team_lock("west", "worker, team west"):
            pass
    with store.team_lock("east", "worker, team east"):  # let go when its cycle ended
        pass


def test_workers_share_the_sync_lock_and_a_whole_state_sync_is_refused_while_one_runs(store: PostgresStore) -> None:
    with store.worker_lock("worker"), store.worker_lock("worker"):  # two workers side by side
        with pytest.raises(StateError, match=r"another sync is running \(pid \d+ .*syncd worker\)"):
            with store.lock("run --once"):
                pass
    with store.lock("run --once"):
        with pytest.raises(StateError, match=r"another sync is running \(pid \d+ .*syncd run --once\)"):
            with store.worker_lock("worker"):
                pass


def test_a_worker_on_a_sqlite_state_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[kizen.sandbox]\n[sync]\nstate = "state.sqlite"\n')
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "worker"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert 'syncd worker needs [sync] state = "postgresql://..."' in result.output
    assert "Traceback" not in result.output and not (tmp_path / "state.sqlite").exists()


def test_an_employees_importing_sources_in_two_teams_are_refused(tmp_path: Path) -> None:
    sources = "".join(
        f'[[sources]]\nname = "{name}"\ntype = "caldav"\nowner = "Ada@example.com"\nurl = "https://dav.example.com/"\n'
        f'import_from_crm = true\nimport_collection = "Kizen"\nteam = "{team}"\n'
        for name, team in (("work", "east"), ("home", "west"))
    )
    (tmp_path / "config.toml").write_text(f'[kizen.sandbox]\n[sync]\nstate = "state.sqlite"\n{sources}')
    with pytest.raises(ConfigError, match="import from Kizen for ada@example.com must share a team"):
        load(tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text(
        f'[kizen.sandbox]\n[sync]\nstate = "state.sqlite"\n{sources.replace("west", "east")}'
    )
    assert load(tmp_path / "config.toml").teams() == {"east": ("work", "home")}


def test_a_meeting_shared_by_two_teams_is_named_in_a_warning(world: World, caplog: pytest.LogCaptureFixture) -> None:
    meeting = vevent("qbr", "20261210T100000Z", "QBR", "ORGANIZER:mailto:ada@example.com")
    world.feed(calendar(meeting), "ada")
    world.feed(calendar(meeting), "grace")
    assert world.run().counts() == {"Create": 1}  # one cycle of both: one activity, two copies
    with caplog.at_level("WARNING", logger="syncd.sync.recovery"):
        world.run(team="b")
    assert "qbr  is shared by sources of the teams a, b: sources that share meetings must share a team" in caplog.text


def test_a_teams_cycle_never_makes_again_what_it_settled(world: World) -> None:
    """A team's cycle takes only its sources' open pairings, and every pairing of the items its
    calendars hold: one settled (deleted in Kizen, then completed there) is never created again."""
    world.feed(calendar(vevent("gone", "20261203T090000Z", "Call"), vevent("done", "20261204T090000Z", "Demo")), "ada")
    world.feed(calendar(vevent("g0", "20261203T100000Z", "Grace call")), "grace")
    assert world.run().counts() == {"Create": 3}
    world.box.user().delete(by_note(world, "Call")["id"])
    world.box.user().complete(by_note(world, "Demo")["id"])
    assert world.run(team="b").counts() == {"Settle": 2}
    assert world.run(team="b").actions == [] and world.run(team="a").actions == []
    assert notes(world) == ["Demo", "Grace call"]


def test_a_meeting_another_team_paired_is_not_made_again_by_a_team_whose_calendar_gains_it(world: World) -> None:
    """A config that splits sources sharing a meeting is warned about; the meeting's pairing,
    led by the other team's copy, is still found by its UID: no second activity."""
    meeting = vevent("qbr", "20261210T100000Z", "QBR")
    world.feed(calendar(meeting), "grace")
    world.feed(calendar(), "ada")
    assert world.run(team="a").counts() == {"Create": 1}
    world.feed(calendar(meeting), "ada")
    assert world.run(team="b").actions == []  # grace's copy leads: grace's team looks after it
    assert world.run(team="a").actions == [] and notes(world) == ["QBR"]


def test_only_the_keeping_team_looks_after_an_open_pairing_no_copy_leads(world: World) -> None:
    """A pairing whose calendar copies are all gone belongs to no team: the team that keeps what
    no source leads loads it and settles it once Kizen completes its activity; the other does not."""
    world.feed(calendar(vevent("a0", "20261203T090000Z", "Ada call")), "ada")
    world.feed(calendar(), "grace")
    assert world.run().counts() == {"Create": 1}
    state = open_state(world.folder)
    try:
        (made,) = state.pairings()
        state.save_pairing(replace(made, lead=None, locations=()))
    finally:
        state.close()
    world.feed(calendar(), "ada")
    world.box.user().complete(by_note(world, "Ada call")["id"])
    assert world.run(team="b").actions == []
    assert world.run(team="a").counts() == {"Settle": 1}


def test_the_app_ticks_takes_over_and_renders_the_feeds_every_interval_reconciles_and_forgets_old_jobs_daily(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text(
        '[kizen.sandbox]\n[sync]\nstate = "postgresql://syncd@127.0.0.1:1/syncd"\n[daemon]\ninterval_seconds = 120\n'
    )
    app = build_app(load(tmp_path / "config.toml"))  # no connection is made until a worker opens it
    periodic = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert periodic == {
        "syncd.tick": "*/2 * * * *",
        "syncd.takeover": "*/2 * * * *",
        "syncd.feeds": "*/2 * * * *",
        "syncd.reconcile": "0 */24 * * *",
        "syncd.forget_jobs": "17 3 * * *",
    }
    assert app.tasks[SYNC_TEAM].queue == QUEUE


def test_a_team_task_syncs_its_team_and_a_team_gone_from_the_config_is_skipped(
    tmp_path: Path, pg_server: Server
) -> None:
    url = pg_server.database(migrated=True)
    world = World(tmp_path, Sandbox(), teams={"grace": "sales"})
    world.feed(calendar(vevent("a0", "20261203T090000Z", "Ada call")), "ada")
    world.feed(calendar(vevent("g0", "20261203T100000Z", "Grace call")), "grace")
    path = tmp_path / "config.toml"
    path.write_text(world.config_text().replace(f'state = "{tmp_path / "state.sqlite"}"', f'state = "{url}"'))
    config = load(path)
    world.box.close()
    try:
        first = sync_team(config, "sales", clock=lambda: NOW)
        assert first is not None and first.counts() == {"Create": 1}  # grace's alone
        again = sync_team(config, "sales", reconcile=True, clock=lambda: NOW)
        assert again is not None and again.actions == []
        assert sync_team(config, "gone", clock=lambda: NOW) is None
    finally:
        pg_server.drop(url)

"""`syncd run --once`, `status` and `conflicts` through the command line, on a config in a temp folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import icalendar
from click.testing import CliRunner

from syncd.cli import cli
from syncd.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_the_example_syncs_once_then_has_nothing_to_do(config: Path) -> None:
    code, output = invoke(config, "run", "--once")
    assert code == 0 and "activities created" in output
    code, output = invoke(config, "run", "--once")
    assert code == 0 and "nothing to do" in output
    code, output = invoke(config, "status")
    assert code == 0 and "ada: ok; last run" in output and "open pairing(s)" in output
    assert "read " in output and "min ago" in output


def test_a_dry_run_prints_the_plan_and_writes_nothing(config: Path) -> None:
    code, output = invoke(config, "run", "--once", "--dry-run")
    assert code == 0 and output.count("create  ") >= 5 and "nothing written (dry run)" in output
    code, output = invoke(config, "run", "--once")
    assert code == 0 and "activities created" in output  # the dry run created nothing


def test_usage_and_configuration_problems_exit_2(config: Path, tmp_path: Path) -> None:
    code, output = invoke(config, "run", "--dry-run")  # the daemon takes no one-cycle options
    assert code == 2 and "go with --once" in output
    code, output = invoke(config, "run", "--once", "--source", "nobody")
    assert code == 2 and "no source named 'nobody'" in output
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[kizen]\nbase_url = "https://app.go.kizen.com"\n[[sources]]\nname = "x"\ntype = "ics"\nowner = "nobody"\nurl = "a.ics"\n'
    )
    code, output = invoke(broken, "run", "--once")
    assert code == 2 and "kizen: Value error, missing business_id, user_id" in output and "sources[0].owner" in output


def test_a_failed_source_exits_1_naming_it(config: Path) -> None:
    (config.parent / "examples" / "calendars" / "grace.ics").write_text("not a calendar")
    code, output = invoke(config, "run", "--once")
    assert code == 1 and "source grace not synced" in output and "activities created" in output


def test_conflicts_are_listed_and_resolved_from_the_command_line(config: Path) -> None:
    assert invoke(config, "conflicts", "list") == (0, "no conflicts\n")
    invoke(config, "run", "--once")
    state = StateStore(config.parent / ".syncd" / "state.sqlite")
    pairing = state.pairings()[0]
    conflict = state.record_conflict(pairing, "due", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "manual")
    state.close()
    code, output = invoke(config, "conflicts", "list")
    assert (
        code == 0
        and f"{conflict}: " in output
        and "calendar 2026-12-01T09:00:00Z, Kizen 2026-12-02T09:00:00Z" in output
    )
    code, output = invoke(config, "conflicts", "resolve", str(conflict), "--keep", "crm")
    assert code == 0 and "keeping the Kizen value" in output  # crm: the old name of kizen
    code, output = invoke(config, "conflicts", "resolve", str(conflict), "--keep", "calendar")
    assert code == 2 and "already settled" in output


def test_status_and_conflicts_read_while_a_sync_holds_the_lock(config: Path) -> None:
    invoke(config, "run", "--once")
    holder = StateStore(config.parent / ".syncd" / "state.sqlite")
    with holder.lock("run --once"):
        assert invoke(config, "run", "--once")[0] == 2  # a second sync is refused
        code, output = invoke(config, "status")
        assert code == 0 and "ada: ok; last run" in output
        assert invoke(config, "conflicts", "list") == (0, "no conflicts\n")
    holder.close()


def test_feed_export_writes_the_same_feed_twice_including_direct_logs(config: Path) -> None:
    invoke(config, "run", "--once")
    data = str(config.parent / ".syncd" / "sandbox.sqlite")
    CliRunner().invoke(cli, ["sandbox-user", "--data", data, "log", "call", "--notes", "Walk-in visit"])
    target = config.parent / "team.ics"
    code, output = invoke(config, "feed", "export", "team", str(target))
    assert code == 0 and "event(s) to" in output
    first = target.read_bytes()
    events = icalendar.Calendar.from_ical(first).walk("VEVENT")
    summaries = [str(e["SUMMARY"]) for e in events]
    assert "✓ Call: Walk-in visit" in summaries and "Meeting: Intro call with Charles" in summaries
    assert all(str(e["UID"]).startswith("syncd-activity-") for e in events)
    assert invoke(config, "feed", "export", "team", str(target))[0] == 0 and target.read_bytes() == first
    assert invoke(config, "feed", "export", "nobody", str(target))[0] == 2


def _files(folder: Path) -> dict[str, bytes]:
    """Every file syncd keeps in its data folder, by name, as bytes (the lock file aside)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.endswith(".lock")}


def _dump(path: Path) -> list[str]:
    """The database's rows as SQL, read without touching the file (``immutable``: no lock, no WAL)."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as db:
        return list(db.iterdump())


def test_a_dry_run_after_calendar_changes_leaves_the_state_and_kizen_byte_identical(config: Path) -> None:
    assert invoke(config, "run", "--once")[0] == 0
    calendars = config.parent / "examples" / "calendars"
    ada = calendars / "ada.ics"
    text = ada.read_text().replace("SUMMARY:Intro call with Charles", "SUMMARY:Intro call with Charles (moved)")
    text = text.replace("DTSTART;TZID=Europe/Berlin:20261203T150000", "DTSTART;TZID=Europe/Berlin:20261203T160000")
    broken = "BEGIN:VEVENT\nUID:no-start@example.com\nDTSTAMP:20260101T000000Z\nSUMMARY:No start\nEND:VEVENT\n"
    ada.write_text(text.replace("END:VCALENDAR", broken + "END:VCALENDAR"))
    grace = calendars / "grace.ics"
    grace.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nEND:VCALENDAR\n")  # emptied
    data = config.parent / ".syncd"
    before = _files(data)
    dumps = {name: _dump(data / name) for name in before if name.endswith(".sqlite")}
    assert set(dumps) == {"state.sqlite", "sandbox.sqlite"}

    code, output = invoke(config, "run", "--once", "--dry-run")

    assert code == 0 and "nothing written (dry run)" in output
    assert "update  intro-call-charles@example.com" in output
    assert "source grace stopped by a safety rail: the calendar came back empty" in output
    assert "quarantined: ada UID no-start@example.com" in output
    assert _files(data) == before  # the same files, the same bytes: not a cursor, resource or rail
    assert {name: _dump(data / name) for name in dumps} == dumps
    code, output = invoke(config, "run", "--once")  # the real run finds what the dry run found
    assert code == 1 and "source grace stopped by a safety rail: the calendar came back empty" in output
    assert "activities updated" in output and "quarantined: ada UID no-start@example.com" in output

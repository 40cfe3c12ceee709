"""Operating syncd as its users run vdirsyncer or khal: where the config is found, `syncd init`,
one exit-code table, the sandbox commands on the config's sandbox, status people can act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import ExitCode, cli
from syncd.calendar.connectors.ics import IcsSource
from syncd.model import Cursor
from syncd.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


def syncd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """syncd as a user runs it: its own process, a working folder, the environment given."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_config_is_found_from_the_option_the_variable_the_folder_then_xdg(config: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    xdg = Path(os.environ["XDG_CONFIG_HOME"])
    # nothing anywhere: every absolute path tried is named, with the way out
    missing = syncd("run", "--once", "--dry-run", cwd=elsewhere)
    assert missing.returncode == ExitCode.USAGE == 2
    assert f"looked for {elsewhere / 'config.toml'}, {xdg / 'syncd' / 'config.toml'}" in missing.stderr
    assert "-c FILE or SYNCD_CONFIG=FILE" in missing.stderr and "syncd init" in missing.stderr
    # the XDG folder's config, from any folder
    (xdg / "syncd").mkdir(parents=True)
    text = config.read_text().replace('"examples/', f'"{config.parent}/examples/')
    (xdg / "syncd" / "config.toml").write_text(text.replace('"mappings/', f'"{config.parent}/mappings/'))
    found = syncd("run", "--once", "--dry-run", cwd=elsewhere)
    assert found.returncode == 0 and "action(s) planned" in found.stdout, found.stderr
    # ./config.toml wins over XDG: a broken one here says so
    (elsewhere / "config.toml").write_text("not toml [")
    here = syncd("run", "--once", "--dry-run", cwd=elsewhere)
    assert here.returncode == 2 and f"{elsewhere / 'config.toml'}: not TOML" in here.stderr
    # SYNCD_CONFIG wins over ./config.toml; a missing one is named absolutely, with where it came from
    variable = syncd("run", "--once", "--dry-run", cwd=elsewhere, env={"SYNCD_CONFIG": str(config)})
    assert variable.returncode == 0 and "action(s) planned" in variable.stdout
    gone = syncd("status", cwd=elsewhere, env={"SYNCD_CONFIG": "gone.toml"})
    assert gone.returncode == 2 and f"{elsewhere / 'gone.toml'} (from SYNCD_CONFIG): cannot read" in gone.stderr
    # -c wins over all; relative, it is shown absolute with the hint
    option = syncd("-c", "nope.toml", "status", cwd=elsewhere, env={"SYNCD_CONFIG": str(config)})
    assert option.returncode == 2 and f"{elsewhere / 'nope.toml'}: cannot read" in option.stderr
    assert "give the right one with -c FILE" in option.stderr


def test_init_writes_a_starter_that_works_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    written = syncd("init", cwd=folder)
    xdg = Path(os.environ["XDG_CONFIG_HOME"]) / "syncd"
    assert written.returncode == 0 and f"wrote {xdg / 'config.toml'}" in written.stdout
    assert (xdg / "mappings.toml").read_text() == (ROOT / "mappings" / "default.toml").read_text()
    text = (xdg / "config.toml").read_text()
    assert text.count("\n#") > 20  # commented
    state = Path(os.environ["XDG_STATE_HOME"]) / "syncd"
    assert f'state = "{state / "state.sqlite"}"' in text  # a database belongs in the state folder
    # found from anywhere, and it works as it is
    assert syncd("check", cwd=folder).returncode == 0
    ran = syncd("run", "--once", cwd=folder)
    assert ran.returncode == 0 and "nothing to do" in ran.stdout and (state / "state.sqlite").exists()
    again = syncd("init", cwd=folder)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert (xdg / "config.toml").read_text() == text
    # at a path of one's choice: paths relative to it, its mappings beside it
    assert syncd("init", "mine/syncd.toml", cwd=folder).returncode == 0
    assert 'state = ".syncd/state.sqlite"' in (folder / "mine" / "syncd.toml").read_text()
    assert syncd("-c", "mine/syncd.toml", "check", cwd=folder).returncode == 0


def test_the_sandbox_user_acts_on_the_configs_sandbox_with_its_seed(config: Path) -> None:
    seed = (ROOT / "syncd" / "sandbox" / "default.toml").read_text()
    seed = seed.replace("grace@example.com", "hopper@example.com")
    (config.parent / "seed.toml").write_text(seed)
    config.write_text(
        config.read_text().replace(
            'data = ".syncd/sandbox.sqlite"', 'data = "kizen/activities.sqlite"\nseed = "seed.toml"'
        )
    )
    elsewhere = config.parent / "elsewhere"
    elsewhere.mkdir()
    made = syncd(
        "-c",
        str(config),
        "sandbox-user",
        "--as",
        "hopper@example.com",
        "create",
        "--type",
        "call",
        "--due",
        "2030-01-01T09:00:00Z",
        cwd=elsewhere,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["employee"]["email"] == "hopper@example.com"  # the seed, not repeated
    assert (config.parent / "kizen" / "activities.sqlite").exists()  # the config's data file
    assert not (elsewhere / ".syncd").exists()


def test_every_command_uses_one_table_shown_in_help_and_the_readme() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    assert "Exit codes (every command):" in text
    for code in ExitCode:
        assert f"  {int(code)}  " in text
    readme = (ROOT / "README.md").read_text()
    assert "| exit code | meaning |" in readme
    for code in ExitCode:
        assert f"| {int(code)} |" in readme


def test_check_and_run_exit_alike_for_the_same_unset_secret(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAV_PASSWORD", raising=False)
    config.write_text(
        config.read_text()
        + '[[sources]]\nname = "dav"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "http://127.0.0.1:9/"\n'
        'username = "ada"\npassword_env = "DAV_PASSWORD"\n'
    )
    ran = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
    checked = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert ran.exit_code == checked.exit_code == ExitCode.USAGE
    assert "PROBLEM: sources.dav.password: the environment variable DAV_PASSWORD is not set" in checked.output


def test_status_names_state_reason_skips_and_the_settling_command_also_as_json(config: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["--config", str(config), "run", "--once"])
    state = StateStore(config.parent / ".syncd" / "state.sqlite")
    pairing = next(p for p in state.pairings() if p.lead and p.lead.source == "ada")
    conflict = state.record_conflict(pairing, "due", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "manual")
    state.close()
    text = runner.invoke(cli, ["--config", str(config), "status"]).output.splitlines()
    assert "  skipped by the mapping rules: 26 item(s): marked free, not a commitment" in text
    assert any(line.endswith(f"settle with: syncd conflicts resolve {conflict} --keep calendar|kizen") for line in text)
    found = json.loads(runner.invoke(cli, ["--config", str(config), "status", "--json"]).output)
    grace = next(s for s in found["sources"] if s["name"] == "grace")
    assert grace["state"] == "ok" and grace["reason"] is None
    assert grace["skipped"] == {"marked free, not a commitment": 26}
    assert found["kizen"]["state"] == "ok" and found["kizen"]["last_success"].endswith("Z")
    (waiting,) = found["conflicts"]
    assert waiting["id"] == conflict and waiting["source"] == "ada" and waiting["field"] == "due"
    ada = next(s for s in found["sources"] if s["name"] == "ada")
    assert ada["conflicts"] == [conflict]
    # `--keep kizen` settles it (crm is the same, kept for old scripts)
    settled = runner.invoke(cli, ["--config", str(config), "conflicts", "resolve", str(conflict), "--keep", "kizen"])
    assert settled.exit_code == 0 and "keeping the Kizen value" in settled.output
    state = StateStore(config.parent / ".syncd" / "state.sqlite")
    assert [c.keep for c in state.conflicts() if c.id == conflict] == ["crm"]
    state.close()


def test_a_dry_run_plan_is_in_aligned_columns(config: Path) -> None:
    output = CliRunner().invoke(cli, ["--config", str(config), "run", "--once", "--dry-run"]).output
    plan = [line for line in output.splitlines() if line.startswith("create")]
    assert len(plan) >= 5
    due = {line.index(" due ") for line in plan}
    assert len(due) == 1  # every row's "due" column starts at the same place
    assert all(line[line.index("@example.com") + len("@example.com")] == " " for line in plan)


def test_a_fresh_install_does_not_log_adopting_nothing(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    assert CliRunner().invoke(cli, ["--config", str(config), "run", "--once"]).exit_code == 0
    assert "adopted" not in caplog.text


def test_an_ics_url_is_shown_with_its_port_and_path_but_not_its_token() -> None:
    feed = IcsSource("ada", "https://cal.example.com:8443/ical/team/Xk2v9qPz7Lm3Rt8wYb4n/basic.ics?key=s3cr3t")
    assert feed.shown == "https://cal.example.com:8443/ical/team/…/basic.ics?…"
    assert "Xk2v9" not in feed.shown and "s3cr3t" not in feed.shown


def test_status_shows_a_feeds_url_with_its_port_and_path_but_not_its_token(config: Path) -> None:
    url = "http://127.0.0.1:8081/feeds/Xk2v9qPz7Lm3Rt8wYb4n.ics"
    config.write_text(
        config.read_text() + f'[[sources]]\nname = "web"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{url}"\n'
    )
    state = StateStore(config.parent / ".syncd" / "state.sqlite")
    state.save_cursor("web", url, Cursor())
    state.close()
    found = json.loads(CliRunner().invoke(cli, ["--config", str(config), "status", "--json"]).output)
    web = next(s for s in found["sources"] if s["name"] == "web")
    assert list(web["collections"]) == ["http://127.0.0.1:8081/feeds/…"]

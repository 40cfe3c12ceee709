"""`syncd check`: each problem said plainly, exit 1 when there is one, nothing changed."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from syncd.cli import cli
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]


def check(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    return result.exit_code, result.output


def test_the_example_checks_out(config: Path) -> None:
    code, output = check(config)
    assert code == 0 and "PROBLEM" not in output
    assert "ok: source ada: a feed of 5 item(s)" in output and "ok: Kizen: reached" in output
    assert not (config.parent / ".syncd" / "state.sqlite").exists()


def test_an_unknown_activity_type_and_a_missing_feed_are_named(config: Path) -> None:
    (config.parent / "mappings" / "default.toml").write_text(
        '[[rule]]\nmatch = { kind = "VTODO" }\nset = { activity_type = "Webinar" }\n[default]\nactivity_type = "Meeting"\n'
    )
    (config.parent / "examples" / "calendars" / "grace.ics").unlink()
    code, output = check(config)
    assert code == 1
    assert "PROBLEM: the activity type 'Webinar' (in the mappings) does not exist in Kizen" in output
    assert "PROBLEM: source 'grace': cannot read" in output


def test_a_key_without_the_team_permission_is_explained(config: Path) -> None:
    seed = (
        (ROOT / "syncd" / "sandbox" / "default.toml").read_text().replace("team_visible = true", "team_visible = false")
    )
    (config.parent / "seed.toml").write_text(seed)
    text = config.read_text().replace(
        'data = ".syncd/sandbox.sqlite"', 'data = ".syncd/sandbox.sqlite"\nseed = "seed.toml"'
    )
    config.write_text(text)
    code, output = check(config)
    assert code == 1 and "the key lacks the all-team-members permission" in output


def test_caldav_credentials_and_collections_are_checked(config: Path, tmp_path: Path) -> None:
    from tests.connectors.radicale import Radicale, mkcalendar, quiet

    quiet()
    (tmp_path / "radicale").mkdir()
    with Radicale(tmp_path / "radicale", users={"ada": "right"}) as radicale:
        with radicale.client("ada", "right") as http:
            mkcalendar(http, "/ada/desk/", name="Work")
        write_secret(config.parent / "wrong", "s3cr3t-wrong-pw")
        write_secret(config.parent / "right", "right")
        base = config.read_text().split("[[sources]]")[0]
        caldav = f'[[sources]]\nname = "{{name}}"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{radicale.url}/ada/"\nusername = "ada"\nallow_private_network = true\n'
        config.write_text(
            base
            + caldav.replace("{name}", "wrongpass")
            + 'password_file = "wrong"\n'
            + caldav.replace("{name}", "nocalendar")
            + 'password_file = "right"\ncollections = ["Personal"]\n'
            + caldav.replace("{name}", "fine")
            + 'password_file = "right"\ncollections = ["Work"]\n'
        )
        code, output = check(config)
    assert code == 1
    assert "PROBLEM: source 'wrongpass'" in output and "credentials" in output and "s3cr3t-wrong-pw" not in output
    assert "PROBLEM: source 'nocalendar'" in output and "Personal" in output
    assert "ok: source fine: 1 calendar(s): Work" in output


def test_a_moved_feed_is_said_to_change_and_its_url_never_shown(config: Path) -> None:
    assert CliRunner().invoke(cli, ["--config", str(config), "run", "--once"]).exit_code == 0
    calendars = config.parent / "examples" / "calendars"
    (calendars / "ada.ics").rename(calendars / "ada-moved.ics")
    config.write_text(config.read_text().replace("calendars/ada.ics", "calendars/ada-moved.ics"))
    code, output = check(config)
    assert code == 0, output
    (line,) = [line for line in output.splitlines() if line.startswith("change: ")]
    assert line.startswith("change: source ada: url changed: the new feed is read in full;")
    assert "ada-moved" not in output and "ada.ics" not in output

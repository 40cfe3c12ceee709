"""`run --once` and `status` tell a Kizen outage, refused credentials and failed items as such.

Kizen is the sandbox over loopback HTTP, configured as the real service would be (base_url,
business_id, user_id, api_key_file); "unreachable" is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.sandbox import Sandbox
from syncd.state import StateStore
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]


def invoke(config: Path, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output.splitlines()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Setup:
    def __init__(self, folder: Path, box: Sandbox, url: str) -> None:
        self.folder, self.box, self.url = folder, box, url
        self.config = folder / "config.toml"
        self.key = folder / "kizen.key"
        write_secret(self.key, box.world.business.api_key)
        self.write()

    def write(self, url: str | None = None) -> None:
        world = self.box.world
        text = (ROOT / "config.example.toml").read_text()
        kizen = (
            f'[kizen]\nbase_url = "{url or self.url}"\nbusiness_id = "{world.business.id}"\n'
            f'user_id = "{world.api_user.id}"\napi_key_file = "{self.key}"\n'
        )
        text = text.replace("[kizen.sandbox]                   # remove", "# remove").replace(
            'data = ".syncd/sandbox.sqlite"    #', "#"
        )
        self.config.write_text(kizen + text)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        yield Setup(tmp_path, box, box.serve().url)


def kizen_lines(output: list[str]) -> list[str]:
    return [line for line in output if "kizen" in line.lower()]


def test_kizen_unreachable_exits_1_with_one_line_naming_it_and_status_says_so(setup: Setup) -> None:
    code, output = invoke(setup.config, "run", "--once")
    assert code == 0 and any("activities created" in line for line in output)
    code, output = invoke(setup.config, "status")
    assert code == 0 and output[0].startswith("Kizen: reached by the last run")
    setup.write(f"http://127.0.0.1:{closed_port()}")
    code, output = invoke(setup.config, "run", "--once")
    assert code == 1 and not any("in step" in line for line in output), output
    (line,) = kizen_lines(output)
    assert line.startswith("Kizen not reached while reading the scheduled activities: GET ")
    assert "cannot connect" in line and line.endswith("nothing was changed in Kizen")
    code, output = invoke(setup.config, "status")
    assert code == 0 and output[0].startswith("Kizen: NOT reached by the last run") and "last reached" in output[0]
    ada = next(line for line in output if line.startswith("ada: "))
    # the state, then its reason, on the source's own line
    assert ada.startswith("ada: failed: Kizen not reached while reading the scheduled") and ": ok;" not in ada


def test_refused_credentials_exit_1_with_one_line(setup: Setup) -> None:
    setup.key.write_text("not-the-key")
    code, output = invoke(setup.config, "run", "--once")
    assert code == 1 and not any("in step" in line for line in output)
    (line,) = kizen_lines(output)
    assert line.startswith("Kizen refused syncd's credentials while looking for the activities made before")
    assert "401" in line and "check kizen.api_key, business_id and user_id" in line
    assert "not-the-key" not in "\n".join(output)
    assert setup.box.service.list_scheduled({}, 0, 10)[0] == 0


def test_a_dry_run_that_cannot_reach_kizen_exits_1_naming_it(setup: Setup) -> None:
    invoke(setup.config, "run", "--once")
    setup.write(f"http://127.0.0.1:{closed_port()}")
    code, output = invoke(setup.config, "run", "--once", "--dry-run")
    assert code == 1 and len(kizen_lines(output)) == 1 and "nothing written (dry run)" in output[-2]


def test_status_shows_failed_and_quarantined_items_and_open_conflicts(setup: Setup) -> None:
    ada = setup.folder / "examples" / "calendars" / "ada.ics"
    broken = (
        "BEGIN:VEVENT\nUID:broken-1\nDTSTAMP:20260101T000000Z\nDTSTART:20261203T090000Z\nRRULE:FREQ=NOPE\nEND:VEVENT\n"
    )
    ada.write_text(ada.read_text().replace("END:VCALENDAR", broken + "END:VCALENDAR"))
    invoke(setup.config, "run", "--once")
    state = StateStore(setup.folder / ".syncd" / "state.sqlite")
    try:
        pairing = next(p for p in state.pairings() if p.lead and p.lead.source == "ada")
        first = state.record_conflict(pairing, "due", "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "manual")
    finally:
        state.close()
    code, output = invoke(setup.config, "status")
    line = next(line for line in output if line.startswith("ada: "))
    assert code == 0 and line.startswith("ada: failing items: 1 item(s) quarantined;") and ": ok;" not in line
    assert any(x.startswith("  quarantined: UID broken-1: unreadable RRULE") for x in output)
    conflict = next(x for x in output if x.startswith(f"conflict {first}: ada UID "))
    assert conflict.endswith(f"settle with: syncd conflicts resolve {first} --keep calendar|kizen")
    assert "1 open conflict(s) waiting for a decision" in output
    grace = next(line for line in output if line.startswith("grace: "))
    assert grace.startswith("grace: ok;")

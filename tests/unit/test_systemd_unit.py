"""examples/syncd.service: a unit systemd accepts, hardened to an exposure of 3.0 at most."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "examples" / "syncd.service"


def analyze() -> str:
    """systemd-analyze, which .ci/run installs where a machine lacks it: these tests never skip."""
    found = shutil.which("systemd-analyze")
    assert found is not None, "systemd-analyze is not installed (Debian's systemd package has it)"
    return found


def test_the_unit_is_notify_with_a_watchdog_reload_and_its_own_folders() -> None:
    lines = set(UNIT.read_text().splitlines())
    wanted = {
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=syncd",
        "ConfigurationDirectory=syncd",
    }
    assert wanted <= lines
    assert any(line.startswith("WatchdogSec=") for line in lines)


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    # ExecStart names where syncd would be installed; verify checks it exists, so point it at this one.
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text().replace("/opt/syncd/.venv/bin/syncd", f"{sys.executable} -m syncd"))
    done = subprocess.run([analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_unit_is_exposed_at_3_or_less() -> None:
    done = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Overall exposure level for syncd\.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 3.0, done.stdout

"""A command imports only what it uses: an ICS-only ``run --once`` and ``status`` load no CalDAV,
sandbox or web-server module.

Each command runs in a fresh interpreter under ``python -X importtime``, whose report names every
module the process imported. Kizen is the sandbox served over loopback by this test's process,
configured as the real service would be, so the command itself has no reason to import it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]
# the caldav stack, the sandbox, the daemon's web stack (its app, server, scheduler, metrics)
FORBIDDEN = ("caldav", "niquests", "lxml", "syncd.sandbox", "syncd.service", "waitress", "werkzeug", "apscheduler")
FORBIDDEN += ("prometheus_client",)


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    """The example config's ICS feeds, with Kizen at the sandbox's loopback URL."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    with Sandbox(data=tmp_path / "sandbox.sqlite") as box:
        world = box.world
        key = write_secret(tmp_path / "kizen.key", world.business.api_key)
        text = (ROOT / "config.example.toml").read_text()
        text = text.replace("[kizen.sandbox]", "# [kizen.sandbox]").replace(
            'data = ".syncd/sandbox.sqlite"', '# data = ".syncd/sandbox.sqlite"'
        )
        path = tmp_path / "config.toml"
        path.write_text(
            f'[kizen]\nbase_url = "{box.serve().url}"\nbusiness_id = "{world.business.id}"\n'
            f'user_id = "{world.api_user.id}"\napi_key_file = "{key}"\n' + text
        )
        yield path


def imported(config: Path, *args: str) -> tuple[str, set[str]]:
    """Runs ``syncd -c config ARGS`` under ``-X importtime``: its output and the modules it imported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "syncd", "-c", str(config), *args],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert done.returncode == 0, (done.stdout, done.stderr[-2000:])
    assert "syncd.cli" in modules  # the report is there
    return done.stdout, modules


def forbidden(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in FORBIDDEN))


def test_a_no_change_run_and_status_import_no_caldav_sandbox_or_web_server(config: Path) -> None:
    first, _ = imported(config, "run", "--once")
    assert "activities created" in first
    output, modules = imported(config, "run", "--once")
    assert "nothing to do" in output
    assert "syncd.runner" in modules and forbidden(modules) == []
    output, modules = imported(config, "status")
    assert output.startswith("Kizen: reached by the last run")
    assert forbidden(modules) == []


def test_status_imports_no_http_client() -> None:
    """``status`` reads the state alone: showing a feed's URL needs no HTTP stack."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, syncd.status; print(sorted(m for m in sys.modules if m.startswith('http')))",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "httpx" not in done.stdout and "httpcore" not in done.stdout

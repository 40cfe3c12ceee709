"""The command line: every command's help, and the sandbox as a real process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
from click.testing import CliRunner

from syncd.cli import cli
from tests.conftest import assert_read_shape


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    assert ("sandbox",) in commands
    for command in commands:
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage: " in result.output


def test_bad_faults_are_a_usage_error_with_exit_code_2() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--data", ":memory:", "--faults", "418=0.5"])
    assert result.exit_code == 2
    assert "faults" in result.output and "418=0.5" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sandbox_command_serves_kizen_and_keeps_activities_across_runs(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.sqlite"
    first = _create_through_a_sandbox_process(data)
    # A second process on the same data file sees the first one's activity.
    port = _free_port()
    with _sandbox_process(port, data) as (url, headers):
        listed = httpx.get(f"{url}/api/activities/scheduled-activity", headers=headers).json()
    assert [item["id"] for item in listed["results"]] == [first]


def _create_through_a_sandbox_process(data: Path) -> str:
    port = _free_port()
    with _sandbox_process(port, data) as (url, headers):
        body = {
            "activity_object_id": "1473d9d0-2ae9-42bd-af7d-93363ab14aeb",
            "due_datetime": "2030-01-01T09:00:00Z",
            "employee_id": headers["X-USER-ID"],
        }
        response = httpx.post(f"{url}/api/activities/scheduled-activity", json=body, headers=headers)
    assert response.status_code == 201
    created = response.json()
    assert_read_shape(created)
    assert created["completed_at"] is None and created["logged_activity_id"] is None
    return str(created["id"])


class _sandbox_process:
    """Runs `syncd sandbox` as a real process; reads the URL and headers it prints."""

    def __init__(self, port: int, data: Path) -> None:
        self.command = [sys.executable, "-m", "syncd", "sandbox", "--port", str(port), "--data", str(data)]

    def __enter__(self) -> tuple[str, dict[str, str]]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("Try:" in line for line in lines):
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
        printed = "".join(lines)
        url_match = re.search(r"Kizen sandbox on (http://127\.0\.0\.1:\d+)", printed)
        assert url_match, printed
        headers = dict(re.findall(r"^  (X-[A-Z-]+): (\S+)$", printed, re.MULTILINE))
        assert set(headers) == {"X-API-KEY", "X-BUSINESS-ID", "X-USER-ID"}, printed
        return url_match.group(1), headers

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _user(data: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["sandbox-user", "--data", str(data), *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_sandbox_user_acts_beside_a_running_sandbox(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.sqlite"
    with _sandbox_process(_free_port(), data) as (url, headers):
        created = _user(data, "create", "--due", "2030-01-01T10:00:00+01:00", "--note", "Demo call", "--type", "call")
        assert created["due_datetime"] == "2030-01-01T09:00:00Z"
        seen = httpx.get(f"{url}/api/activities/scheduled-activity/{created['id']}", headers=headers).json()
        assert seen["note"] == "Demo call"
        _user(data, "reschedule", created["id"], "2030-01-02T09:00:00Z")
        _user(data, "edit-note", created["id"], "Demo call, moved")
        _user(data, "--as", "grace@example.com", "reassign", created["id"], "alan@example.com")
        logged = _user(data, "--as", "grace@example.com", "complete", created["id"], "--notes", "done")
        seen = httpx.get(f"{url}/api/activities/scheduled-activity/{created['id']}", headers=headers).json()
    assert logged["scheduled_activity_id"] == created["id"] and logged["logged_by"]["email"] == "grace@example.com"
    assert seen["due_datetime"] == "2030-01-02T09:00:00Z" and seen["original_due_datetime"] == "2030-01-01T09:00:00Z"
    assert seen["note"] == "Demo call, moved" and seen["employee"]["email"] == "alan@example.com"
    assert seen["logged_activity_id"] == logged["id"]


def test_sandbox_user_reports_kizens_refusals(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.sqlite"
    created = _user(data, "create", "--due", "2030-01-01T09:00:00Z")
    deleted = CliRunner().invoke(cli, ["sandbox-user", "--data", str(data), "delete", created["id"]])
    assert deleted.exit_code == 0 and created["id"] in deleted.output
    again = CliRunner().invoke(cli, ["sandbox-user", "--data", str(data), "delete", created["id"]])
    assert again.exit_code == 1 and "404" in again.output
    nobody = CliRunner().invoke(cli, ["sandbox-user", "--data", str(data), "--as", "nobody@example.com", "log", "call"])
    assert nobody.exit_code == 2 and "nobody@example.com" in nobody.output
    naive = CliRunner().invoke(cli, ["sandbox-user", "--data", str(data), "create", "--due", "2030-01-01T09:00:00"])
    assert naive.exit_code == 2 and "UTC offset" in naive.output
    logged = _user(data, "log", "call", "--notes", "walk-in")
    assert logged["scheduled_activity_id"] is None and logged["completed_at"] is None

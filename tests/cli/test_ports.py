"""A port already in use, for `syncd sandbox --port N` and the daemon's [daemon] port, as real
processes: one line naming the port and what to change, exit 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def syncd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_sandbox_on_a_port_in_use_says_so_in_one_line(taken: int) -> None:
    done = syncd("sandbox", "--port", str(taken), "--data", ":memory:")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"syncd: port {taken} on 127.0.0.1 is in use: stop what listens there, or change --port\n"


def test_the_daemon_on_a_port_in_use_says_so_in_one_line(config: Path, taken: int) -> None:
    with config.open("a") as extra:
        extra.write(f"\n[daemon]\nport = {taken}\n")
    done = syncd("--config", str(config), "run", cwd=config.parent)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "syncd daemon on" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert lines == [f"syncd: port {taken} on 127.0.0.1 is in use: stop what listens there, or change [daemon] port"]

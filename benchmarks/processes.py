"""Whole processes for the benchmarks: wall time and peak RSS of one, and ``syncd run --once``.

:func:`measured` waits for its child with ``os.wait4``, so the peak resident set is that child's
alone (``ru_maxrss``), not the largest of every child the benchmark started. :func:`write_config`
writes the config every benchmark syncs with: the in-process sandbox, the default mappings and
the given sources; :func:`syncd_once` runs it once and reads the cycle's JSON summary.

syncd runs from an environment holding its own dependencies only (:func:`syncd_python`), as a
user's install does: the test environment also holds packages that syncd's libraries import
when they find them (httpcore imports trio, httpx its command line's rich), which cost each
process about a quarter of a second of CPU that no user pays.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(__file__).resolve().parent / ".venv-syncd"
SANDBOX = '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
KIZEN_WRITES = ("created", "updated", "rescheduled", "deleted", "logged")  # a source summary's Kizen changes


@dataclass(frozen=True)
class Finished:
    """A process that ended well: its wall seconds, peak resident set and output (stdout, then stderr)."""

    seconds: float
    peak_mb: float
    output: str


@dataclass(frozen=True)
class SyncdRun:
    """One ``syncd run --once``: the process, and what its summary says about the cycle."""

    process: Finished
    cycle_seconds: float
    read_seconds: float
    kizen_requests: int
    kizen_writes: int
    calendar_requests: int


def measured(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> Finished:
    """Runs ``command`` to its end; a non-zero exit raises with the output's tail."""
    with tempfile.TemporaryFile() as output:
        began = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin.encode())
            process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{text[-3000:]}")
    return Finished(seconds, usage.ru_maxrss / 1024, text)  # ru_maxrss is in KiB on Linux


def caldav_source(url: str, user: str) -> str:
    """A CalDAV source's lines (the password file ``password`` holds anything: Radicale ignores it)."""
    return (
        f'[[sources]]\nname = "bench"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{url}"\n'
        f'username = "{user}"\npassword_file = "password"\nallow_private_network = true\n'
    )


def ics_source(path: str) -> str:
    """An ICS file source's lines."""
    return f'[[sources]]\nname = "bench"\ntype = "ics"\nowner = "ada@example.com"\nurl = "{path}"\n'


def write_config(folder: Path, sources: str, *, kizen: str = SANDBOX, sync: str = "") -> Path:
    """``folder``/config.toml: ``kizen`` (the in-process sandbox by default), the default mappings,
    ada@example.com's team, ``sync``'s extra lines and the sources."""
    path = folder / "config.toml"
    path.write_text(
        f'{kizen}[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        f'internal_domains = ["example.com"]\n{sync}{sources}'
    )
    return path


def syncd_python() -> Path:
    """An interpreter with syncd's dependencies and nothing else: ``benchmarks/.venv-syncd``, made
    (with pip, from this checkout's pyproject.toml) on the first run and again when it changes.
    The code run is still a checkout's (``PYTHONPATH``), not the copy installed there."""
    python = VENV / "bin" / "python"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / "pyproject.sha256"
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"installing syncd's dependencies alone into {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
        stamp.write_text(wanted)
    return python


def syncd_once(folder: Path, code: Path = ROOT) -> SyncdRun:
    """``syncd run --once`` on ``folder``/config.toml with the checkout ``code`` (this one by default)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [str(syncd_python()), "-m", "syncd", "--log-format", "json", "--config", str(folder / "config.toml")]
    done = measured([*command, "run", "--once"], cwd=folder, env=env)
    summaries = [record["summary"] for record in _records(done.output) if "summary" in record]
    cycle = next((s for s in summaries if "cycle" in s), {})
    sources = [s for s in summaries if "source" in s]
    return SyncdRun(
        done,
        cycle_seconds=float(cycle.get("seconds", -1)),
        read_seconds=sum(float(s.get("seconds", 0)) for s in sources),
        kizen_requests=int(cycle.get("kizen_requests", 0)),
        kizen_writes=sum(int(s.get(kind, 0)) for s in sources for kind in KIZEN_WRITES),
        calendar_requests=int(cycle.get("calendar_requests", 0)),
    )


def _records(output: str) -> list[dict[str, Any]]:
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records

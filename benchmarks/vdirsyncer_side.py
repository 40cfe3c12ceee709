"""vdirsyncer, the yardstick of the side-by-side benchmark: found or installed, configured, run whole.

vdirsyncer (0.19 or later) syncs one CalDAV account into a folder (its ``filesystem`` storage),
every collection the server lists. It is the one this interpreter imports when it can (the test
extra has it); else it is installed once, with pip, into ``benchmarks/.venv-vdirsyncer`` and run
from there. ``vdirsyncer discover`` is run before each first sync and is not timed.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.processes import Finished, measured

VENV = Path(__file__).resolve().parent / ".venv-vdirsyncer"
WANTED = "vdirsyncer>=0.19"


def vdirsyncer_python() -> Path:
    """An interpreter that imports vdirsyncer 0.19 or later: this one, else the benchmarks' own venv."""
    try:
        major, minor = (int(part) for part in importlib.metadata.version("vdirsyncer").split(".")[:2])
        if (major, minor) >= (0, 19):
            return Path(sys.executable)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"vdirsyncer not importable here: installing {WANTED} into {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", WANTED], check=True)
    return python


def vdirsyncer_version(python: Path) -> str:
    found = subprocess.run(
        [str(python), "-c", "import vdirsyncer; print(vdirsyncer.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return found.stdout.strip()


class Vdirsyncer:
    """vdirsyncer on a config of its own in ``folder``: a CalDAV account into ``folder``/calendars."""

    def __init__(self, python: Path, folder: Path, url: str, user: str) -> None:
        self.python, self.folder = python, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "vdirsyncer.conf"
        self.config.write_text(
            f'[general]\nstatus_path = "{folder / "status"}/"\n'
            '[pair bench]\na = "bench_caldav"\nb = "bench_folder"\ncollections = ["from a"]\n'
            f'[storage bench_caldav]\ntype = "caldav"\nurl = "{url}"\nusername = "{user}"\npassword = "unused"\n'
            f'[storage bench_folder]\ntype = "filesystem"\npath = "{folder / "calendars"}/"\nfileext = ".ics"\n'
        )

    def reset(self) -> None:
        """Forgets every sync (status and folder) and discovers the collections again, answering yes."""
        for kept in ("status", "calendars"):
            shutil.rmtree(self.folder / kept, ignore_errors=True)
        (self.folder / "calendars").mkdir()
        self._run("discover", stdin="y\n" * 8)

    def sync(self) -> Finished:
        return self._run("sync")

    def items(self) -> int:
        """How many objects the folder holds."""
        return sum(1 for _ in (self.folder / "calendars").rglob("*.ics"))

    def _run(self, command: str, stdin: str | None = None) -> Finished:
        env = {**os.environ, "VDIRSYNCER_CONFIG": str(self.config)}
        return measured([str(self.python), "-m", "vdirsyncer", command], cwd=self.folder, env=env, stdin=stdin)

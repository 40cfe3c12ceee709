"""A state store that cannot be opened, is written by another process, or fills up, through the
command line: one line naming the file and what to do, exit 2 (cannot open) or 1 (mid-run), no
traceback; and a later run with the cause gone converges with no duplicate activity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.sandbox import Sandbox, load_world
from syncd.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def one_line(result: Result) -> str:
    """The command's whole output, asserted to be one line, with no exception escaping."""
    assert isinstance(result.exception, SystemExit), result.exception  # never a raw error
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def with_state(config: Path, state: str) -> Path:
    text = config.read_text().replace('state = ".syncd/state.sqlite"', f'state = "{state}"')
    config.write_text(text)
    return config


def test_a_state_path_that_cannot_be_made_is_one_line_and_exit_2_from_every_command(config: Path) -> None:
    (config.parent / "blocker").write_text("a file where the state's folder should be")
    with_state(config, "blocker/state.sqlite")
    state = config.parent / "blocker" / "state.sqlite"
    for command in (["run", "--once"], ["run"], ["status"], ["conflicts", "list"], ["conflicts", "resolve", "1"]):
        result = invoke(config, *command, *(["--keep", "crm"] if "resolve" in command else []))
        assert result.exit_code == 2, (command, result.output)
        line = one_line(result)
        assert line.startswith(f"syncd: state store {state}: cannot make its folder"), line
        assert "set [sync] state to another path" in line


def as_another_user(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs ``command`` as a user who does not own ``cwd`` (nobody, when the tests run as root,
    who bypasses permissions); it inherits this interpreter and the worktree on its path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can read but not write (tmp_path is private to this user)."""
    folder = Path(tempfile.mkdtemp(prefix="syncd-perm-"))
    try:
        shutil.copytree(ROOT / "examples", folder / "examples")
        shutil.copytree(ROOT / "mappings", folder / "mappings")
        (folder / "kizen").mkdir(mode=0o777)
        (folder / "kizen").chmod(0o777)  # the sandbox's data stays writable: only the state is not
        text = (ROOT / "config.example.toml").read_text()
        text = text.replace('data = ".syncd/sandbox.sqlite"', 'data = "kizen/sandbox.sqlite"')
        (folder / "config.toml").write_text(text.replace('state = ".syncd/state.sqlite"', 'state = "state/s.sqlite"'))
        (folder / "state").mkdir()
        for path in [folder, *folder.rglob("*")]:
            if path.name != "kizen":
                path.chmod(0o755 if path.is_dir() else 0o644)
        if os.geteuid() != 0:  # the owner can write what is 0755; make it 0555 for them
            (folder / "state").chmod(0o555)
        yield folder
    finally:
        (folder / "state").chmod(0o755)
        shutil.rmtree(folder)


def test_a_state_folder_or_file_this_user_cannot_write_is_one_line_and_exit_2(shared_folder: Path) -> None:
    syncd = [sys.executable, "-m", "syncd", "--config", "config.toml"]
    state = shared_folder / "state" / "s.sqlite"
    for ready in ("no state yet", "a state made by another user"):
        if ready != "no state yet":
            (shared_folder / "state").chmod(0o755)
            StateStore(state).close()
            state.chmod(0o444)
            if os.geteuid() != 0:
                (shared_folder / "state").chmod(0o555)
        for command in (["run", "--once"], ["status"], ["conflicts", "list"]):
            done = as_another_user(syncd + command, shared_folder)
            assert done.returncode == 2, (ready, command, done.stderr)
            assert "Traceback" not in done.stderr and done.stdout == ""
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"syncd: state store {state}: "), (ready, done.stderr)
            assert "this user cannot write it or its folder; fix the permissions" in lines[0]


HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO lookups (kind, key, value) VALUES ('holder', 'x', 'x')")
print("held", flush=True)
time.sleep(float(sys.argv[2]))  # the other process's write transaction lasts this long
db.execute("COMMIT")
print(time.monotonic(), flush=True)
"""


def test_a_sync_waits_for_another_process_writing_the_state(config: Path) -> None:
    state = config.parent / ".syncd" / "state.sqlite"
    StateStore(state).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state), "3"], stdout=subprocess.PIPE, text=True, encoding="utf-8"
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    began = time.monotonic()
    result = invoke(config, "run", "--once")
    ended = time.monotonic()
    released = float(holder.stdout.readline())
    holder.stdout.close()
    assert holder.wait(timeout=30) == 0
    assert result.exit_code == 0 and "activities created" in result.output, result.output
    assert began + 2 < released < ended  # it met the other writer and waited it out


def activity_ids(folder: Path) -> list[str]:
    with Sandbox(load_world(), data=folder / ".syncd" / "sandbox.sqlite") as box:
        return [str(a["id"]) for a in box.service.list_scheduled({}, 0, 1000)[1]]


def test_a_full_state_store_fails_the_run_cleanly_and_the_next_run_converges(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own "database or disk is full" (PRAGMA max_page_count), at every point of a sync:
    the state store may grow by 0, 1, 2... pages in the first run, then has room again."""
    opened = StateStore.__init__
    budget: list[int | None] = [None]

    def limited(self: StateStore, path: Path | str, busy_timeout: float = 10.0) -> None:
        opened(self, path, busy_timeout)
        if budget[0] is not None:
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {pages + budget[0]}")

    monkeypatch.setattr(StateStore, "__init__", limited)
    pristine = tmp_path / "pristine"
    shutil.copytree(config.parent, pristine)
    StateStore(pristine / ".syncd" / "state.sqlite").close()  # migrated: the budget is the sync's
    failed = 0
    for pages in range(100):
        folder = tmp_path / f"budget-{pages}"
        shutil.copytree(pristine, folder)
        budget[0] = pages
        first = invoke(folder / "config.toml", "run", "--once")
        budget[0] = None
        assert isinstance(first.exception, SystemExit | None), first.exception  # never a raw error
        if first.exit_code == 0:
            break
        failed += 1
        assert first.exit_code == 1, first.output
        last = first.output.strip().splitlines()[-1]
        assert last == (
            f"syncd: state store {folder / '.syncd' / 'state.sqlite'}: database or disk is full: free space on"
            " its file system; nothing was half-written, the next run catches up"
        )
        again = invoke(folder / "config.toml", "run", "--once")
        assert again.exit_code == 0, again.output
        assert invoke(folder / "config.toml", "run", "--once").output == (
            "nothing to do: calendars and Kizen are in step\n"
        )
        made = activity_ids(folder)
        state = StateStore(folder / ".syncd" / "state.sqlite")
        paired = [p.activity_id for p in state.pairings()]
        state.close()
        odd = sorted(set(made) ^ set(paired))
        assert sorted(made) == sorted(paired) and len(set(made)) == len(made), (pages, odd)  # no duplicate, none lost
    assert failed >= 3  # the store filled up at several points of the sync before one budget sufficed
    assert len(activity_ids(folder)) == len(made)

"""No input, server answer or configuration ends in a Python traceback on the terminal.

The real command runs as a process (``python -m syncd``), so its stderr is exactly what a user
sees, with logging configured as the command configures it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.service.serving import LoopbackServer
from tests.secretfiles import write_secret

ROOT = Path(__file__).resolve().parents[2]
BREAK_THE_CYCLE = """
import sys
import syncd.runner

def run(self, **options):
    raise RuntimeError("the cycle broke in a new way")

syncd.runner.Cycle.run = run
from syncd.cli import main
sys.argv = ["syncd", *sys.argv[1:]]
main()
"""


def syncd(*args: str, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the command as a user would; ``code`` replaces ``-m syncd`` (to break something inside)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "syncd"]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_an_unforeseen_exception_is_one_line_exit_1_and_its_traceback_only_with_v(config: Path) -> None:
    quiet = syncd("run", "--once", cwd=config.parent, code=BREAK_THE_CYCLE)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        "syncd: unexpected error: RuntimeError: the cycle broke in a new way (run with -v for the traceback)"
    ]
    assert "Traceback" not in quiet.stdout
    verbose = syncd("-v", "run", "--once", cwd=config.parent, code=BREAK_THE_CYCLE)
    assert verbose.returncode == 1
    assert verbose.stderr.count("Traceback (most recent call last)") == 1
    assert verbose.stderr.splitlines()[-1].startswith("syncd: unexpected error: RuntimeError")


def test_the_wrapper_names_an_unforeseen_exception_and_keeps_syncd_exit_codes(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import syncd.runner

    def broken(self: Any, **options: Any) -> Any:
        raise KeyError("DTSTART")

    monkeypatch.setattr(syncd.runner.Cycle, "run", broken)
    result = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output == "syncd: unexpected error: KeyError: 'DTSTART' (run with -v for the traceback)\n"
    missing = CliRunner().invoke(cli, ["--config", str(config.parent / "missing.toml"), "run", "--once"])
    assert missing.exit_code == 2  # a configuration problem is still one


def test_an_unforeseen_message_holding_a_whole_answer_is_cut_to_one_short_line(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import syncd.runner

    def broken(self: Any, **options: Any) -> Any:
        raise ValueError("<html>\n" + "x" * 1_000_000 + "\n</html>")

    monkeypatch.setattr(syncd.runner.Cycle, "run", broken)
    result = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
    (line,) = result.output.splitlines()
    assert line.startswith("syncd: unexpected error: ValueError: <html> xxx") and len(line) < 700
    assert "characters left out" in line


# --- seen 14: the caldav library logs a server's non-XML answer whole ---------------------------

BIG = 5 * 1024 * 1024


def not_xml(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A "CalDAV server" answering every request with 5 MB that is not XML (a proxy's error page)."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    status = "207 Multi-Status" if environ["REQUEST_METHOD"] in ("PROPFIND", "REPORT") else "200 OK"
    body = b"<html><body>" + b"x" * BIG + b"</body></html>"
    start_response(status, [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server() -> Iterator[str]:
    loopback = LoopbackServer(not_xml, threads=2).start()
    try:
        yield loopback.url
    finally:
        loopback.stop()


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "-v"])
def test_a_huge_answer_that_is_not_xml_is_never_logged_whole(server: str, tmp_path: Path, verbose: bool) -> None:
    write_secret(tmp_path / "password", "secret\n")
    (tmp_path / "config.toml").write_text(
        '[kizen.sandbox]\ndata = "sandbox.sqlite"\n'
        f'[sync]\nstate = "state.sqlite"\nmappings = ["{ROOT / "mappings" / "default.toml"}"]\n'
        f'[[sources]]\nname = "dav"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "{server}/dav/"\n'
        'username = "ada"\npassword_file = "password"\nallow_private_network = true\n'
    )
    result = syncd(*(["-v"] if verbose else []), "run", "--once", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert len(result.stderr) + len(result.stdout) < 200_000, result.stderr[:3000]
    assert "x" * 1001 not in result.stderr
    if not verbose:
        assert "Traceback" not in result.stderr

"""The project's promises to a newcomer: two quick-start lines, CI running the README's test line."""

from __future__ import annotations

import re
from pathlib import Path

import syncd
import syncd.kizen
import syncd.sandbox

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.DOTALL)]


def test_quick_start_is_two_lines_each_in_its_own_virtual_environment() -> None:
    lines = _quick_start_lines()
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    venvs = [re.match(r"python3 -m venv (\S+) && ", line) for line in lines]
    assert all(venvs) and len({m.group(1) for m in venvs if m}) == 2
    assert "pytest" in lines[1]


def test_ci_runs_the_readmes_test_line_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    test_line = _quick_start_lines()[1]
    pattern = re.search(r"grep -m1 -E '(.+?)' README\.md", ci)
    assert pattern, "CI must take its test line from the README"
    assert re.search(pattern.group(1), test_line)
    assert 'eval "$test_line"' in ci
    for check in ("ruff check syncd/", "mypy --strict syncd/"):
        assert check in ci


def test_public_names_are_exported() -> None:
    for module in (syncd, syncd.kizen, syncd.sandbox):
        assert sorted(module.__all__) == module.__all__
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)

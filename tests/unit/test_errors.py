"""The exception tree drawn in ``syncd/errors.py`` is the one the code has, and every error in it
is raised somewhere: a class that is drawn but never raised promises a failure mode that does not exist."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import syncd.errors as errors

ROOT = Path(__file__).resolve().parents[2]


def _drawn() -> dict[str, str]:
    """Class -> parent, as the module's docstring draws the tree."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        if line.strip() == "SyncdError":
            stack = [(line.index("S"), "SyncdError")]
            continue
        match = re.match(r"^([ |]*)\+- (\w+)", line)
        if match is None or not stack:
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1]
        stack.append((depth, match.group(2)))
    return parents


def test_the_tree_drawn_is_the_tree_the_code_has() -> None:
    real = {
        name: cls.__mro__[1].__name__
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.SyncdError) and cls is not errors.SyncdError
    }
    assert _drawn() == real


def test_every_error_in_the_tree_is_raised_somewhere() -> None:
    """Raised, or made to be raised: constructed, handed to a factory, or chosen by one."""
    lines = [
        line
        for path in sorted((ROOT / "syncd").rglob("*.py"))
        for line in path.read_text("utf-8").splitlines()
        if not re.search(r"^\s*class |\+- |isinstance|except |import ", line)
    ]
    never = [
        name
        for name in _drawn()
        if not any(re.search(rf"raise {name}\b|\b{name}\(|\({name}\b|= {name}\b|else {name}\b", x) for x in lines)
    ]
    assert never == []

"""``syncd`` as a real process with a kill point: ``python -m tests.faults.child [HOOKS] -- SYNCD ARGS``.

It installs the hooks, then runs ``python -m syncd`` in this same process (``runpy``), so the
code that runs and dies is syncd's own command line, with its in-process sandbox writing to its
SQLite file. A kill point is deterministic, where a timer would not be:

- ``--kill kizen:METHOD:K[:before]``: SIGKILL on the K-th Kizen request with that method (``*``
  for any), after the sandbox applied it (its answer is lost with the process), or before;
- ``--kill call:MODULE:QUALNAME:K[:before]``: the same around the K-th call of a function
  (``syncd.calendar.connectors.caldav:CalDAVSource.create``: the CalDAV object is made, nothing recorded);
- ``--state-pages N``: the state store may grow by N pages only (``PRAGMA max_page_count``), so
  SQLite answers "database or disk is full" as on a full file system.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import runpy
import signal
import sys
from collections.abc import Callable
from typing import Any


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _counting(original: Callable[..., Any], wanted: int, before: bool, matches: Callable[..., bool]) -> Any:
    seen = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        if not matches(*args, **kwargs):
            return original(*args, **kwargs)
        seen += 1
        if seen == wanted and before:
            _die()
        result = original(*args, **kwargs)
        if seen == wanted:
            _die()
        return result

    return wrapper


def kill_at(spec: str) -> None:
    """Installs one kill point (see the module's doc)."""
    kind, _, rest = spec.partition(":")
    parts = rest.split(":")
    before = parts[-1] == "before"
    if before:
        parts = parts[:-1]
    if kind == "kizen":
        from syncd.sandbox.app import SandboxApp

        method, count = parts
        SandboxApp.handle = _counting(  # type: ignore[method-assign]
            SandboxApp.handle, int(count), before, lambda _app, request: method in ("*", request.method)
        )
    elif kind == "call":
        module_name, qualname, count = parts
        owner: Any = importlib.import_module(module_name)
        *path, name = qualname.split(".")
        for step in path:
            owner = getattr(owner, step)
        setattr(owner, name, _counting(getattr(owner, name), int(count), before, lambda *_a, **_k: True))
    else:
        raise SystemExit(f"unknown kill point {spec!r}")


def limit_state(pages: int) -> None:
    """Lets the state store grow by ``pages`` pages beyond what it holds when opened."""
    from syncd import state

    opened = state.StateStore.__init__

    @functools.wraps(opened)
    def limited(self: state.StateStore, path: Any) -> None:
        opened(self, path)
        (count,) = self.db.execute("PRAGMA page_count").fetchone()
        self.db.execute(f"PRAGMA max_page_count = {int(count) + pages}")

    state.StateStore.__init__ = limited  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit("usage: python -m tests.faults.child [--kill SPEC] [--state-pages N] -- SYNCD ARGS")
    cut = argv.index("--")
    parser = argparse.ArgumentParser(prog="tests.faults.child")
    parser.add_argument("--kill", action="append", default=[])
    parser.add_argument("--state-pages", type=int)
    options = parser.parse_args(argv[:cut])
    for spec in options.kill:
        kill_at(spec)
    if options.state_pages is not None:
        limit_state(options.state_pages)
    sys.argv = ["syncd", *argv[cut + 1 :]]
    runpy.run_module("syncd", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

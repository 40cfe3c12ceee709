"""``syncd init``: a commented starter configuration that works as it is (the sandbox, no source).

It goes where syncd looks for a config without ``-c``: the XDG config folder by default
(``~/.config/syncd/config.toml``), with the state store and the sandbox's data in the XDG state
folder (``~/.local/state/syncd/``), since a config folder is no place for a database. Written to
a path of the user's choice, those paths are relative to it (``.syncd/`` beside it). The mapping
rules (syncd's default, every field explained) go beside it as ``mappings.toml``. Nothing that
exists is ever overwritten: an existing config is refused, an existing ``mappings.toml`` kept.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from syncd.config import config_home, state_home
from syncd.errors import ConfigError


def starter_text(state: str, sandbox: str) -> str:
    """The starter config, with its state store and sandbox data at these paths."""
    template = files("syncd").joinpath("templates", "config.toml").read_text("utf-8")
    return template.replace("{state}", state).replace("{sandbox}", sandbox)


def write_starter(path: Path | None) -> list[Path]:
    """Writes the starter config at ``path`` (the XDG one if None) and its mappings beside it;
    returns the files written.

    Raises:
        ConfigError: the config exists (it is never overwritten), or its folder cannot be made.
    """
    if path is None:
        path, folder = config_home() / "config.toml", state_home()
        state, sandbox = str(folder / "state.sqlite"), str(folder / "sandbox.sqlite")
    else:
        state, sandbox = ".syncd/state.sqlite", ".syncd/sandbox.sqlite"
    target = path.absolute()
    if target.exists():
        raise ConfigError([f"{target}: exists; syncd init never overwrites a config (give another PATH)"])
    mappings = target.with_name("mappings.toml")
    written = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as out:  # "x": a file made meanwhile is not overwritten
            out.write(starter_text(state, sandbox))
        written.append(target)
        if not mappings.exists():
            mappings.write_text(files("syncd").joinpath("templates", "mappings.toml").read_text("utf-8"), "utf-8")
            written.append(mappings)
    except OSError as exc:
        raise ConfigError([f"{exc.filename or target}: cannot write: {exc.strerror}"]) from exc
    return written

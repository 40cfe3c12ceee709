"""Fixtures for the command-line tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped example in a temp folder: sample calendars into the in-process sandbox."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"

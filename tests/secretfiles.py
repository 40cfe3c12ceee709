"""Secrets files as syncd wants them: readable by their owner only (it refuses any other mode)."""

from __future__ import annotations

from pathlib import Path


def write_secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path

"""syncd keeps people's calendars and Kizen's activities in step, both ways."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

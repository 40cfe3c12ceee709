"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), without a dependency.

Each message is one datagram to ``$NOTIFY_SOCKET`` (a path, or an abstract name when it starts
with '@'). Without that variable (not run by systemd) every call does nothing; a failed send is
logged at DEBUG and never stops the daemon, since the service manager's absence is no fault of
the sync.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*lines: str) -> bool:
    """Sends ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``...; True when sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode(), target)
    except OSError as error:
        log.debug("sd_notify to %s failed: %s", address, error)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None when no
    watchdog is asked for this process (``$WATCHDOG_PID``, when set, names another)."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None

"""Files only their owner can read: the state store, its lock and the sandbox's data.

The state holds people's calendar contents; SQLite and ``open`` create files with the process's
umask (0644 in a 0755 folder, typically). syncd sets the modes itself, whatever the umask: a
folder it makes is 0700, and each file it makes or opens for writing is 0600 (an existing file
is tightened too; one owned by someone else is left as it is).
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(folder: Path) -> None:
    """Makes ``folder`` and any missing parent, each 0700; folders already there are left alone."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)  # its errors as they were (a file in the way)
    for made in missing:
        os.chmod(made, FOLDER_MODE)


def private_file(path: Path) -> None:
    """Creates ``path`` empty if missing, and sets it to 0600."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    try:
        os.chmod(path, FILE_MODE)
    except PermissionError:
        pass  # another user's file: not ours to change


def private_database(path: Path) -> None:
    """Sets a SQLite file and its companions (-wal, -shm, -journal) that exist to 0600."""
    for companion in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
        try:
            os.chmod(companion, FILE_MODE)
        except (FileNotFoundError, PermissionError):
            pass

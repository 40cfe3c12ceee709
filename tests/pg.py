"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15, started on 127.0.0.1 on a free
port in a temporary folder, never as root (as the ``postgres`` user when the tests run as root),
its unix socket in that folder; one server per test session, a fresh database per test.

Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the tests check
syncd's behaviour, not the disk's, and a database per test stays cheap.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("SYNCD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "syncd"  # the server's superuser, trusted on loopback only


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One PostgreSQL server in a temporary folder; :meth:`stop` stops it and removes the folder."""

    def __init__(self) -> None:
        if not (BIN / "postgres").exists():
            raise RuntimeError(f"no PostgreSQL server at {BIN} (apt-get install postgresql; .ci/run does)")
        self.owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
        if self.owner is not None:
            os.chown(self.folder, self.owner.pw_uid, self.owner.pw_gid)
        self.data = self.folder / "data"
        self._as_owner(
            str(BIN / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        # loopback and this folder's socket only; the role "locked" must give its password
        with (self.data / "pg_hba.conf").open("w") as hba:
            hba.write(
                "local all all trust\nhost all locked 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
            )
        self.port = 0
        self.ids = itertools.count(1)
        for _attempt in range(5):  # a port found free may be taken before the server binds it
            self.port = _free_port()
            settings = (
                f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
            )
            log = self.folder / "server.log"
            started = self._as_owner(
                str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", settings, "-w", "-t", "60", "start",
                check=False,
            )  # fmt: skip
            if started.returncode == 0:
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start: {(self.folder / 'server.log').read_text()[-2000:]}")
        self.admin = psycopg.connect(self.url("postgres"), autocommit=True)

    def _as_owner(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.owner is not None else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False, cwd=self.folder)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")
        return done

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; its URL."""
        name = f"t{next(self.ids)}"
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE template0".encode())
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drops a test's database, ending any session still on it."""
        name = url.rsplit("/", 1)[1]
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    def stop(self) -> None:
        self.admin.close()
        self._as_owner(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

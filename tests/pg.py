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
        self.template = ""
        self.free: list[str] = []  # emptied databases of earlier tests, migrated
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

    def database(self, *, migrated: bool = False) -> str:
        """A new database, empty or (``migrated``) with syncd's schema already applied; its URL."""
        if migrated and not self.template:
            from syncd.state.postgres import PostgresStore

            self.admin.execute(b"CREATE DATABASE syncd_template TEMPLATE template0")
            PostgresStore(self.url("syncd_template")).close()
            self.template = "syncd_template"
        if migrated and self.free:
            return self.free.pop()
        name = f"t{next(self.ids)}"
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {self.template if migrated else 'template0'}".encode())
        return self.url(name)

    def recycle(self, url: str) -> None:
        """A test's database emptied for the next test (as new as a copy of the template, and
        much faster than dropping it: a drop waits for a checkpoint); dropped if its schema is
        not the current one (a test lost its state, or upgraded it)."""
        from syncd.state import migrations

        name = url.rsplit("/", 1)[1]
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid != pg_backend_pid()",
            [name],
        )
        with psycopg.connect(url, autocommit=True) as conn:
            done = conn.execute("SELECT to_regclass('syncd_migrations') IS NOT NULL").fetchone()
            applied = (
                [r[0] for r in conn.execute("SELECT name FROM syncd_migrations ORDER BY name")]
                if done and done[0]
                else []
            )
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'syncd_migrations'"
                )
            ]
            if sorted(applied) == sorted(migrations.KNOWN):
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY".encode())
                self.free.append(url)
                return
        self.drop(url)

    def drop(self, url: str) -> None:
        """Drops a test's database, ending any session still on it."""
        name = url.rsplit("/", 1)[1]
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    def stop(self) -> None:
        """Stops the server and removes its folder (once: a second call does nothing)."""
        self.admin.close()
        if not self.folder.exists():
            return
        self._as_owner(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

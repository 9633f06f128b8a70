"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary folder, a free port.

As root, PostgreSQL refuses to run, so the cluster then belongs to the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .server import free_port

SUPERUSER = "postgres"


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (Debian puts them under /usr/lib/postgresql/N/bin)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.insert(0, found)
    return Path(candidates[0]).resolve().parent if candidates else None


@dataclass
class PostgresCluster:
    bin_dir: Path
    folder: Path
    port: int

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresCluster:
        folder = Path(tempfile.mkdtemp(prefix="parley-pg-"))
        cluster = cls(bin_dir, folder, free_port())
        if os.geteuid() == 0:
            shutil.chown(folder, SUPERUSER)
        cluster._run("initdb", "-D", str(folder / "data"), "-U", SUPERUSER, "-A", "trust", "--no-sync", "-E", "UTF8")
        cluster.resume()
        return cluster

    def resume(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w",
                  "start")  # fmt: skip

    def pause(self) -> None:
        """Stop the server (fast shutdown: open connections are cut, as when a database goes down)."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        self.pause()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = "parley_" + secrets.token_hex(6)
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

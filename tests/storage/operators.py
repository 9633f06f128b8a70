"""Helpers for tests of a real server with a database: the ``parley`` operator commands, and a database for
each kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from tests.support.postgres import PostgresCluster


def database_env(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment naming a fresh database of ``kind`` (sqlite: a new data folder; postgresql: a new database)."""
    if kind == "sqlite":
        return {"PARLEY_DATA_DIR": tempfile.mkdtemp(prefix="parley-db-")}
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return {"PARLEY_DATABASE_URL": cluster.new_database()}


def parley(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a ``parley`` command on the database ``env`` names."""
    done = subprocess.run(
        [sys.executable, "-m", "parley.cli", *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


def create_key(env: dict[str, str], project: str, *limits: str) -> str:
    return parley(env, "keys", "create", "--project", project, *limits).stdout.strip()


def parley_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(parley(env, *args, "--json").stdout)

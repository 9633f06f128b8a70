"""Locate the shared protocol folder (PROTOCOL.md, fixtures) that lives beside the repository."""

import os
from pathlib import Path


def _repo_root() -> Path:
    # Walk up rather than count parents so the file can move within tests/ without breaking.
    for directory in Path(__file__).resolve().parents:
        if (directory / "pyproject.toml").is_file():
            return directory
    raise FileNotFoundError(f"no pyproject.toml above {__file__}")


def shared_dir() -> Path:
    """`$PARLEY_SHARED_DIR` if set, else `<repo root>/../shared`."""
    override = os.environ.get("PARLEY_SHARED_DIR")
    return Path(override) if override else _repo_root().parent / "shared"

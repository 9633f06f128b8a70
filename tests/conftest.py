"""Fixtures: real Parley servers (fast profile, real bundled models) started once per test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, running_server

TEST_KEYS = ("test-key-one", "test-key-two")


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with running_server("fast") as running:
        yield running


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[RunningServer]:
    with running_server("keyed", env={"PARLEY_API_KEYS": ",".join(TEST_KEYS)}) as running:
        yield running


@pytest.fixture(scope="session")
def qwen_server() -> Iterator[RunningServer]:
    """The default profile's language model (it decides for itself when to call a tool) with the fast
    profile's lighter speech models."""
    with running_server("qwen-llm", env={"PARLEY_LLM": "qwen2.5-coder-0.5b-instruct"}) as running:
        yield running

"""Fixtures: real Parley servers (fast profile, real bundled models) started once per test run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, running_server

TEST_KEYS = ("test-key-one", "test-key-two")
ROOT = Path(__file__).resolve().parents[1]
CLINIC_FACTS = ROOT / "benchmarks" / "grounding" / "clinic_facts.csv"
BAKERY_FACTS = ROOT / "tests" / "data" / "knowledge" / "bakery.md"


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with running_server("fast") as running:
        yield running


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[RunningServer]:
    with running_server("keyed", env={"PARLEY_API_KEYS": ",".join(TEST_KEYS)}) as running:
        yield running


@pytest.fixture(scope="session")
def default_server() -> Iterator[RunningServer]:
    """The multilingual profile (Whisper base, Qwen2.5-0.5B, Kokoro) with two knowledge bases: the clinic
    sheet (every session's default) and the bakery sheet."""
    knowledge = ["--knowledge", f"clinic={CLINIC_FACTS}", "--knowledge", f"bakery={BAKERY_FACTS}"]
    with running_server("default-knowledge", env={"PARLEY_PROFILE": "default"}, args=knowledge) as running:
        yield running


@pytest.fixture(scope="session")
def qwen_server() -> Iterator[RunningServer]:
    """The default profile's language model (it decides for itself when to call a tool) with the fast
    profile's lighter speech models."""
    with running_server("qwen-llm", env={"PARLEY_LLM": "qwen2.5-coder-0.5b-instruct"}) as running:
        yield running

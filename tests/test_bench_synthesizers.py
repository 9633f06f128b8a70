"""``parley bench synthesizers`` end to end: a short run on the shared transcripts gives a sane, complete report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from parley.bench.synthesizers import first_piece
from tests.conformance.paths import shared_dir


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLEY_SHARED_DIR": str(shared_dir())}
    command = [sys.executable, "-m", "parley.cli", "bench", "synthesizers", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_first_piece_is_cut_where_the_server_cuts_it() -> None:
    assert first_piece("The date is today, the twenty-third.", 4) == "The date is today,"
    assert first_piece("the earliest book printed with movable types", 4) == "the earliest book printed"
    assert first_piece("the earliest book printed with movable types", 3) == "the earliest book"
    assert first_piece("Printing, in the only sense with which we are at present concerned,", 3) == (
        "Printing, in the only"
    )
    assert first_piece("pause", 4) == "pause"


def test_short_run_reports_each_profile_and_folder(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = _bench(
        "--profile", "fast", "--profile", "default", "--speech", "ljspeech_en", "--speech", "commands_fr",
        "--limit", "2", "--json-out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert [(r["profile"], r["voice"], r["folder"]) for r in results] == [
        ("fast", "piper en_US-joe-medium", "ljspeech_en"),
        ("fast", "espeak fr+f3", "commands_fr"),
        ("default", "kokoro af_heart", "ljspeech_en"),
        ("default", "kokoro ff_siwis", "commands_fr"),
    ]
    for r in results:
        assert r["texts"] == 2
        assert 0 < r["first_piece_ms_p50"] <= r["first_piece_ms_p95"] < 60_000
        assert 0 < r["real_time_factor"] < 5
    by_run = {(r["profile"], r["folder"]): r for r in results}
    # LJSpeech's sentences start with a piece of the voice's first-piece size ("Printing, in the only": a first
    # piece does not end on "the"), shorter for Piper than for Kokoro.
    assert by_run["fast", "ljspeech_en"]["first_piece_words_p50"] == 3.5
    assert by_run["default", "ljspeech_en"]["first_piece_words_p50"] == 4
    assert by_run["default", "ljspeech_en"]["first_piece_audio_ms_p50"] > 500
    assert "| default | kokoro af_heart | ljspeech_en | 2 |" in run.stdout


def test_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text("")
    run = _bench("--speech", str(tmp_path))
    assert run.returncode == 2
    assert "no utterances" in run.stderr

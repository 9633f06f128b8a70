"""``parley bench recognizers`` end to end: a short run on real recordings gives a sane, complete report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conformance.paths import shared_dir


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLEY_SHARED_DIR": str(shared_dir())}
    command = [sys.executable, "-m", "parley.cli", "bench", "recognizers", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_short_run_reports_each_recognizer_and_folder(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = _bench(
        "--recognizer", "whisper-tiny.en", "--recognizer", "whisper-base",
        "--speech", "commands_en", "--speech", "commands_fr", "--limit", "2", "--json-out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert [(r["recognizer"], r["folder"]) for r in results] == [
        ("whisper-tiny.en", "commands_en"),
        ("whisper-tiny.en", "commands_fr"),
        ("whisper-base", "commands_en"),
        ("whisper-base", "commands_fr"),
    ]
    for r in results:
        assert r["clips"] == 2
        assert 0 < r["ms_p50"] < 60_000 and 0 < r["ms_mean"] < 60_000
        assert r["audio_s_mean"] > 0.5
    by_run = {(r["recognizer"], r["folder"]): r for r in results}
    # English recordings are heard; French ones by the multilingual model only, and as French.
    assert by_run["whisper-base", "commands_en"]["wer"] < 0.5
    assert by_run["whisper-tiny.en", "commands_fr"]["wer"] > by_run["whisper-base", "commands_fr"]["wer"]
    assert by_run["whisper-base", "commands_fr"]["other_language"] == 0
    assert by_run["whisper-tiny.en", "commands_en"]["other_language"] is None
    assert "| whisper-base | commands_fr | 2 |" in run.stdout
    assert run.stderr.count("whisper-base commands_fr/") == 2  # one line per clip


def test_unknown_recognizer_is_refused() -> None:
    run = _bench("--recognizer", "whisper-huge")
    assert run.returncode == 2
    assert "unknown recognizer whisper-huge" in run.stderr


def test_a_folder_without_utterances_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text("")
    run = _bench("--recognizer", "whisper-tiny.en", "--speech", str(tmp_path))
    assert run.returncode == 2
    assert "no utterances" in run.stderr

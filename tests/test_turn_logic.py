"""Turn decisions and clause cutting: the pure logic, fed made-up probabilities and text."""

from __future__ import annotations

import pytest

from parley.realtime.session_config import TurnDetection
from parley.voice.clauses import ClauseChunker
from parley.voice.turns import DEFAULT_PREFIX_PADDING_MS, EndOfTurnQuestion, TurnEvent, TurnTracker

FRAME_MS = 32


def _run(tracker: TurnTracker, probabilities: list[float], answer: float | None = None) -> list[object]:
    decisions: list[object] = []
    for index, probability in enumerate(probabilities):
        decision = tracker.feed(probability, (index + 1) * FRAME_MS)
        if isinstance(decision, EndOfTurnQuestion) and answer is not None:
            decisions.append(decision)
            decision = tracker.answer(answer)
        if decision is not None:
            decisions.append(decision)
    return decisions


def test_server_vad_starts_with_prefix_padding_and_stops_after_the_silence() -> None:
    detection = TurnDetection(type="server_vad", prefix_padding_ms=100, silence_duration_ms=200).with_defaults()
    tracker = TurnTracker(detection, FRAME_MS)
    frames = [0.0] * 20 + [0.9] * 30 + [0.0] * 10
    events = [d for d in _run(tracker, frames) if isinstance(d, TurnEvent)]
    onset_ms = 20 * FRAME_MS
    assert events[0] == TurnEvent("speech_started", onset_ms - 100)
    assert events[1] == TurnEvent("speech_stopped", 50 * FRAME_MS)
    assert len(events) == 2


def test_a_single_click_is_not_a_turn_and_dips_inside_words_do_not_end_it() -> None:
    detection = TurnDetection(type="server_vad", silence_duration_ms=200).with_defaults()
    tracker = TurnTracker(detection, FRAME_MS)
    assert _run(tracker, [0.0, 0.9, 0.0, 0.0]) == []
    # 0.4 is under the threshold but inside the hysteresis band: the pause clock does not restart speech,
    # and a short dip does not reach the silence duration.
    decisions = _run(tracker, [0.9] * 5 + [0.1, 0.1] + [0.9] * 5 + [0.0] * 8)
    assert [d.kind for d in decisions if isinstance(d, TurnEvent)] == ["speech_started", "speech_stopped"]


def test_semantic_vad_ends_the_turn_when_the_model_is_confident() -> None:
    detection = TurnDetection(type="semantic_vad", eagerness="high").with_defaults()
    tracker = TurnTracker(detection, FRAME_MS)
    decisions = _run(tracker, [0.9] * 10 + [0.0] * 10, answer=0.9)
    kinds = [type(d).__name__ if not isinstance(d, TurnEvent) else d.kind for d in decisions]
    assert kinds == ["speech_started", "EndOfTurnQuestion", "speech_stopped"]


def test_semantic_vad_waits_when_unsure_until_its_ceiling() -> None:
    detection = TurnDetection(type="semantic_vad", eagerness="high").with_defaults()
    tracker = TurnTracker(detection, FRAME_MS)
    pause_frames = 2000 // FRAME_MS + 2
    decisions = _run(tracker, [0.9] * 10 + [0.0] * pause_frames, answer=0.1)
    questions = [d for d in decisions if isinstance(d, EndOfTurnQuestion)]
    stops = [d for d in decisions if isinstance(d, TurnEvent) and d.kind == "speech_stopped"]
    assert len(questions) >= 5  # asked again and again during the pause
    assert len(stops) == 1  # and the ceiling ends the turn anyway


def test_a_pause_is_reported_once_and_speech_after_it_resumes_the_turn() -> None:
    detection = TurnDetection(type="server_vad", silence_duration_ms=500).with_defaults()
    tracker = TurnTracker(detection, FRAME_MS, pause_ms=96)
    # Speech, a 160 ms pause (past 96, short of 500), more speech, then the silence that ends the turn.
    frames = [0.9] * 10 + [0.0] * 5 + [0.9] * 10 + [0.0] * 20
    events = [d for d in _run(tracker, frames) if isinstance(d, TurnEvent)]
    assert [e.kind for e in events] == ["speech_started", "pause", "resumed", "pause", "speech_stopped"]
    first_pause, resumed, last_pause, stopped = events[1:]
    assert first_pause.audio_ms == 10 * FRAME_MS  # where the voice stopped, not where the pause was noticed
    assert resumed.audio_ms == 16 * FRAME_MS
    assert last_pause.audio_ms == stopped.audio_ms == 25 * FRAME_MS


def test_no_pause_without_early_start_or_when_the_turn_ends_first() -> None:
    detection = TurnDetection(type="server_vad", silence_duration_ms=64).with_defaults()
    frames = [0.9] * 10 + [0.0] * 10
    for tracker in (TurnTracker(detection, FRAME_MS), TurnTracker(detection, FRAME_MS, pause_ms=96)):
        assert [d.kind for d in _run(tracker, frames) if isinstance(d, TurnEvent)] == [
            "speech_started",
            "speech_stopped",
        ]


def test_semantic_vad_reports_the_pause_before_asking_the_model() -> None:
    detection = TurnDetection(type="semantic_vad", eagerness="high").with_defaults()
    tracker = TurnTracker(detection, FRAME_MS, pause_ms=96)
    decisions = _run(tracker, [0.9] * 10 + [0.0] * 10, answer=0.9)
    kinds = [type(d).__name__ if not isinstance(d, TurnEvent) else d.kind for d in decisions]
    assert kinds == ["speech_started", "pause", "EndOfTurnQuestion", "speech_stopped"]


def _push(chunker: ClauseChunker, text: str) -> list[str]:
    """Add streamed text; the pieces it completes, with no deadline."""
    chunker.add(text)
    return list(iter(chunker.next_piece, None))


def test_first_clause_is_cut_early_and_sentences_after() -> None:
    chunker = ClauseChunker()
    pieces: list[str] = []
    for token in [
        "Well,",
        "let",
        "me",
        "see,",
        "I",
        "can",
        "help",
        "with",
        "that.",
        "It",
        "is",
        "18.5",
        "degrees",
        "today,",
        "sunny",
    ]:
        pieces += _push(chunker, token + " ")
    # The first comma past a few words cuts; later only a sentence end does; "18.5" is no sentence end.
    assert pieces == ["Well, let me see,", "I can help with that."]
    assert chunker.next_piece(final=True) == "It is 18.5 degrees today, sunny"


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("The date of the event is the last day of the year. ", "The date of the event"),
        ("The weather today is sunny and warm ", "The weather today is sunny"),
        ("I can't open a door that is locked ", "I can't open a door"),
        ("Sure. ", "Sure."),
        ("Ok, it is done now ", "Ok, it is done"),
        ("Le salon fait 1000 personnes. ", "Le salon fait 1000 personnes."),
        ("Set the timer to 5 minutes now ", "Set the timer to 5 minutes"),
    ],
)
def test_without_punctuation_the_first_clause_is_cut_after_a_few_words(text: str, first: str) -> None:
    chunker = ClauseChunker()
    pieces: list[str] = []
    for word in text.split(" "):
        pieces += _push(chunker, word + " ")
    assert pieces[0] == first


def test_a_fast_voice_starts_on_fewer_words() -> None:
    chunker = ClauseChunker(first_piece_words=3)
    pieces = [piece for word in ["The", "weather", "today", "is", "sunny"] for piece in _push(chunker, word + " ")]
    assert pieces == ["The weather today"]
    assert _push(ClauseChunker(first_piece_words=3), "Turn it to 5 degrees now ") == ["Turn it to 5 degrees"]


def test_the_second_clause_is_cut_early_too_so_it_is_ready_in_time() -> None:
    chunker = ClauseChunker()
    text = (
        "The weather in New York is consistently hot and humid, with a high of 122 degrees and a low of 79 "
        "degrees all through the long summer months that nobody there enjoys at all. "
    )
    pieces: list[str] = []
    for word in text.split(" "):
        pieces += _push(chunker, word + " ")
    assert pieces[:2] == ["The weather in New", "York is consistently hot and humid,"]
    # From the third piece on, only a sentence end (or a long clause) cuts.
    assert pieces[2:] == [text[len("The weather in New York is consistently hot and humid, ") :].strip()]


def test_a_piece_after_the_first_is_cut_in_time() -> None:
    chunker = ClauseChunker()
    assert _push(chunker, "Run part of time ") == ["Run part of time"]
    chunker.add("to focus on work or personal tasks. ")
    # Not on "or" (a glue word), though it fits too.
    assert chunker.next_piece(max_chars=20) == "to focus on work"
    assert chunker.next_piece(max_chars=20) == "or personal tasks."
    chunker.add("Then the next one")
    assert chunker.next_piece(max_chars=0) == "Then the"  # never fewer than two words
    assert chunker.next_piece(max_chars=0) is None  # "next" may go on: the rest waits for its words
    assert chunker.next_piece(max_chars=100, final=True) == "next one"


def test_the_first_piece_is_never_cut_for_time() -> None:
    chunker = ClauseChunker()
    chunker.add("The weather today is ")
    assert chunker.next_piece(max_chars=0) is None
    chunker.add("sunny ")
    assert chunker.next_piece(max_chars=0) == "The weather today is sunny"


def test_a_long_run_on_text_is_still_cut() -> None:
    chunker = ClauseChunker()
    pieces = _push(chunker, "word " * 100)
    assert pieces and all(len(piece) <= 180 for piece in pieces)


def test_semantic_vad_keeps_audio_before_the_speech_like_server_vad() -> None:
    detection = TurnDetection(type="semantic_vad", eagerness="high").with_defaults()
    tracker = TurnTracker(detection, FRAME_MS, pause_ms=96)
    decisions = _run(tracker, [0.0] * 20 + [0.9] * 10 + [0.0] * 10, answer=0.9)
    started = decisions[0]
    assert isinstance(started, TurnEvent) and started.kind == "speech_started"
    assert started.audio_ms == 20 * FRAME_MS - DEFAULT_PREFIX_PADDING_MS

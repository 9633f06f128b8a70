"""Knowledge grounding: how often the right fact is retrieved, and how often the answer carries it.

Each question of a question set (JSON Lines: ``question``, ``language``, ``fact_id``, ``key``) is asked in a
new text session of a server started with ``--knowledge`` on the matching fact sheet. Two rates per question
set:

- retrieval hit: the fact the answer needs is among the top-k facts for the question. Retrieval is
  deterministic, so it is computed here with the server's own code (:mod:`parley.knowledge`) on the same file;
- answer hit: the answer text holds the key value (a number, time, phone number or name), compared without
  case and with any run of spaces, dots, dashes or colons inside it accepted ("7:30" matches "7.30"); see
  :func:`key_pattern`.
With ``--no-knowledge`` the sessions open with ``?knowledge=`` (no base): the same questions, ungrounded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import websockets

from ..knowledge import load_library

TEXT_DELTAS = {"response.output_text.delta", "response.text.delta"}
DEFAULT_INSTRUCTIONS = (
    "You are the phone assistant of Larkspur Health, a network of clinics. Answer the caller's question in one "
    "or two short sentences."
)


@dataclass(frozen=True)
class Question:
    question: str
    language: str
    fact_id: str
    key: str


@dataclass
class Result:
    question: str
    language: str
    fact_id: str
    key: str
    retrieved: list[str]  # empty for a baseline question (no knowledge base)
    retrieval_hit: bool | None  # None for a baseline question
    answer: str
    answer_hit: bool
    seconds: float
    error: str | None = None


def load_questions(path: Path) -> list[Question]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Question(**json.loads(line)) for line in lines if line.strip()]


def key_pattern(key: str) -> re.Pattern[str]:
    """``key`` as a whole token; inside it any run of spaces, dots, dashes or colons stands for any other.

    A number is not matched by a percentage ("15" is not in "15%"), unless the key itself is one.
    """
    chunks = re.findall(r"\w+", key.casefold())
    body = r"[\s.:\-]*".join(re.escape(chunk) for chunk in chunks)
    end = r"\s*%" if key.rstrip().endswith("%") else r"(?![\w%])"
    return re.compile(rf"(?<!\w){body}{end}")


def answer_hit(answer: str, key: str) -> bool:
    return bool(key_pattern(key).search(answer.casefold()))


async def run(
    url: str,
    facts_path: Path,
    questions: list[Question],
    top_k: int,
    *,
    grounded: bool = True,
    instructions: str = DEFAULT_INSTRUCTIONS,
    max_output_tokens: int = 60,
    api_key: str | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    base = load_library([str(facts_path)], top_k).bases.popitem()[1]
    session_url = url if grounded else f"{url}{'&' if '?' in url else '?'}knowledge="
    results = []
    for question in questions:
        retrieved = [fact.id for fact in base.search(question.question)] if grounded else []
        started = time.perf_counter()
        try:
            answer, error = await _ask(session_url, question.question, instructions, max_output_tokens, api_key)
        except (OSError, websockets.WebSocketException) as exc:
            answer, error = "", f"{type(exc).__name__}: {exc}"
        result = Result(
            question=question.question,
            language=question.language,
            fact_id=question.fact_id,
            key=question.key,
            retrieved=retrieved,
            retrieval_hit=question.fact_id in retrieved if grounded else None,
            answer=answer,
            answer_hit=answer_hit(answer, question.key),
            seconds=round(time.perf_counter() - started, 3),
            error=error,
        )
        results.append(result)
        if on_result:
            on_result(result)
    return results


async def _ask(
    url: str, question: str, instructions: str, max_output_tokens: int, api_key: str | None
) -> tuple[str, str | None]:
    """One question in a new text session; the answer text and the server's error, if any."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:

        async def until(event_type: str) -> dict[str, Any]:
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "error":
                    raise _ServerError(event["error"].get("message", "error"))
                if event["type"] == event_type:
                    return event

        async def send(event: dict[str, Any]) -> None:
            await ws.send(json.dumps(event))

        try:
            await until("session.created")
            session = {
                "type": "realtime",
                "output_modalities": ["text"],
                "instructions": instructions,
                "max_output_tokens": max_output_tokens,
            }
            await send({"type": "session.update", "session": session})
            await until("session.updated")
            content = [{"type": "input_text", "text": question}]
            await send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                      "content": content}})  # fmt: skip
            await send({"type": "response.create"})
            text: list[str] = []
            while True:
                event = json.loads(await ws.recv())
                if event["type"] in TEXT_DELTAS:
                    text.append(event["delta"])
                elif event["type"] == "error":
                    return "".join(text), event["error"].get("message", "error")
                elif event["type"] == "response.done":
                    return "".join(text), None
        except _ServerError as exc:
            return "", str(exc)


class _ServerError(Exception):
    pass


def summary(results: list[Result]) -> dict[str, Any]:
    """Rates overall and per question language (retrieval rates are None for a baseline run)."""

    def rates(subset: list[Result]) -> dict[str, Any]:
        count = len(subset)
        grounded = all(r.retrieval_hit is not None for r in subset)
        retrieved = sum(bool(r.retrieval_hit) for r in subset) if grounded else None
        answered = sum(r.answer_hit for r in subset)
        return {
            "questions": count,
            "retrieval_hits": retrieved,
            "answer_hits": answered,
            "answer_hits_when_retrieved": sum(r.answer_hit for r in subset if r.retrieval_hit) if grounded else None,
            "retrieval_rate": round(retrieved / count, 3) if count and retrieved is not None else None,
            "answer_rate": round(answered / count, 3) if count else None,
            "errors": sum(r.error is not None for r in subset),
        }

    languages = sorted({r.language for r in results})
    return {"all": rates(results), **{lang: rates([r for r in results if r.language == lang]) for lang in languages}}


def markdown(label: str, results: list[Result]) -> str:
    lines = [
        f"| {label} | questions | retrieval hit (fact in top-k) | answer hit (key value in answer) | errors |",
        "|---|---|---|---|---|",
    ]
    for name, row in summary(results).items():
        count = row["questions"]
        retrieval = (
            "-" if row["retrieval_hits"] is None else f"{row['retrieval_hits']}/{count} ({row['retrieval_rate']:.0%})"
        )
        lines.append(
            f"| {name} | {count} | {retrieval} | {row['answer_hits']}/{count} ({row['answer_rate']:.0%}) | "
            f"{row['errors']} |"
        )
    return "\n".join(lines)


def report(results: list[Result], settings: dict[str, Any]) -> dict[str, Any]:
    return {"settings": settings, "summary": summary(results), "results": [asdict(r) for r in results]}

"""Time to first text delta over the WebSocket, with the prompt cache cold and warm.

- cold: each session gets instructions that start with a fresh random tag, so none of its prompt is in the
  server's KV cache and the whole prompt is evaluated;
- warm (new session): the server's default instructions, already cached by earlier sessions or warm-up;
- warm (next turn): the second question of a conversation, whose first turn is cached.
The clock runs from sending ``response.create`` to receiving the first text delta.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import websockets

QUESTIONS = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What do bees make?",
]
TEXT_DELTAS = {"response.output_text.delta", "response.text.delta"}


@dataclass
class Sample:
    seconds: float
    input_tokens: int
    cached_tokens: int


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        times = sorted(sample.seconds for sample in self.samples)
        return {
            "name": self.name,
            "runs": len(times),
            "p50_ms": round(statistics.median(times) * 1000),
            "p95_ms": round(_percentile(times, 0.95) * 1000),
            "min_ms": round(times[0] * 1000),
            "max_ms": round(times[-1] * 1000),
            "mean_input_tokens": round(statistics.mean(s.input_tokens for s in self.samples)),
            "mean_cached_tokens": round(statistics.mean(s.cached_tokens for s in self.samples)),
        }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run(url: str, runs: int, api_key: str | None = None) -> list[Series]:
    cold, warm_session, warm_turn = Series("cold"), Series("warm, new session"), Series("warm, next turn")
    for index in range(runs):
        question = QUESTIONS[index % len(QUESTIONS)]
        tag = secrets.token_hex(8)
        async with _Client(url, api_key) as client:
            await client.configure(f"[{tag}] You are a helpful assistant. Answer in one short sentence.")
            cold.samples.append(await client.ask(question))
        async with _Client(url, api_key) as client:
            await client.configure(None)
            warm_session.samples.append(await client.ask(question))
            warm_turn.samples.append(await client.ask("Thank you. And why is that?"))
    return [cold, warm_session, warm_turn]


class _Client:
    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._connect = websockets.connect(url, additional_headers=headers, max_size=None)
        self._ws: Any = None

    async def __aenter__(self) -> _Client:
        self._ws = await self._connect.__aenter__()
        await self._until("session.created")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._connect.__aexit__(*exc)

    async def configure(self, instructions: str | None) -> None:
        session: dict[str, Any] = {"type": "realtime", "output_modalities": ["text"], "max_output_tokens": 32}
        if instructions is not None:
            session["instructions"] = instructions
        await self._send({"type": "session.update", "session": session})
        await self._until("session.updated")

    async def ask(self, question: str) -> Sample:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
        await self._send({"type": "conversation.item.create", "item": item})
        await self._until("conversation.item.done")
        started = time.perf_counter()
        await self._send({"type": "response.create"})
        first = None
        while True:
            event = await self._next()
            if event["type"] in TEXT_DELTAS and first is None:
                first = time.perf_counter() - started
            if event["type"] == "response.done":
                usage = event["response"]["usage"]
                if first is None:
                    raise RuntimeError(f"response produced no text: {event['response']['status_details']}")
                return Sample(first, usage["input_tokens"], usage["input_token_details"]["cached_tokens"])

    async def _send(self, event: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(event))

    async def _next(self) -> dict[str, Any]:
        event = json.loads(await self._ws.recv())
        if event["type"] == "error":
            raise RuntimeError(f"server error: {event['error']}")
        return event

    async def _until(self, event_type: str) -> dict[str, Any]:
        while (event := await self._next())["type"] != event_type:
            pass
        return event


def markdown(label: str, series: list[Series]) -> str:
    lines = [
        f"| {label} | runs | p50 ms | p95 ms | min ms | max ms | prompt tokens | cached tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in series:
        row = s.summary()
        lines.append(
            f"| {row['name']} | {row['runs']} | {row['p50_ms']} | {row['p95_ms']} | {row['min_ms']} | "
            f"{row['max_ms']} | {row['mean_input_tokens']} | {row['mean_cached_tokens']} |"
        )
    return "\n".join(lines)


def report(series: list[Series]) -> dict[str, Any]:
    samples = {s.name: [asdict(sample) for sample in s.samples] for s in series}
    return {"series": [s.summary() for s in series], "samples": samples}

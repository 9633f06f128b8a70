"""How well the local models call tools: a fixed set of voice-agent requests, run on the engine directly.

For every request that a tool should serve, three runs: ``auto`` (does the model call, and the right
tool?), ``required`` (the right tool when it must call one?) and the tool named (forced). For requests no
tool serves, one ``auto`` run (does it answer in words?). Every call's arguments are checked: valid JSON,
and valid against the tool's parameters schema. Validity does not depend on machine load; timings do.

    python -m parley.bench.tool_calls --model smollm2-135m-instruct --json-out out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..engines.llama_local import LlamaCppModel
from ..engines.llama_weights import local_weights
from ..engines.llm import GenerationRequest, ToolCallDelta
from ..json_schema import arguments_problem

INSTRUCTIONS = "You are a helpful voice assistant for a small business. Keep your answers short."


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


TOOLS = [
    _tool(
        "get_weather",
        "Get the current weather in a city.",
        {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city"],
    ),
    _tool(
        "book_table",
        "Book a table at the restaurant.",
        {
            "people": {"type": "integer", "minimum": 1, "maximum": 20},
            "date": {"type": "string", "description": "YYYY-MM-DD"},
            "time": {"type": "string", "description": "HH:MM, 24-hour clock"},
            "name": {"type": "string"},
        },
        ["people", "time", "name"],
    ),
    _tool(
        "lookup_order",
        "Look up the status of a customer's order by its number.",
        {"order_number": {"type": "string", "pattern": "^[0-9]{4,8}$"}},
        ["order_number"],
    ),
    _tool(
        "transfer_call",
        "Transfer the caller to a department.",
        {
            "department": {"type": "string", "enum": ["sales", "billing", "support", "reception"]},
            "reason": {"type": "string"},
        },
        ["department"],
    ),
    _tool(
        "save_intake",
        "Save the caller's intake record once their details are known.",
        {
            "full_name": {"type": "string", "minLength": 1},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "symptoms": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
        },
        ["full_name", "age", "symptoms", "urgency"],
    ),
]
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}

# (request, the tool that serves it or None)
REQUESTS: list[tuple[str, str | None]] = [
    ("What's the weather like in Paris today?", "get_weather"),
    ("Is it raining in London right now?", "get_weather"),
    ("How cold is it in Oslo, in celsius?", "get_weather"),
    ("Tell me the temperature in Tokyo in fahrenheit.", "get_weather"),
    ("Do I need an umbrella in Seattle today?", "get_weather"),
    ("Book a table for four people at 19:30 tonight under the name Garcia.", "book_table"),
    ("I'd like to reserve a table for two at 8 pm, my name is Chen.", "book_table"),
    ("Can you get me a table for six on 2025-07-14 at 12:00? Name is Okafor.", "book_table"),
    ("Reserve dinner for 3 at 18:45, name Dubois.", "book_table"),
    ("We are a party of ten, can we come at 20:00? It's for Smith.", "book_table"),
    ("Where is my order 48213?", "lookup_order"),
    ("Can you check the status of order number 7730042?", "lookup_order"),
    ("My package 55190 hasn't arrived, what's going on?", "lookup_order"),
    ("Has order 120934 shipped yet?", "lookup_order"),
    ("I want to track order 9981.", "lookup_order"),
    ("I have a question about my invoice, can I talk to billing?", "transfer_call"),
    ("Please put me through to sales, I want to buy in bulk.", "transfer_call"),
    ("My device is broken, I need technical support.", "transfer_call"),
    ("Can I speak to someone at reception?", "transfer_call"),
    ("I was charged twice, transfer me to the billing team.", "transfer_call"),
    (
        "Please save my intake: I'm Maria Lopez, 42 years old, with a sore throat and a fever. It's fairly urgent.",
        "save_intake",
    ),
    ("Record this: John Park, age 67, chest pain and shortness of breath, high urgency.", "save_intake"),
    ("Save my details: Aiko Tanaka, 29, a mild headache, low urgency.", "save_intake"),
    ("Intake for Peter Novak, 8 years old, rash and itching, medium urgency. Please save it.", "save_intake"),
    ("Hello! How are you today?", None),
    ("Thank you, that's all I needed.", None),
    ("Tell me a short joke.", None),
    ("What are your opening hours in general?", None),
    ("What is two plus two?", None),
    ("Can you say good morning in French?", None),
    ("Who wrote Romeo and Juliet?", None),
    ("Goodbye!", None),
]


@dataclass
class Run:
    request: str
    mode: str
    expected: str | None
    called: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    problems: list[str | None] = field(default_factory=list)  # per call: None when its arguments are valid
    text: str = ""
    seconds: float = 0.0


async def run_one(llm: LlamaCppModel, request: str, expected: str | None, mode: str) -> Run:
    choice: Any = {"type": "function", "function": {"name": expected}} if mode == "named" else mode
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": request}]
    started = time.monotonic()
    stream = llm.generate(GenerationRequest(messages=messages, tools=TOOLS, tool_choice=choice, max_tokens=200))
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    text = ""
    async for delta in stream:
        if isinstance(delta, ToolCallDelta):
            if delta.name:
                names[delta.index] = delta.name
            arguments[delta.index] = arguments.get(delta.index, "") + delta.arguments
        else:
            text += delta
    run = Run(request, mode, expected, text=text, seconds=time.monotonic() - started)
    for index, name in sorted(names.items()):
        run.called.append(name)
        run.arguments.append(arguments.get(index, ""))
        run.problems.append(arguments_problem(SCHEMAS.get(name), arguments.get(index, "")))
    return run


def summarize(runs: list[Run]) -> dict[str, Any]:
    def rate(hits: int, total: int) -> dict[str, Any]:
        return {"hits": hits, "total": total, "rate": round(hits / total, 3) if total else None}

    calls = [problem for run in runs for problem in run.problems]
    tool_runs = {mode: [r for r in runs if r.mode == mode and r.expected] for mode in ("auto", "required", "named")}
    auto_tool = tool_runs["auto"]
    auto_none = [r for r in runs if r.mode == "auto" and not r.expected]
    return {
        "auto: called when a tool fits": rate(sum(bool(r.called) for r in auto_tool), len(auto_tool)),
        "auto: right tool when a tool fits": rate(sum(r.called[:1] == [r.expected] for r in auto_tool), len(auto_tool)),
        "auto: answered in words when no tool fits": rate(sum(not r.called for r in auto_none), len(auto_none)),
        "required: right tool": rate(
            sum(r.called[:1] == [r.expected] for r in tool_runs["required"]), len(tool_runs["required"])
        ),
        "named: called the named tool": rate(
            sum(r.called[:1] == [r.expected] for r in tool_runs["named"]), len(tool_runs["named"])
        ),
        "calls with valid JSON arguments": rate(
            sum(problem is None or not problem.startswith("not valid JSON") for problem in calls), len(calls)
        ),
        "calls with arguments valid against the schema": rate(sum(problem is None for problem in calls), len(calls)),
        "median seconds per run": round(sorted(r.seconds for r in runs)[len(runs) // 2], 2),
    }


async def bench(model_name: str) -> dict[str, Any]:
    path = await asyncio.to_thread(local_weights, model_name)
    llm = await asyncio.to_thread(LlamaCppModel, model_name, path, n_ctx=4096)
    runs: list[Run] = []
    try:
        for request, expected in REQUESTS:
            for mode in ("auto", "required", "named") if expected else ("auto",):
                runs.append(await run_one(llm, request, expected, mode))
    finally:
        await llm.close()
    return {"model": model_name, "summary": summarize(runs), "runs": [asdict(run) for run in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="catalog name of a local model")
    parser.add_argument("--json-out", help="write every run and the summary here")
    args = parser.parse_args()
    result = asyncio.run(bench(args.model))
    print(f"| measure | {args.model} |\n|---|---|")
    for measure, value in result["summary"].items():
        shown = f"{value['hits']}/{value['total']} ({value['rate']:.0%})" if isinstance(value, dict) else value
        print(f"| {measure} | {shown} |")
    if args.json_out:
        with open(args.json_out, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()

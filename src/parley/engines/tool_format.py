"""How a local model sees tools and tool calls: the Hermes format (``<tool_call>{"name", "arguments"}</tool_call>``).

Qwen2.5's chat template has it built in (tools in the system prompt, calls and ``<tool_response>`` turns);
for templates without tool support (SmolLM2) the same text is written into the messages here, so both
models are prompted, and parsed, alike.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"

_TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_FORMAT = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>"
)


# Small models given tool results in their native format tend to echo them back as JSON (Qwen2.5-Coder
# does, every time); this line after the results has them answer in words instead.
RESULTS_NOTE = "Now answer the user in plain words, using the tool results above."


def template_knows_tools(template: str) -> bool:
    """Whether a Jinja chat template renders ``tools`` and ``tool_calls`` itself."""
    return "tools" in template and "tool_calls" in template


def call_text(name: str, arguments: str) -> str:
    """One call as the model writes it (``arguments`` is a JSON object text)."""
    return f'{CALL_OPEN}\n{{"name": "{name}", "arguments": {arguments}}}\n{CALL_CLOSE}'


def call_key(name: str, arguments: str) -> tuple[str, str]:
    """A call's identity: its name and its arguments with key order and spacing ignored."""
    try:
        return name, json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return name, arguments


def answered_calls(messages: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The calls (``call_key``) made since the user last spoke whose results are in ``messages``."""
    since_user = messages
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            since_user = messages[index + 1 :]
            break
    results = {message.get("tool_call_id") for message in since_user if message["role"] == "tool"}
    return {
        call_key(call["function"]["name"], call["function"]["arguments"])
        for message in since_user
        for call in message.get("tool_calls") or ()
        if call.get("id") in results
    }


def for_template(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], native: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages (and tools, for a template that renders them) to give the chat template."""
    if native:
        shown = [_with_argument_objects(message) for message in messages]
        if shown and shown[-1]["role"] == "tool":
            shown.append({"role": "system", "content": RESULTS_NOTE})
        return shown, tools or None
    return _written_out(messages, tools), None


def _with_argument_objects(message: dict[str, Any]) -> dict[str, Any]:
    """Templates written for Hugging Face pass ``arguments`` through ``tojson``: they expect an object."""
    if not message.get("tool_calls"):
        return message
    calls = []
    for call in message["tool_calls"]:
        function = dict(call["function"])
        with contextlib.suppress(TypeError, ValueError):  # not JSON: shown as the string it is
            function["arguments"] = json.loads(function["arguments"])
        calls.append({**call, "function": function})
    return {**message, "tool_calls": calls}


def _written_out(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if tools:
        listing = "".join("\n" + json.dumps(tool) for tool in tools)
        described = f"{_TOOLS_PREAMBLE}{listing}{_TOOLS_FORMAT}"
        if messages and messages[0]["role"] == "system":
            out.append({"role": "system", "content": f"{messages[0]['content']}\n\n{described}"})
            messages = messages[1:]
        else:
            out.append({"role": "system", "content": described})
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [call_text(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
            text = "\n".join([message["content"], *calls] if message.get("content") else calls)
            out.append({"role": "assistant", "content": text})
        elif message["role"] == "tool":
            response = f"<tool_response>\n{message['content']}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n{response}"}
            else:
                out.append({"role": "user", "content": response})
        else:
            out.append(message)
    return out

"""Function calls in a response: what the model is offered, and the ``function_call`` output items it makes.

A response holds at most one message (first, if the model says anything) and then any number of calls,
each with its lifecycle: ``response.output_item.added`` → ``conversation.item.added`` →
``response.function_call_arguments.delta``... → ``.done`` (GA names the function) → ``conversation.item.done``
→ ``response.output_item.done``. A completed call's arguments always parse and match the tool's
``parameters`` schema: a call that does not is closed ``incomplete`` and fails the response.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engines.llm import EngineError, GenerationStats, ToolCallDelta
from ..ids import new_id
from ..json_schema import arguments_problem
from .conversation import Conversation
from .dialect import Dialect
from .items import Item
from .response_params import ResponseParams
from .session_config import FunctionChoice, FunctionTool

if TYPE_CHECKING:
    from .response import EventSink


class FunctionCallError(EngineError):
    """The model made a call that cannot be handed to the client (unknown tool, arguments off-schema)."""

    code = "invalid_function_call"


def tool_request(params: ResponseParams) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` for the engine, in the chat-completions shape; none when calls are off."""
    if not params.tools or params.tool_choice == "none":
        return {}
    tools = []
    for tool in params.tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters or {"type": "object"}}
        if tool.description:
            function["description"] = tool.description
        tools.append({"type": "function", "function": function})
    choice = params.tool_choice
    if isinstance(choice, FunctionChoice):
        return {"tools": tools, "tool_choice": {"type": "function", "function": {"name": choice.name}}}
    return {"tools": tools, "tool_choice": choice}


@dataclass
class _Call:
    item: Item
    output_index: int
    previous_item_id: str | None


class FunctionCallItems:
    """Turns tool-call deltas into ``function_call`` output items, appended to the response's ``output``."""

    def __init__(
        self,
        sink: EventSink,
        response_id: str,
        output: list[Item],
        conversation: Conversation | None,
        tools: list[FunctionTool],
    ) -> None:
        self._sink = sink
        self._response_id = response_id
        self._output = output
        self._conversation = conversation
        self._schemas = {tool.name: tool.parameters for tool in tools}

    async def write(self, deltas: AsyncIterator[ToolCallDelta], stats: GenerationStats) -> None:
        events = aiter(deltas)
        delta = await anext(events, None)
        while delta is not None:
            index = delta.index
            with self._call(delta.name, stats) as call:
                while delta is not None and delta.index == index:
                    self._append(call, delta.arguments)
                    delta = await anext(events, None)

    @contextlib.contextmanager
    def _call(self, name: str | None, stats: GenerationStats) -> Iterator[_Call]:
        if not name or name not in self._schemas:
            raise FunctionCallError(f"The model called a function that is not among the tools: {name!r}.")
        item = Item(id=new_id("item"), type="function_call", status="in_progress", call_id=new_id("call"))
        item.name, item.arguments = name, ""
        call = _Call(item, len(self._output), None)
        self._output.append(item)
        self._emit("response.output_item.added", call, item=item.render(self._sink.dialect))
        if self._conversation is not None:
            call.previous_item_id = self._conversation.insert(item)
            self._sink.item_added(item, call.previous_item_id)
        try:
            yield call
            problem = arguments_problem(self._schemas[name], item.arguments or "")
            if problem is None:
                item.status = "completed"
            elif stats.finish_reason == "length":
                item.status = "incomplete"  # cut off by max_output_tokens: the response says so
            else:
                item.status = "incomplete"
                raise FunctionCallError(f"The model's call to '{name}' is unusable: its arguments are {problem}.")
        except BaseException:
            item.status = "incomplete"
            raise
        finally:
            self._close(call)

    def _append(self, call: _Call, fragment: str) -> None:
        if not fragment:
            return
        call.item.arguments = (call.item.arguments or "") + fragment
        self._emit("response.function_call_arguments.delta", call, item_id=call.item.id, delta=fragment)

    def _close(self, call: _Call) -> None:
        item = call.item
        named = {"name": item.name} if self._sink.dialect is Dialect.GA else {}
        self._emit("response.function_call_arguments.done", call, item_id=item.id, arguments=item.arguments, **named)
        if self._conversation is not None:
            self._sink.item_done(item, call.previous_item_id)
        self._emit("response.output_item.done", call, item=item.render(self._sink.dialect))

    def _emit(self, type: str, call: _Call, **fields: Any) -> None:
        if type.startswith("response.function_call_arguments"):
            fields["call_id"] = call.item.call_id
        self._sink.emit(type, response_id=self._response_id, output_index=call.output_index, **fields)

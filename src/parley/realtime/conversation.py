"""The default conversation: ordered items, edits by id, and the chat context a language model sees."""

from __future__ import annotations

from typing import Any

from ..ids import new_id
from .errors import RealtimeError
from .items import Item


class Conversation:
    def __init__(self) -> None:
        self.id = new_id("conv")
        self._items: list[Item] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> list[Item]:
        return list(self._items)

    @property
    def last_item_id(self) -> str | None:
        return self._items[-1].id if self._items else None

    def get(self, item_id: str, param: str = "item_id") -> Item:
        for item in self._items:
            if item.id == item_id:
                return item
        raise RealtimeError(f"Item with item_id not found: {item_id}", code="item_not_found", param=param)

    def has(self, item_id: str) -> bool:
        return any(item.id == item_id for item in self._items)

    def insert(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert after ``previous_item_id`` (``"root"`` = first, None = last); return the actual predecessor."""
        if self.has(item.id):
            raise RealtimeError(
                f"Item with id '{item.id}' already exists in the conversation.",
                code="item_id_already_exists",
                param="item.id",
            )
        if item.type == "function_call_output" and not self._has_call(item.call_id or ""):
            raise RealtimeError(
                f"No function_call with call_id '{item.call_id}' exists in the conversation.",
                code="invalid_value",
                param="item.call_id",
            )
        if previous_item_id is None:
            index = len(self._items)
        elif previous_item_id == "root":
            index = 0
        else:
            index = self._index(previous_item_id, "previous_item_id") + 1
        self._items.insert(index, item)
        return self._items[index - 1].id if index > 0 else None

    def delete(self, item_id: str) -> None:
        self._items.pop(self._index(item_id, "item_id"))

    def previous_id(self, item_id: str) -> str | None:
        index = self._index(item_id, "item_id")
        return self._items[index - 1].id if index > 0 else None

    def _index(self, item_id: str, param: str) -> int:
        for index, item in enumerate(self._items):
            if item.id == item_id:
                return index
        raise RealtimeError(f"Item with item_id not found: {item_id}", code="item_not_found", param=param)

    def _has_call(self, call_id: str) -> bool:
        return any(item.type == "function_call" and item.call_id == call_id for item in self._items)


def chat_messages(instructions: str, items: list[Item]) -> list[dict[str, Any]]:
    """Render items as OpenAI chat messages; audio counts by its transcript, consecutive calls merge.

    Calls left incomplete (cut off, or failed for broken arguments) never happened as far as the model
    is concerned: they, and any output a client sent for them, are left out.
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    unfinished = {item.call_id for item in items if item.type == "function_call" and item.status == "incomplete"}
    for item in items:
        if item.type in {"function_call", "function_call_output"} and item.call_id in unfinished:
            continue
        if item.type == "function_call":
            function = {"name": item.name, "arguments": item.arguments}
            call = {"id": item.call_id, "type": "function", "function": function}
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("tool_calls"):
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif item.type == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output or ""})
        else:
            text = "\n".join(part.plain_text() for part in item.content if part.plain_text())
            if text:
                messages.append({"role": item.role, "content": text})
    return messages

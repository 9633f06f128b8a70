"""Saved KV-cache states of one llama.cpp context, found again by the longest shared token prefix.

Only the sequence's KV cells are saved (``llama_state_seq_*``), a few kB per token for the bundled models;
llama-cpp-python's own ``save_state`` also copies a logits matrix of hundreds of MB, too much to keep per turn.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass

import llama_cpp

_SEQUENCE = 0


@dataclass(frozen=True)
class KVState:
    tokens: tuple[int, ...]
    data: bytes


def common_prefix(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> int:
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common


class PrefixStateCache:
    """A least-recently-used store of KV states, bounded in bytes; shared by a model's contexts (thread-safe), so
    a conversation finds its last turn whichever context serves the next one."""

    def __init__(self, capacity_bytes: int) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], KVState] = OrderedDict()
        self._size = 0

    def save(self, llama: llama_cpp.Llama) -> None:
        tokens = tuple(int(t) for t in llama._input_ids)
        if not tokens:
            return
        ctx = llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, _SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, _SEQUENCE)
        with self._lock:
            self._put(KVState(tokens, bytes(buffer[:written])))

    def restore_if_longer(self, llama: llama_cpp.Llama, prompt: list[int]) -> None:
        """Load the saved state sharing the most of ``prompt``, when it beats the live context."""
        with self._lock:
            best = max(self._states.values(), key=lambda s: common_prefix(s.tokens, prompt), default=None)
            if best is None or common_prefix(best.tokens, prompt) <= common_prefix(list(llama._input_ids), prompt):
                return
            self._states.move_to_end(best.tokens)
        buffer = (ctypes.c_uint8 * len(best.data)).from_buffer_copy(best.data)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llama._ctx.ctx), True)
        if llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, len(best.data), _SEQUENCE) == 0:
            llama.reset()  # the state did not fit: start from an empty context rather than a broken one
            return
        llama.input_ids[: len(best.tokens)] = best.tokens
        llama.n_tokens = len(best.tokens)
        llama._requires_eval = True

    def _put(self, state: KVState) -> None:
        if state.tokens in self._states:
            self._size -= len(self._states.pop(state.tokens).data)
        self._states[state.tokens] = state
        self._size += len(state.data)
        while self._size > self._capacity and self._states:
            _, evicted = self._states.popitem(last=False)
            self._size -= len(evicted.data)

"""Tool calls on a local model: the model decides whether to call (or is made to), grammars do the writing.

* ``auto``: the model calls when the first token of its answer is likely enough to open a call
  (``<tool_call>``, or a bare ``{"name": ...}`` object as small models often write instead); otherwise it
  answers in words, and if it opens a call later on, what came before is its message. Should it repeat
  a call whose result it already has (small models loop so), it answers in words instead: its first
  token is kept from opening a call.
  ``required``: the answer starts with a call to one of the tools. A named function: exactly that call.
* Each call is written in two constrained steps: the tool's name (one of those offered), then its
  arguments under a grammar built from the tool's parameter schema, both at a low temperature
  (``WRITING_TEMPERATURE``): these are fields to fill, not prose. The arguments are validated against the
  schema and, should the grammar not cover a keyword (``minimum``, ``maximum``...), sampled again. A
  model looping inside a string or an array (``RUN_ON_*``, ``REPEAT_*``) is stopped at once and tries
  again under a grammar that bounds open strings and arrays (llama.cpp samples it several times more
  slowly, hence only then). Failed attempts count neither as output nor against ``max_output_tokens``.
  Numbers still out of range after the last attempt are clamped into it.
* After a call the model may open another one (several calls per answer), up to ``MAX_CALLS``.

A call is emitted once its arguments are written and checked (a retry cannot take back streamed text).
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..json_schema import arguments_problem, clamp_numbers
from .llm import ToolCallDelta
from .tool_format import CALL_CLOSE, CALL_OPEN, call_key
from .tool_grammar import arguments_grammar, names_grammar

MAX_CALLS = 8
ARGUMENT_ATTEMPTS = 3
# Arguments are taken for a model looping when one string, or the whole, runs past this many characters
# (voice-agent arguments are short); the next attempt then has a bounded grammar.
RUN_ON_ARGUMENT_CHARS = 400
RUN_ON_STRING_CHARS = 100
# ... or when a stretch of text (up to REPEAT_MAX_PERIOD characters) repeats three times, covering at
# least REPEAT_MIN_CHARS.
REPEAT_MAX_PERIOD = 40
REPEAT_MIN_CHARS = 24
WRITING_TEMPERATURE = 0.2
# With ``auto``, the model calls when the first token of its answer opens a call with this probability
# at least. Sampling that token instead leaves the choice to chance at the session's temperature.
CALL_THRESHOLD = 0.1
BARE_CALL = '{"name"'
# The first token of an answer in words: anything but the start of a call or of a JSON value.
_WORDS = r"root ::= [^{<\[ \t\r\n] [^\x00]*"
# Tokens sampled after a call to see whether the model opens another one.
LOOKAHEAD_TOKENS = 6


class OutOfTokens(Exception):
    """The request's token budget ran out."""


class Sampling(Protocol):
    """Sampling on the model's context for one request (see ``llama_local``)."""

    def tokens(self, prompt: list[int], grammar: str | None = None, temperature: float | None = None) -> Iterator[int]:
        """Generated tokens up to end-of-generation; raises ``OutOfTokens`` when the budget is spent.

        ``temperature`` overrides the request's."""
        ...

    def next_token_probability(self, prompt: list[int], tokens: set[int]) -> float:
        """How likely the model's next token after ``prompt`` is one of ``tokens``."""
        ...

    def discard(self, count: int) -> None:
        """Take back ``count`` generated tokens that are not part of the output (a failed attempt): they
        count neither as output nor against the budget."""
        ...

    def tokenize(self, text: str) -> list[int]: ...

    def piece(self, token: int) -> bytes: ...


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: str
    context: list[int]  # the prompt up to the end of this call

    @property
    def key(self) -> tuple[str, str]:
        return call_key(self.name, self.arguments)


class ToolCallWriter:
    def __init__(
        self,
        sampling: Sampling,
        tools: list[dict[str, Any]],
        emit: Callable[[object], None],
        answered: set[tuple[str, str]],
    ) -> None:
        """``answered``: the calls (``call_key``) whose results the model has already been given this turn."""
        self._sampling = sampling
        self._schemas = {tool["function"]["name"]: tool["function"].get("parameters") for tool in tools}
        self._emit = emit
        self._answered = answered
        self._calls = 0
        self._written = False

    def write(self, prompt: list[int], tool_choice: str | dict[str, Any]) -> None:
        if isinstance(tool_choice, dict):
            name = tool_choice["function"]["name"]
            self._emit_call(self._write_call(self._opened(prompt), name, self._sampling.tokenize(f'{name}"')))
            return
        auto = tool_choice != "required"
        context: list[int] | None = prompt
        if auto and self._sampling.next_token_probability(prompt, self._openers()) < CALL_THRESHOLD:
            context = self._answer_in_words(prompt, calls=True)
        while context is not None:
            context = self._opened(context)
            call = self._write_call(context, *self._choose_name(context))
            if auto and call.key in self._answered:
                # The same call again with its result already in view (small models loop so): what is
                # wanted is an answer in words.
                if not self._calls and not self._written:
                    self._answer_in_words(prompt)
                return
            context = self._emit_call(call)
            if self._calls >= MAX_CALLS or not self._another_call_follows(context):
                return
            context = context + self._sampling.tokenize("\n")

    def _text_until_call(self, prompt: list[int], lead: tuple[int, ...] = (), calls: bool = True) -> list[int] | None:
        """Stream the model's text after ``prompt`` and ``lead`` (tokens already chosen); if it opens a
        tool call, return the context up to the call (or, with ``calls`` off, end the text there)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        written = ""  # emitted so far
        pending = ""  # held back: it may be the start of a call (or leading blank space)
        for token in itertools.chain(lead, self._sampling.tokens([*prompt, *lead])):
            pending += decoder.decode(self._sampling.piece(token))
            opened = pending.find(CALL_OPEN)
            if not written and pending.lstrip().startswith(BARE_CALL):
                opened = pending.index("{")
            if opened >= 0:
                self._say(pending[:opened], written)
                written += pending[:opened]
                if not calls:
                    return None
                return prompt + self._sampling.tokenize(written) if written.strip() else prompt
            keep = _partial_suffix(pending, CALL_OPEN)
            if not written and BARE_CALL.startswith(pending.lstrip()):
                keep = len(pending)
            ready = pending[: len(pending) - keep]
            if self._say(ready, written):
                written += ready
                pending = pending[len(ready) :]
        self._say(pending + decoder.decode(b"", final=True), written)
        return None

    def _say(self, text: str, written: str) -> bool:
        """Emit ``text`` unless it would be blank space at the start of the answer."""
        if not text or not (written or text.strip()):
            return False
        self._emit(text)
        self._written = True
        return True

    def _answer_in_words(self, prompt: list[int], calls: bool = False) -> list[int] | None:
        """The model's answer with its first token kept from starting a call (see ``_text_until_call``)."""
        start = self._sampling.tokens(prompt, _WORDS)
        try:
            first = next(start, None)
        finally:
            start.close()
        return None if first is None else self._text_until_call(prompt, lead=(first,), calls=calls)

    def _openers(self) -> set[int]:
        """First tokens of a call: the tag, or a bare JSON object."""
        return {self._sampling.tokenize(text)[0] for text in (CALL_OPEN, BARE_CALL, "{")}

    def _opened(self, context: list[int]) -> list[int]:
        """``context`` followed by the start of a call, up to the opening quote of its name."""
        return context + self._sampling.tokenize(f'{CALL_OPEN}\n{{"name": "')

    def _choose_name(self, context: list[int]) -> tuple[str, list[int]]:
        """The tool the model calls, and the name's tokens (with the closing quote)."""
        names = list(self._schemas)
        if len(names) == 1:
            return names[0], self._sampling.tokenize(f'{names[0]}"')
        chosen = list(self._sampling.tokens(context, names_grammar(names), WRITING_TEMPERATURE))
        return self._text(chosen)[:-1], chosen

    def _write_call(self, context: list[int], name: str, name_tokens: list[int]) -> _Call:
        """Write one call whose opening ends ``context``."""
        context = context + name_tokens + self._sampling.tokenize(', "arguments": ')
        schema = self._schemas[name]
        bounded = False
        for attempt in range(ARGUMENT_ATTEMPTS):
            # A model that ran on gets a grammar that limits strings and arrays, so it has to finish.
            bounded = bounded or attempt == ARGUMENT_ATTEMPTS - 1
            grammar = arguments_grammar(schema, bounded=bounded)
            tokens: list[int] = []
            watch = _RunOnWatch()
            try:
                for token in self._sampling.tokens(context, grammar, WRITING_TEMPERATURE):
                    tokens.append(token)
                    if watch.running_on(self._sampling.piece(token)) and not bounded:
                        bounded = True  # small models loop so, in a string or an array: try again
                        break
            except OutOfTokens:
                # What there is goes out, so the client sees how far the call got.
                self._emit_call(_Call(name, self._text(tokens).strip(), context))
                raise
            arguments = self._text(tokens).strip()
            if arguments_problem(schema, arguments) is None:
                break
            if attempt < ARGUMENT_ATTEMPTS - 1:
                self._sampling.discard(len(tokens))
        else:
            # Still invalid after the last attempt: out-of-range numbers are clamped into range; anything
            # else goes out as it is, and the response reports it.
            arguments = clamp_numbers(schema, arguments) or arguments
        return _Call(name, arguments, context + tokens + self._sampling.tokenize(f"}}\n{CALL_CLOSE}"))

    def _emit_call(self, call: _Call) -> list[int]:
        index = self._calls
        self._calls += 1
        self._emit(ToolCallDelta(index, name=call.name))
        self._emit(ToolCallDelta(index, arguments=call.arguments))
        return call.context

    def _another_call_follows(self, context: list[int]) -> bool:
        """Whether the model opens another call; the tokens looked at are not output (the call is rewritten)."""
        text = ""
        generated = itertools.islice(self._sampling.tokens(context), LOOKAHEAD_TOKENS)
        looked = 0
        try:
            for token in generated:
                looked += 1
                text = (text + self._sampling.piece(token).decode(errors="replace")).lstrip()
                if text.startswith(CALL_OPEN):
                    return True
                if not CALL_OPEN.startswith(text):
                    return False
            return False
        finally:
            self._sampling.discard(looked)

    def _text(self, tokens: list[int]) -> str:
        return b"".join(self._sampling.piece(token) for token in tokens).decode(errors="replace")


class _RunOnWatch:
    """Follows JSON text as it is written, to tell a model looping: the same stretch three times over
    (``"a", "a", "a"``), a string that does not end, or arguments that do not."""

    def __init__(self) -> None:
        self._text = ""
        self._in_string = False
        self._escaped = False
        self._string_length = 0

    def running_on(self, piece: bytes) -> bool:
        for char in piece.decode(errors="replace"):
            self._text += char
            if self._escaped:
                self._escaped = False
            elif char == "\\" and self._in_string:
                self._escaped = True
            elif char == '"':
                self._in_string, self._string_length = not self._in_string, 0
                continue
            self._string_length += self._in_string
        too_long = self._string_length > RUN_ON_STRING_CHARS or len(self._text) > RUN_ON_ARGUMENT_CHARS
        return too_long or self._repeating()

    def _repeating(self) -> bool:
        text = self._text
        for period in range(max(1, REPEAT_MIN_CHARS // 3), REPEAT_MAX_PERIOD + 1):
            if len(text) < 3 * period:
                break
            tail = text[-period:]
            if text[-3 * period :] == tail * 3 and 3 * period >= REPEAT_MIN_CHARS:
                return True
        return False


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of ``text`` that ``marker`` starts with."""
    for length in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-length:]):
            return length
    return 0

"""What the language model reads for a response: the instructions, this turn's grounding, the conversation.

Grounding is rebuilt for every response from the caller's last turn: the facts a knowledge base holds about
it, and, when the caller spoke a language other than English, a line asking for the reply in that language.
Both go into the system message after the instructions (one system message: some chat templates refuse a
second one), so the instructions' tokens stay a cached prefix.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any

import pycountry

from ..knowledge import Fact, KnowledgeBase
from .conversation import chat_messages
from .items import Item

log = logging.getLogger(__name__)

FACTS_PREAMBLE = (
    "Answer from these facts. If they do not hold the answer, say that you do not know rather than guessing."
)
# A long paragraph from a Markdown sheet is cut here: the model needs the gist, and the context is small.
MAX_FACT_CHARS = 600
# Whisper's code for Javanese predates ISO 639-1's.
_ISO_CODES = {"jw": "jv"}


async def build_messages(instructions: str, items: list[Item], knowledge: KnowledgeBase | None) -> list[dict[str, Any]]:
    """Chat messages for a response over ``items``; the knowledge search runs in a worker thread."""
    facts: list[Fact] = []
    question = last_user_text(items)
    if knowledge is not None and question:
        facts = await asyncio.to_thread(knowledge.search, question)
        log.info("knowledge %s: facts %s", knowledge.name, ", ".join(fact.id for fact in facts) or "none")
    parts = [instructions, facts_block(facts), reply_language_line(last_user_language(items))]
    return chat_messages("\n\n".join(part for part in parts if part), items)


def facts_block(facts: list[Fact]) -> str:
    if not facts:
        return ""
    lines = [f"- {_clip(fact.render())}" for fact in facts]
    return "\n".join([FACTS_PREAMBLE, *lines])


def reply_language_line(language: str | None) -> str:
    """Ask for the reply in the caller's language, when it is known and not English."""
    if not language or language.split("-")[0].lower() == "en":
        return ""
    name = language_name(language)
    return f"The caller is speaking {name}. Reply in {name}, unless your instructions say which language to use."


@functools.cache
def language_name(code: str) -> str:
    """The English name of an ISO 639 code as Whisper reports it ("fr" -> "French"); the code when unknown."""
    primary = code.split("-")[0].lower()
    primary = _ISO_CODES.get(primary, primary)
    found = pycountry.languages.get(**{"alpha_2" if len(primary) == 2 else "alpha_3": primary})
    if found is None:
        return code
    return re.sub(r"\s*\(.*\)", "", found.name)  # "Modern Greek (1453-)" -> "Modern Greek"


def last_user_text(items: list[Item]) -> str:
    """What the caller said or typed last (an audio turn counts by its transcript)."""
    for item in reversed(items):
        if item.type == "message" and item.role == "user":
            return " ".join(text for part in item.content if (text := part.plain_text()))
    return ""


def last_user_language(items: list[Item]) -> str | None:
    """The language the caller last spoke in, as the recognizer detected it (None for typed turns)."""
    for item in reversed(items):
        if item.type == "message" and item.role == "user":
            return next((part.language for part in item.content if part.language), None)
    return None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FACT_CHARS else text[: MAX_FACT_CHARS - 1].rstrip() + "…"

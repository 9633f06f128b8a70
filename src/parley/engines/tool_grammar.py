"""GBNF grammars that make a local model's tool calls well-formed: a tool name from the list, and
arguments that follow the tool's parameter schema (llama.cpp's JSON-Schema-to-grammar converter).

The converter leaves some schema keywords to chance (``minimum``/``maximum``, ``multipleOf``, ``not``...),
so arguments are still validated afterwards; the grammar guarantees JSON of the right shape.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

log = logging.getLogger(__name__)

_ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Limits for strings and arrays the schema leaves open (see ``_bounded``).
BOUNDED_STRING_LENGTH = 60
BOUNDED_ARRAY_ITEMS = 6
# The converter lets raw control characters into strings, which JSON forbids (RFC 8259 §7).
_CHAR_RULE = re.compile(r'^char ::= \[\^"\\\\\]', re.MULTILINE)
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F]'


def names_grammar(names: list[str]) -> str:
    """One of ``names`` followed by the closing quote of the JSON string it sits in."""
    alternatives = " | ".join(json.dumps(json.dumps(name)[1:]) for name in names)
    return f"root ::= ({alternatives})"


def arguments_grammar(parameters: dict[str, Any] | None, bounded: bool = False) -> str:
    """A grammar for a JSON object matching ``parameters`` (any object when the schema cannot be converted).

    ``bounded`` limits the length of strings and arrays the schema leaves open: a small model caught in a
    loop inside a string then has to close it. It costs: llama.cpp samples such grammars several times
    more slowly, so it is kept for a model that ran on.
    """
    schema = _object_schema(parameters)
    return _arguments_grammar(json.dumps(_bounded(schema) if bounded else schema, sort_keys=True))


@lru_cache(maxsize=256)
def _arguments_grammar(schema_json: str) -> str:
    try:
        grammar = json_schema_to_gbnf(schema_json)
    except Exception as exc:  # the converter raises bare exceptions on keywords it does not know
        log.warning("tool parameters cannot be turned into a grammar (%s); any JSON object is allowed", exc)
        grammar = json_schema_to_gbnf(json.dumps(_ANY_OBJECT))
    return _CHAR_RULE.sub(lambda _: _JSON_CHAR, grammar)


def _object_schema(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Function arguments are always an object, even where the schema leaves the type open."""
    if not parameters:
        return _ANY_OBJECT
    if "type" not in parameters:
        return {**parameters, "type": "object"}
    return parameters


def _bounded(node: Any) -> Any:
    """The schema with a length limit on the strings and arrays it leaves open."""
    if isinstance(node, list):
        return [_bounded(value) for value in node]
    if not isinstance(node, dict):
        return node
    bounded = {key: _bounded(value) for key, value in node.items()}
    kinds = node.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds) if isinstance(kinds, list) else set()
    open_string = not {"maxLength", "enum", "const", "pattern", "format"} & node.keys()
    if "string" in kinds and open_string:
        bounded["maxLength"] = max(BOUNDED_STRING_LENGTH, node.get("minLength", 0))
    if "array" in kinds and "maxItems" not in node:
        bounded["maxItems"] = max(BOUNDED_ARRAY_ITEMS, node.get("minItems", 0))
    return bounded

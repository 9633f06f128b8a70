"""JSON Schema checks shared by the protocol (tool definitions) and the engines (tool-call arguments)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import exceptions, validators


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a valid JSON Schema for function parameters, or None when it is."""
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(step) for step in exc.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
    declared = schema.get("type")
    if declared is not None and declared != "object":
        return f"function parameters must be a JSON Schema of type 'object', not {declared!r}"
    return None


def arguments_problem(schema: dict[str, Any] | None, arguments: str) -> str | None:
    """Why ``arguments`` (a JSON text) are not valid arguments for ``schema``, or None when they are."""
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return "not a JSON object"
    if schema:
        error = exceptions.best_match(validators.validator_for(schema)(schema).iter_errors(value))
        if error is not None:
            where = "/".join(str(step) for step in error.absolute_path)
            return f"does not match the parameters schema{f' at {where}' if where else ''}: {error.message}"
    return None

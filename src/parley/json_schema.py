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


_BOUNDS = {"minimum": 0, "maximum": 0, "exclusiveMinimum": 1, "exclusiveMaximum": -1}


def clamp_numbers(schema: dict[str, Any] | None, arguments: str) -> str | None:
    """``arguments`` with out-of-range numbers moved to the nearest allowed value, when that is all that
    keeps them from matching ``schema`` (grammars give JSON its shape, not numeric ranges); else None."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    if not schema or not isinstance(value, dict):
        return None
    for _ in range(32):  # each pass fixes one number
        errors = list(validators.validator_for(schema)(schema).iter_errors(value))
        if not errors:
            return json.dumps(value)
        error = errors[0]
        path = list(error.absolute_path)
        if error.validator not in _BOUNDS or not path or not isinstance(error.validator_value, int | float):
            return None
        step = _BOUNDS[error.validator]  # type: ignore[index]
        if step and not isinstance(error.instance, int):
            return None  # an exclusive bound on a non-integer has no nearest value
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = error.validator_value + step
    return None

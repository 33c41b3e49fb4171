"""Strict validation of ``response_format`` and of strict tool schemas, as OpenAI does it.

``response_format`` must be ``{"type": "text"}``, ``{"type": "json_object"}`` or
``{"type": "json_schema", "json_schema": {"name", "description"?, "schema"?, "strict"?}}``
with a name of at most 64 letters, digits, ``_`` or ``-``. A schema sent with
``strict: true`` (in ``response_format`` or in a tool's ``function``) must meet the strict
rules OpenAI enforces, or the request is refused with the server's wording: the root is
an object, every object has ``additionalProperties: false`` and lists every property in
``required``, and every schema has a ``type`` (or ``anyOf``/``$ref``).

This is the emulator's own reading of the rules, written apart from the SDK's, so that a
test against the emulator checks what the SDK sends.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_response_format", "check_strict_tools"]

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FORMAT_TYPES = ("text", "json_object", "json_schema")


class _Invalid(ValueError):
    pass


def check_response_format(body: dict[str, Any]) -> str | None:
    """The problem with the request's ``response_format``, or ``None``."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMAT_TYPES:
        return ("'response_format.type' must be one of 'text', 'json_object', 'json_schema', "
                f"got {fmt.get('type') if isinstance(fmt, dict) else fmt!r}")
    if fmt["type"] != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        return "Missing required parameter: 'response_format.json_schema'."
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        return ("Invalid 'response_format.json_schema.name': string does not match pattern. "
                f"Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$', got {name!r}.")
    if "description" in spec and not isinstance(spec["description"], str):
        return "'response_format.json_schema.description' must be a string"
    if "schema" in spec and not isinstance(spec["schema"], dict):
        return "'response_format.json_schema.schema' must be an object"
    if spec.get("strict") not in (None, True, False):
        return "'response_format.json_schema.strict' must be a boolean"
    if spec.get("strict") is True:
        return _strict_problem(spec.get("schema", {}), f"response_format {name!r}")
    return None


def check_strict_tools(body: dict[str, Any]) -> str | None:
    """The problem with a tool whose ``function.strict`` is true, or ``None``."""
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("strict") is True:
            problem = _strict_problem(fn.get("parameters", {}), f"function {fn.get('name')!r}")
            if problem is not None:
                return problem
    return None


def _strict_problem(schema: Any, what: str) -> str | None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"Invalid schema for {what}: schema must be a JSON Schema of 'type: \"object\"'."
    try:
        _check(schema, ())
    except _Invalid as problem:
        return f"Invalid schema for {what}: {problem}"
    return None


def _check(node: Any, context: tuple[str, ...]) -> None:
    if not isinstance(node, dict):
        raise _Invalid(f"In context={context}, schema must be an object.")
    if not any(key in node for key in ("type", "anyOf", "$ref")):
        raise _Invalid(f"In context={context}, schema must have a 'type' key.")
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds or "properties" in node:
        if node.get("additionalProperties") is not False:
            raise _Invalid(f"In context={context}, 'additionalProperties' is required to be "
                           "supplied and to be false.")
        properties = node.get("properties", {})
        required = node.get("required", [])
        missing = [key for key in properties if key not in required]
        if missing:
            raise _Invalid(f"In context={context}, 'required' is required to be supplied and to "
                           f"be an array including every key in properties. Missing '{missing[0]}'.")
        for key, sub in properties.items():
            _check(sub, (*context, "properties", key))
    if isinstance(node.get("items"), dict):
        _check(node["items"], (*context, "items"))
    for index, sub in enumerate(node.get("anyOf", ())):
        _check(sub, (*context, "anyOf", str(index)))
    for defs in ("$defs", "definitions"):
        for key, sub in (node.get(defs) or {}).items():
            _check(sub, (*context, defs, key))

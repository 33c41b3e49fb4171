"""The conversation state, version 1: its JSON Schema and the check every load runs.

A state is the JSON-ready dict a conversation is persisted as::

    {"version": 1, "id": "<conversation id>",
     "messages": [<OpenAI wire messages>],
     "pending": [{"call_id": "...", "name": "...", "arguments": {...}}],
     "ran": ["<ids of tool calls that have run>"],
     "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
     "system": "..." | null,        # optional
     "last_request": {"prompt_tokens": 0, "messages": 0},  # optional (history trimming)
     "signature": "..."}            # optional (HMAC, checked elsewhere)

Other top-level keys are allowed (later versions of the SDK may add some without
changing ``version``). :func:`check_state` refuses anything else with a
:class:`~genesys_gateway.errors.StateError` that names the conversation, the field
(``messages[3].tool_calls[0].function.name``) and the problem:

1. an unknown ``version`` first (``"unsupported state version 7"``), so that a state
   written by a newer SDK is never misread as a broken one;
2. :data:`STATE_SCHEMA` (Draft-07) with a fastjsonschema validator compiled once, on
   first use, thread-safe (the schema has no ``$ref``: nothing can be fetched). The
   compiled validator checks everything but the fields of each message, which
   :mod:`.messages` checks in the same pass as the history rules (a compiled validator's
   per-object bookkeeping would cost as much as parsing the JSON; tests hold both to the
   schema's answers);
3. the rules of the chat-completions history a schema cannot say (:mod:`.messages`):
   roles that need ``content`` or ``tool_call_id``, ``tool_calls`` only on assistant
   messages, unique call ids within a message, every tool result answering a call of the
   assistant message just before it, at most once; pending calls unique and not run.

A tool call *without* its result is not refused here: that is repairable, and repairing
it is the conversation's business.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Final, Mapping

import fastjsonschema

from ..constants import MAX_CONVERSATION_ID_CHARS
from ..errors import StateError
from .messages import ROLES, messages_problem

__all__ = [
    "STATE_VERSION",
    "STATE_SCHEMA",
    "check_state",
    "check_conversation_id",
    "conversation_id_problem",
    "describe_id",
]

#: The state format this SDK writes and reads.
STATE_VERSION: Final = 1

_NON_EMPTY = {"type": "string", "minLength": 1}
_TOKENS = {"type": "integer", "minimum": 0}

_TOOL_CALL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "function"],
    "properties": {
        "id": _NON_EMPTY,
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": _NON_EMPTY, "arguments": {"type": "string"}},
        },
    },
}

#: A content part: an object with a string ``type``; a ``text`` part's ``text`` is a string.
_CONTENT_PART: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "if": {"properties": {"type": {"const": "text"}}},
    "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
}

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": list(ROLES)},
        "content": {"type": ["string", "array", "null"], "items": _CONTENT_PART},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "minItems": 1, "items": _TOOL_CALL},
        "tool_call_id": _NON_EMPTY,
    },
}

#: JSON Schema (Draft-07) of a version-1 state. Objects allow additional properties
#: (wire messages carry fields such as ``refusal``; later SDKs may add top-level keys).
STATE_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "genesys_gateway conversation state, version 1",
    "type": "object",
    "required": ["version", "id", "messages", "pending", "ran", "usage"],
    "properties": {
        "version": {"const": STATE_VERSION},
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_CONVERSATION_ID_CHARS},
        "messages": {"type": "array", "items": _MESSAGE},
        "pending": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["call_id", "name", "arguments"],
                "properties": {
                    "call_id": _NON_EMPTY,
                    "name": _NON_EMPTY,
                    "arguments": {"type": "object"},
                },
            },
        },
        "ran": {"type": "array", "items": _NON_EMPTY},
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {
                "prompt_tokens": _TOKENS,
                "completion_tokens": _TOKENS,
                "total_tokens": _TOKENS,
            },
        },
        "system": {"type": ["string", "null"]},
        "last_request": {
            "type": "object",
            "required": ["prompt_tokens", "messages"],
            "properties": {"prompt_tokens": _TOKENS, "messages": _TOKENS},
        },
        "signature": {"type": "string"},
    },
}

_validator: Callable[[Any], Any] | None = None
_validator_lock = threading.Lock()


def _frame_schema() -> dict[str, Any]:
    """:data:`STATE_SCHEMA` with each message only required to be an object (the fields
    of a message are :func:`~.messages.messages_problem`'s)."""
    properties = {**STATE_SCHEMA["properties"],
                  "messages": {"type": "array", "items": {"type": "object"}}}
    return {**STATE_SCHEMA, "properties": properties}


def _compiled() -> Callable[[Any], Any]:
    """The state validator, compiled on first use (once, whatever the threads)."""
    global _validator
    validator = _validator
    if validator is None:
        with _validator_lock:
            if _validator is None:
                _validator = fastjsonschema.compile(_frame_schema())
            validator = _validator
    return validator


def describe_id(conversation_id: object) -> str:
    """How messages name a conversation: ``conversation 'abc'`` (bounded in length)."""
    text = repr(conversation_id)
    if len(text) > 80:
        text = text[:79] + "…"
    return f"conversation {text}"


def conversation_id_problem(value: object) -> str | None:
    """What makes ``value`` unusable as a conversation id, or ``None``.

    An id is a string of 1 to 255 characters, without control characters (ids end up in
    logs and keys) and encodable as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value or len(value) > MAX_CONVERSATION_ID_CHARS:
        return f"must have 1 to {MAX_CONVERSATION_ID_CHARS} characters, got {len(value)}"
    if not value.isprintable() and any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it has a lone surrogate)"
    return None


def check_conversation_id(value: object, *, name: str = "conversation_id") -> str:
    """``value`` when it is a usable conversation id; else ``TypeError``/``ValueError``
    naming ``name`` (for ids given as arguments, as to ``load``)."""
    problem = conversation_id_problem(value)
    if problem is None:
        return value  # type: ignore[return-value]  # checked to be a str
    error = TypeError if not isinstance(value, str) else ValueError
    raise error(f"{name} {problem}")


def _field(path: list[str]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _describe(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """``"messages[3].role: must be one of [...] (got 'robot')"``."""
    path = list(exc.path or ())[1:]  # drop fastjsonschema's leading "data"
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    if exc.rule == "required" and isinstance(exc.value, dict):
        missing = [k for k in definition.get("required", ()) if k not in exc.value]
        problem = "missing " + ", ".join(repr(k) for k in missing)
    else:
        name = exc.name or ""
        message = exc.message
        problem = message[len(name):].strip() if message.startswith(name) else message
        problem += f" (got {_short(exc.value)})"
    field = _field(path)
    return f"{field}: {problem}" if field else problem


def check_state(data: Any, *, conversation_id: str | None = None) -> dict[str, Any]:
    """Return ``data`` (not a copy) when it is a usable version-1 state.

    ``conversation_id``, when given, is the conversation ``data`` must belong to (a
    state stored under one id that holds another is "foreign"); when ``None``, errors
    name the id inside ``data``. Raises :class:`StateError` otherwise, naming the
    conversation and what is wrong.
    """
    named = conversation_id if conversation_id is not None else _inner_id(data)

    def refuse(problem: str) -> StateError:
        return StateError(f"{describe_id(named)}: {problem}", conversation_id=named)

    if not isinstance(data, dict):
        raise refuse(f"a state must be a JSON object, got {type(data).__name__}")
    if "version" not in data:
        raise refuse("invalid state: missing 'version'")
    version = data["version"]
    if type(version) is not int or version != STATE_VERSION:
        raise refuse(f"unsupported state version {_short(version)} "
                     f"(this SDK reads version {STATE_VERSION})")
    try:
        _compiled()(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise refuse(f"invalid state: {_describe(exc)}") from None
    inner = data["id"]
    problem = conversation_id_problem(inner)
    if problem is not None:
        raise refuse(f"invalid state: id: {problem}")
    if conversation_id is not None and inner != conversation_id:
        raise refuse(f"the stored state belongs to {describe_id(inner)}")
    problem = messages_problem(data["messages"]) or _calls_problem(data)
    if problem is not None:
        raise refuse(f"invalid state: {problem}")
    return data


def _inner_id(data: Any) -> str | None:
    if isinstance(data, Mapping):
        inner = data.get("id")
        if isinstance(inner, str):
            return inner
    return None


def _calls_problem(data: dict[str, Any]) -> str | None:
    """Pending calls are unique and have not run."""
    ran = set(data["ran"])
    seen: set[str] = set()
    for index, call in enumerate(data["pending"]):
        call_id = call["call_id"]
        if call_id in seen:
            return f"pending[{index}].call_id: {call_id!r} is pending twice"
        if call_id in ran:
            return f"pending[{index}].call_id: {call_id!r} is pending but has already run"
        seen.add(call_id)
    return None

"""Strict validation of chat-completion requests for :class:`GatewayEmulator`.

The rules follow what a strict OpenAI-compatible server rejects, so that a test run against
the emulator catches the malformed requests a real gateway would refuse: missing or empty
``model``/``messages``, unknown roles, tool messages that answer no tool call, assistant tool
calls left unanswered, malformed ``tools``, ``tool_choice`` without ``tools``, streaming, and
a ``response_format`` or strict tool schema OpenAI would refuse (see ``response_format.py``).

:func:`validate_chat_request` raises :class:`RequestInvalid` whose message names the problem;
the emulator answers it with HTTP 400 and the Genesys error code ``bad.request``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .response_format import check_response_format, check_strict_tools

__all__ = ["RequestInvalid", "parse_json_object", "validate_chat_request"]

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})
_UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding "
    "to each 'tool_call_id'. The following tool_call_ids did not have response messages: {ids}"
)


class RequestInvalid(ValueError):
    """A request the emulator rejects with HTTP 400 ``bad.request``."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode *body* as a UTF-8 JSON object or raise :class:`RequestInvalid`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestInvalid(
            f"The request body must be a JSON object, got {_json_type(data)}"
        )
    return data


def validate_chat_request(body: dict[str, Any]) -> None:
    """Check a parsed chat-completion request; raise :class:`RequestInvalid` if it is bad."""
    model = body.get("model")
    if "model" not in body:
        raise RequestInvalid("'model' is a required property")
    if not isinstance(model, str) or not model.strip():
        raise RequestInvalid("'model' must be a non-empty string")
    _validate_stream(body)
    tool_names = _validate_tools(body)
    _validate_tool_choice(body, tool_names)
    _validate_messages(body)
    problem = check_response_format(body) or check_strict_tools(body)  # OpenAI's strict rules
    if problem is not None:
        raise RequestInvalid(problem)


def _validate_stream(body: dict[str, Any]) -> None:
    """``stream`` (boolean or null) and ``stream_options`` (an object, or null; only with
    ``stream: true``), as OpenAI's schema and API have them."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestInvalid(f"'stream' must be a boolean, got {_json_type(stream)}")
    options = body.get("stream_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise RequestInvalid(f"'stream_options' must be an object, got {_json_type(options)}")
    if stream is not True:
        raise RequestInvalid("'stream_options' is only allowed when 'stream' is true")
    for key, value in options.items():
        if key not in ("include_usage", "include_obfuscation"):
            raise RequestInvalid(f"'stream_options' has an unknown property {key!r}")
        if not isinstance(value, bool):
            raise RequestInvalid(f"'stream_options.{key}' must be a boolean, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _validate_tools(body: dict[str, Any]) -> set[str] | None:
    if "tools" not in body or body["tools"] is None:
        return None
    tools = body["tools"]
    if not isinstance(tools, list):
        raise RequestInvalid(f"'tools' must be an array, got {_json_type(tools)}")
    if not tools:
        raise RequestInvalid("[] is too short - 'tools'")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise RequestInvalid(f"{where} must be an object")
        if tool.get("type") != "function":
            raise RequestInvalid(f"{where}.type must be 'function', got {tool.get('type')!r}")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise RequestInvalid(f"{where}.function must be an object")
        name = fn.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise RequestInvalid(
                f"{where}.function.name must match '^[a-zA-Z0-9_-]{{1,64}}$', got {name!r}"
            )
        if name in names:
            raise RequestInvalid(f"{where}.function.name {name!r} is defined more than once")
        names.add(name)
        if "description" in fn and not isinstance(fn["description"], str):
            raise RequestInvalid(f"{where}.function.description must be a string")
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise RequestInvalid(f"{where}.function.parameters must be an object")
    return names


def _validate_tool_choice(body: dict[str, Any], tool_names: set[str] | None) -> None:
    if "tool_choice" not in body or body["tool_choice"] is None:
        return
    if tool_names is None:
        raise RequestInvalid("When using `tool_choice`, `tools` must be set.")
    choice = body["tool_choice"]
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise RequestInvalid(
                f"'tool_choice' must be 'none', 'auto', 'required' or a function object, got {choice!r}"
            )
        return
    fn = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(fn, dict):
        raise RequestInvalid(
            "'tool_choice' object must be {\"type\": \"function\", \"function\": {\"name\": ...}}"
        )
    if fn.get("name") not in tool_names:
        raise RequestInvalid(f"'tool_choice' names a function that is not in 'tools': {fn.get('name')!r}")


def _check_content(content: Any, where: str, role: str) -> None:
    """Content must be a string or a non-empty list of typed parts."""
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise RequestInvalid(
            f"{where}.content must be a string or an array of content parts for role "
            f"'{role}', got {_json_type(content)}"
        )
    if not content:
        raise RequestInvalid(f"[] is too short - '{where}.content'")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RequestInvalid(f"{where}.content[{j}] must be an object with a 'type'")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise RequestInvalid(f"{where}.content[{j}].text must be a string")


def _check_tool_calls(calls: Any, where: str) -> list[str]:
    if not isinstance(calls, list):
        raise RequestInvalid(f"{where}.tool_calls must be an array, got {_json_type(calls)}")
    if not calls:
        raise RequestInvalid(f"[] is too short - '{where}.tool_calls'")
    ids: list[str] = []
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise RequestInvalid(f"{at} must be an object")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise RequestInvalid(f"{at}.id must be a non-empty string")
        if call["id"] in ids:
            raise RequestInvalid(f"{at}.id {call['id']!r} is duplicated")
        if call.get("type") != "function":
            raise RequestInvalid(f"{at}.type must be 'function', got {call.get('type')!r}")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise RequestInvalid(f"{at}.function must be an object")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise RequestInvalid(f"{at}.function.name must be a non-empty string")
        if not isinstance(fn.get("arguments"), str):
            raise RequestInvalid(
                f"{at}.function.arguments must be a string (JSON-encoded), got "
                f"{_json_type(fn.get('arguments'))}"
            )
        ids.append(call["id"])
    return ids


def _validate_messages(body: dict[str, Any]) -> None:
    if "messages" not in body:
        raise RequestInvalid("'messages' is a required property")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise RequestInvalid(f"'messages' must be an array, got {_json_type(messages)}")
    if not messages:
        raise RequestInvalid("[] is too short - 'messages'")
    pending: list[str] = []  # tool_call_ids of the last assistant message still unanswered
    answerable: set[str] = set()  # ids the current run of tool messages may answer
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise RequestInvalid(f"{where} must be an object, got {_json_type(msg)}")
        role = msg.get("role")
        if role not in ROLES:
            raise RequestInvalid(
                f"{where}.role must be one of 'system', 'user', 'assistant', 'tool', "
                f"'developer', got {role!r}"
            )
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise RequestInvalid(f"{where}: a 'tool' message requires a string 'tool_call_id'")
            if call_id not in answerable:
                raise RequestInvalid(
                    f"{where}: messages with role 'tool' must be a response to a preceding "
                    f"message with 'tool_calls'; tool_call_id {call_id!r} answers no pending call"
                )
            if "content" not in msg:
                raise RequestInvalid(f"{where}.content is required for role 'tool'")
            _check_content(msg["content"], where, role)
            answerable.discard(call_id)
            pending.remove(call_id)
            continue
        if pending:
            raise RequestInvalid(_UNANSWERED.format(ids=", ".join(pending)))
        answerable = set()
        if role == "assistant":
            calls = msg.get("tool_calls")
            if calls is not None:
                pending = _check_tool_calls(calls, where)
                answerable = set(pending)
            content = msg.get("content")
            if content is not None:
                _check_content(content, where, role)
            elif calls is None:
                raise RequestInvalid(f"{where}: an assistant message needs 'content' or 'tool_calls'")
        else:
            if "content" not in msg or msg["content"] is None:
                raise RequestInvalid(f"{where}.content is required for role '{role}'")
            _check_content(msg["content"], where, role)
    if pending:
        raise RequestInvalid(_UNANSWERED.format(ids=", ".join(pending)))

"""The messages of a state, checked in one pass: their shape and the history rules.

The shape is the one :data:`~.schema.STATE_SCHEMA` gives a message (``role`` one of
system/user/assistant/tool; ``content`` a string, a list of part objects or null;
``name`` a string; ``tool_call_id`` a non-empty string; ``tool_calls`` a non-empty list of
``{"id": non-empty string, "type": "function", "function": {"name": non-empty string,
"arguments": string}}``, ``type`` optional). The tests hold this pass and the schema to
the same answers. It is written out rather than compiled because it runs on every load
and costs a fraction of a compiled validator's per-object bookkeeping: on a 50-turn
state, about 100 µs against 370 µs, when ``json.dumps`` + ``json.loads`` cost 460 µs.

The history rules, which no JSON Schema can say:

* ``system`` and ``user`` messages have ``content``; ``tool`` messages have
  ``tool_call_id`` and ``content``;
* only ``assistant`` messages have ``tool_calls``, with ids unique within the message;
* a ``tool`` message answers a call of the assistant message just before its run of tool
  messages, and each call is answered at most once.

A call left without its result is not a problem here (the conversation repairs it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["messages_problem", "ROLES"]

ROLES = ("system", "user", "assistant", "tool")
_ROLE_SET = frozenset(ROLES)


def _got(value: Any) -> str:
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:59] + '…'})"


def _tool_calls_problem(index: int, tool_calls: Any, ids: set[str]) -> str | None:
    """The first problem of the ``tool_calls`` of message ``index``; fills ``ids``."""
    if not isinstance(tool_calls, list) or not tool_calls:
        return f"messages[{index}].tool_calls: must be a non-empty array{_got(tool_calls)}"
    for position, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        call_id = call.get("id") if function is not None else None
        if (type(call_id) is str and call_id and call_id not in ids
                and isinstance(function, dict) and type(function.get("name")) is str
                and function["name"] and type(function.get("arguments")) is str
                and call.get("type", "function") == "function"):
            ids.add(call_id)
            continue
        problem = _call_problem(f"messages[{index}].tool_calls[{position}]", call, ids)
        if problem is not None:
            return problem
        ids.add(call["id"])  # a valid call the fast test missed (str subclasses)
    return None


def _call_problem(at: str, call: Any, ids: set[str]) -> str | None:
    """What is wrong with one tool call, or ``None``."""
    if not isinstance(call, dict):
        return f"{at}: must be object{_got(call)}"
    call_id, function = call.get("id"), call.get("function")
    if not isinstance(call_id, str) or not call_id:
        return f"{at}.id: must be a non-empty string{_got(call_id)}"
    if "type" in call and call["type"] != "function":
        return f"{at}.type: must be 'function'{_got(call['type'])}"
    if not isinstance(function, dict):
        return f"{at}.function: must be object{_got(function)}"
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str) or not name:
        return f"{at}.function.name: must be a non-empty string{_got(name)}"
    if not isinstance(arguments, str):
        return f"{at}.function.arguments: must be string{_got(arguments)}"
    if call_id in ids:
        return f"{at}.id: {call_id!r} is used twice in one message"
    return None


def messages_problem(messages: list[Any]) -> str | None:
    """The first problem of ``messages`` as ``"messages[i].field: problem"``, or ``None``.

    ``messages`` must be a list (the state schema sees to that). Written for speed: it
    runs on every load, over every message."""
    calls: set[str] = set()  # ids of the calls of the last assistant message
    answered: set[str] = set()
    for index, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, dict):
            return f"messages[{index}]: must be object{_got(message)}"
        role = message.get("role")
        content = message.get("content")
        if type(content) is not str and content is not None:
            if isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                        return (f"messages[{index}].content: each part must be an object with "
                                f"a 'type'{_got(part)}")
                    if part["type"] == "text" and not isinstance(part.get("text"), str):
                        return f"messages[{index}].content: a text part's 'text' must be a string"
            elif not isinstance(content, str):
                return f"messages[{index}].content: must be string, array or null{_got(content)}"
        if (type(role) is not str or role not in _ROLE_SET
                or len(message) > (2 if "content" in message else 1)):  # other fields too
            problem = _other_fields_problem(index, message)
            if problem is not None:
                return problem
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                return f"messages[{index}]: a tool message needs 'tool_call_id'"
            if content is None:
                return f"messages[{index}]: a tool message needs 'content'"
            if call_id not in calls:
                return (f"messages[{index}].tool_call_id: {call_id!r} answers no tool call "
                        f"of the assistant message before it")
            if call_id in answered:
                return f"messages[{index}].tool_call_id: {call_id!r} is answered twice"
            answered.add(call_id)
            if "tool_calls" in message:
                return f"messages[{index}]: only assistant messages have 'tool_calls'"
            continue
        calls, answered = set(), set()  # a result must follow its call directly
        if role == "assistant":
            if "tool_calls" in message:
                problem = _tool_calls_problem(index, message["tool_calls"], calls)
                if problem is not None:
                    return problem
            elif content is None:
                return f"messages[{index}]: an assistant message needs 'content' or 'tool_calls'"
            continue
        if "tool_calls" in message:
            return f"messages[{index}]: only assistant messages have 'tool_calls'"
        if content is None:
            return f"messages[{index}]: a {role} message needs 'content'"
    return None


def _other_fields_problem(index: int, message: dict[str, Any]) -> str | None:
    """``role``, ``name`` and ``tool_call_id`` of one message."""
    role = message.get("role")
    call_id = message.get("tool_call_id", "")
    if (type(role) is str and role in _ROLE_SET and type(message.get("name", "")) is str
            and type(call_id) is str and (call_id or "tool_call_id" not in message)):
        return None  # the common case, without building a message
    where = f"messages[{index}]"
    if "role" not in message:
        return f"{where}: missing 'role'"
    if not isinstance(role, str) or role not in ROLES:
        return f"{where}.role: must be one of {list(ROLES)}{_got(role)}"
    if "name" in message and not isinstance(message["name"], str):
        return f"{where}.name: must be string{_got(message['name'])}"
    if "tool_call_id" in message:
        if not isinstance(call_id, str) or not call_id:
            return f"{where}.tool_call_id: must be a non-empty string{_got(call_id)}"
    return None

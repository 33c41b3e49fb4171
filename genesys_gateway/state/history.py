"""The rules of a chat-completions history that a JSON Schema cannot say.

Checked on every load, after the state schema (so the shapes are known to be right):

* ``system`` and ``user`` messages have ``content`` (a string or a list of parts);
* ``tool`` messages have ``tool_call_id`` and ``content``;
* only ``assistant`` messages have ``tool_calls``, with ids unique within the message;
* a ``tool`` message answers a call of the assistant message just before its run of
  tool messages, and each call is answered at most once.

A call left without its result is not a problem here (the conversation repairs it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["history_problem"]


def history_problem(messages: list[dict[str, Any]]) -> str | None:
    """The first rule ``messages`` breaks, as ``"messages[i].field: problem"``, or ``None``.

    ``messages`` must already satisfy the state schema."""
    calls: set[str] = set()  # ids of the last assistant message's calls
    answered: set[str] = set()
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                return f"messages[{index}]: a tool message needs 'tool_call_id'"
            if message.get("content") is None:
                return f"messages[{index}]: a tool message needs 'content'"
            if call_id not in calls:
                return (f"messages[{index}].tool_call_id: {call_id!r} answers no tool call "
                        f"of the assistant message before it")
            if call_id in answered:
                return f"messages[{index}].tool_call_id: {call_id!r} is answered twice"
            answered.add(call_id)
            continue
        tool_calls = message.get("tool_calls")
        if role == "assistant":
            calls, answered = set(), set()
            if tool_calls is not None:
                for position, call in enumerate(tool_calls):
                    if call["id"] in calls:
                        return (f"messages[{index}].tool_calls[{position}].id: "
                                f"{call['id']!r} is used twice in one message")
                    calls.add(call["id"])
            continue
        calls = set()  # results must follow their call directly
        if tool_calls is not None:
            return f"messages[{index}]: only assistant messages have 'tool_calls'"
        if message.get("content") is None:
            return f"messages[{index}]: a {role} message needs 'content'"
    return None

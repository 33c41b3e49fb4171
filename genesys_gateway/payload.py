"""The body of a chat-completions request: messages in wire form, the payload with the
client's and the call's parameters merged in their order, and its JSON encoding."""

from __future__ import annotations

import json
from collections import abc
from typing import Any, Iterable, Mapping, Sequence

from .models import Message, message_to_dict
from .options import ClientOptions

__all__ = ["build_payload", "wire_messages", "json_body"]


def build_payload(options: ClientOptions, messages: list[dict[str, Any]],
                  tools: Sequence[Mapping[str, Any]] | None, params: Mapping[str, Any],
                  extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model``, ``messages``, ``tools``; then the client's parameters, the call's, the
    client's ``extra_body`` and the call's, each winning over the ones before. Without
    tools, ``tool_choice`` and ``parallel_tool_calls`` are left out (servers refuse them)."""
    payload: dict[str, Any] = {"model": options.model, "messages": messages}
    if tools:
        payload["tools"] = list(tools)
    if options.params:
        payload.update(options.params)
    if params:
        payload.update(params)
    if not tools:
        payload.pop("tool_choice", None)
        payload.pop("parallel_tool_calls", None)
    if options.extra_body:
        payload.update(options.extra_body)
    if extra_body:
        payload.update(extra_body)
    return payload


def wire_messages(messages: Iterable[Mapping[str, Any] | Message]) -> list[dict[str, Any]]:
    """OpenAI-format message dicts (copied) from dicts or :class:`Message` objects."""
    if isinstance(messages, (str, bytes, abc.Mapping)):
        raise TypeError("messages must be a list of message dicts (or Message objects)")
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(message_to_dict(m))
        elif isinstance(m, abc.Mapping):  # collections.abc: typing's alias is slow to check
            out.append(dict(m))
        else:
            raise TypeError(f"each message must be a dict or a Message, got {type(m).__name__}")
    return out


def json_body(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON. Text that cannot be UTF-8 (a lone surrogate
    from a model, a tool or a terminal) is replaced rather than failing the request."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")

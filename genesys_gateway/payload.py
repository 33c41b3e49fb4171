"""The body of a chat-completions request: messages in wire form, the payload with the
client's and the call's parameters merged in their order, and its JSON encoding."""

from __future__ import annotations

from collections import abc
from typing import Any, Iterable, Mapping, Sequence

from .models import Message, message_to_dict
from .options import ClientOptions
from .tools.definitions import EncodedDefinitions, encode

__all__ = ["build_payload", "wire_messages", "json_body"]


def build_payload(options: ClientOptions, messages: list[dict[str, Any]],
                  tools: Sequence[Mapping[str, Any]] | None, params: Mapping[str, Any],
                  extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model``, ``messages``, ``tools``; then the client's parameters, the call's, the
    client's ``extra_body`` and the call's, each winning over the ones before. Without
    tools, ``tool_choice`` and ``parallel_tool_calls`` are left out (servers refuse them)."""
    payload: dict[str, Any] = {"model": options.model, "messages": messages}
    if tools:  # a snapshot's definitions keep their JSON, encoded once (json_body)
        payload["tools"] = (EncodedDefinitions(tools, tools.encoded)
                            if type(tools) is EncodedDefinitions else list(tools))
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
    tools = payload.get("tools")
    if type(tools) is EncodedDefinitions:  # splice the definitions' JSON, in key order
        items = list(payload.items())
        at = [key for key, _ in items].index("tools")
        head = encode(dict(items[:at]))[:-1]
        tail = encode(dict(items[at + 1:]))[1:]
        text = f'{head}{"," if at else ""}"tools":{tools.encoded}{"," if len(tail) > 1 else ""}{tail}'
    else:
        text = encode(payload)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")

"""Reply specs for :class:`GatewayEmulator`: building, loading and rendering them.

A *reply spec* is a small dict describing one assistant turn::

    {"content": "text or None", "tool_calls": [...], "usage": {...} | None, "finish_reason": ... | None}

Build one with :func:`reply` and :func:`tool_call`, or load a list from a JSON file with
:func:`load_script`. :func:`render_completion` turns a spec into a chat-completion body.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any, Callable, Iterable, Mapping, Union

__all__ = [
    "Responder",
    "ScriptItem",
    "echo_reply",
    "estimate_tokens",
    "load_script",
    "render_completion",
    "reply",
    "tool_call",
]

#: A callable that receives the parsed request body and returns a reply spec, a raw chat
#: completion (a dict with ``"choices"``) or a plain string (the assistant's content).
Responder = Callable[[dict[str, Any]], Union[Mapping[str, Any], str]]
#: What :meth:`GatewayEmulator.script` accepts: a reply spec, a raw completion, a string or a
#: :data:`Responder`.
ScriptItem = Union[Mapping[str, Any], str, Responder]


def tool_call(
    name: str, arguments: Mapping[str, Any] | str | None = None, id: str | None = None
) -> dict[str, Any]:
    """One assistant tool call in OpenAI wire format.

    *arguments* may be a mapping (JSON-encoded here) or a string sent verbatim, so a test can
    make the model send invalid JSON. *id* defaults to ``call_<random hex>``.
    """
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, str):
        arguments = json.dumps(dict(arguments), ensure_ascii=False)
    return {
        "id": id if id is not None else "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def reply(
    content: str | None = None,
    tool_calls: Iterable[Mapping[str, Any]] = (),
    usage: Mapping[str, int] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """An assistant reply spec.

    *tool_calls* items may come from :func:`tool_call` or be the short form
    ``{"name": ..., "arguments": {...}, "id"?: ...}``. *usage* replaces the estimated token
    counts; *finish_reason* defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``.
    """
    return {
        "content": content,
        "tool_calls": [_normalize_tool_call(c) for c in tool_calls],
        "usage": dict(usage) if usage is not None else None,
        "finish_reason": finish_reason,
    }


def _normalize_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise TypeError(f"a tool call must be a mapping, got {type(call).__name__}")
    if "function" in call:  # already wire format; still encode dict arguments
        fn = dict(call["function"])
        if not isinstance(fn.get("arguments", ""), str):
            fn["arguments"] = json.dumps(fn["arguments"], ensure_ascii=False)
        out = dict(call)
        out.setdefault("id", "call_" + secrets.token_hex(12))
        out.setdefault("type", "function")
        out["function"] = fn
        return out
    if "name" not in call:
        raise ValueError(f"a tool call needs a 'name': {dict(call)!r}")
    return tool_call(call["name"], call.get("arguments"), call.get("id"))


def _normalize_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A user-written reply spec (perhaps partial, or an OpenAI message) as a full spec."""
    return reply(
        content=spec.get("content"),
        tool_calls=spec.get("tool_calls") or (),
        usage=spec.get("usage"),
        finish_reason=spec.get("finish_reason"),
    )


def load_script(source: str | os.PathLike[str] | Iterable[Any]) -> list[dict[str, Any]]:
    """Reply specs from a JSON file path, or from an already-parsed list.

    The file holds a list (or ``{"replies": [...]}``) whose items are reply specs such as
    ``{"content": "...", "tool_calls": [{"name": "get_weather", "arguments": {...}}]}``,
    raw chat completions (objects with ``"choices"``), or plain strings (content).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as fh:
            data = json.load(fh)
    else:
        data = source
    if isinstance(data, Mapping) and "replies" in data:
        data = data["replies"]
    if not isinstance(data, (list, tuple)):
        raise ValueError("a script must be a JSON list of replies")
    specs: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            specs.append(reply(item))
        elif isinstance(item, Mapping) and "choices" in item:
            if not isinstance(item["choices"], list):
                raise ValueError(f"script item {i}: 'choices' must be a list (a whole chat completion)")
            specs.append(dict(item))
        elif isinstance(item, Mapping):
            try:
                _check_spec(item)
                specs.append(_normalize_spec(item))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"script item {i}: {exc}") from None
        else:
            raise ValueError(f"script item {i} must be an object or a string, got {type(item).__name__}")
    return specs


_SPEC_KEYS = ("content", "tool_calls", "usage", "finish_reason")


def _check_spec(spec: Mapping[str, Any]) -> None:
    """A reply spec written by hand (a script file) says what it means: no unknown key (a
    typo would silently send an empty message), and each value of the right JSON type."""
    unknown = sorted(str(k) for k in spec if k not in _SPEC_KEYS and k != "role")
    if unknown:
        raise ValueError(f"unknown key {', '.join(repr(k) for k in unknown)}; a reply's keys are "
                         f"{', '.join(_SPEC_KEYS)} (or a whole completion with 'choices')")
    content, usage, finish = spec.get("content"), spec.get("usage"), spec.get("finish_reason")
    if content is not None and not isinstance(content, (str, list)):
        raise ValueError(f"'content' must be a string or null, got {type(content).__name__}")
    if finish is not None and not isinstance(finish, str):
        raise ValueError(f"'finish_reason' must be a string, got {type(finish).__name__}")
    if usage is not None and not (isinstance(usage, Mapping) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in usage.values())):
        raise ValueError('\'usage\' must be an object of token counts, like '
                         '{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}')
    calls = spec.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise ValueError(f"'tool_calls' must be a list, got {type(calls).__name__}")
    for call in calls or ():
        arguments = call.get("arguments") if isinstance(call, Mapping) else None
        if arguments is not None and not isinstance(arguments, (Mapping, str)):
            raise ValueError(f"a tool call's 'arguments' must be an object (or a string sent "
                             f"verbatim), got {type(arguments).__name__}")


def estimate_tokens(messages: object) -> int:
    """A cheap, deterministic token estimate: about one token per four characters."""
    chars = 0
    if isinstance(messages, list):
        for msg in messages:
            chars += 16  # role and framing
            if not isinstance(msg, dict):
                continue
            chars += _content_chars(msg.get("content"))
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return max(1, chars // 4)


def _content_chars(content: object) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text", "")) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return 0


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def echo_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The default reply: ``"Echo: "`` followed by the text of the last user message."""
    for msg in reversed(body.get("messages") or ()):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return reply("Echo: " + _text_of(msg.get("content")))
    return reply("Echo: ")


def coerce_reply(result: object) -> dict[str, Any]:
    """Turn what a script item or responder produced into a spec or a raw completion."""
    if isinstance(result, str):
        return reply(result)
    if isinstance(result, Mapping):
        if "choices" in result:
            return dict(result)
        return _normalize_spec(result)
    raise TypeError(f"a reply must be a dict or a string, got {type(result).__name__}")


def render_completion(spec: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The chat-completion body for a reply spec (a raw completion is returned unchanged)."""
    if "choices" in spec:
        return spec
    tool_calls = spec.get("tool_calls") or []
    message: dict[str, Any] = {"role": "assistant", "content": spec.get("content")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = spec.get("usage")
    if usage is None:
        prompt = estimate_tokens(request.get("messages"))
        completion = max(1, estimate_tokens([message]) - 4)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": spec.get("finish_reason") or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage,
    }

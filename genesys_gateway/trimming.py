"""History trimming: the oldest whole turns are dropped to keep a request under an
estimate of ``max_history_tokens`` tokens.

The estimate is the ``prompt_tokens`` the server reported for the last request (which
counts everything the server counts: the tool definitions, its own framing) plus a
character estimate (characters / 4, and a few tokens per message) of what was added to
the history since. Before any request was measured, every message is estimated by
characters. Dropping a message subtracts its character estimate.

A *turn* is a user message and everything up to the next user message. Only whole turns
are dropped, oldest first, so an assistant message is never separated from its tool
results (in a valid history a tool message directly follows the assistant message whose
call it answers, before any user message). Never dropped: whatever precedes the first
user message (the system message, a greeting), the system messages inside dropped turns
(they are kept in place), and the turn that the current run works on (``protect_from``
onwards). When that is not enough the request is sent as it is: the limit is a goal, the
run's own turn is not given up for it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import attrs

__all__ = ["Measured", "message_tokens", "estimate", "trim_history"]

_MESSAGE_OVERHEAD = 4  # tokens of framing per message (role, separators)
_PART_CHARS = 1024  # characters counted for a content part that is not text (an image)


@attrs.frozen
class Measured:
    """What the server reported for the last request: ``prompt_tokens`` for the first
    ``messages`` messages of the history."""

    prompt_tokens: int
    messages: int


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        chars = 0
        for part in content:
            text = part.get("text") if isinstance(part, dict) else None
            chars += len(text) if isinstance(text, str) else _PART_CHARS
        return chars
    return 0


def message_tokens(message: Mapping[str, Any]) -> int:
    """The character estimate of one message, in tokens."""
    chars = _content_chars(message.get("content"))
    calls = message.get("tool_calls")
    if calls:
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for field in ("name", "arguments"):
                    value = function.get(field)
                    if isinstance(value, str):
                        chars += len(value)
    return chars // 4 + _MESSAGE_OVERHEAD


def estimate(messages: Sequence[Mapping[str, Any]], measured: Measured | None) -> int:
    """The token estimate of a request with ``messages``."""
    if measured is None or measured.messages > len(messages):
        return sum(message_tokens(m) for m in messages)
    return measured.prompt_tokens + sum(message_tokens(m) for m in messages[measured.messages:])


def trim_history(messages: list[dict[str, Any]], max_tokens: int, *, protect_from: int,
                 measured: Measured | None = None) -> tuple[int, Measured | None]:
    """Drop the oldest whole turns before ``messages[protect_from]`` (the user message the
    current run answers) in place until the estimate is at most ``max_tokens``.

    Returns how many messages were removed, and ``measured`` adjusted to the shorter
    history (``None`` when it does not describe it)."""
    if measured is not None and measured.messages > len(messages):
        measured = None
    # the estimate = what remains of the measured part (never below 0) + the rest
    counted = 0 if measured is None else measured.messages
    base = 0 if measured is None else measured.prompt_tokens
    costs = [message_tokens(m) for m in messages[counted:]]
    rest = sum(costs)
    if base + rest <= max_tokens:
        return 0, measured
    protect_from = min(protect_from, len(messages))
    starts = [i for i in range(protect_from) if messages[i].get("role") == "user"]
    if not starts:
        return 0, measured
    ends = starts[1:] + [protect_from]
    gone_measured = gone_measured_count = 0
    turns = 0
    while turns < len(starts) and max(0, base - gone_measured) + rest > max_tokens:
        for index in range(starts[turns], ends[turns]):
            message = messages[index]
            if message.get("role") == "system":
                continue  # kept
            if index < counted:
                gone_measured += message_tokens(message)
                gone_measured_count += 1
            else:
                rest -= costs[index - counted]
        turns += 1
    first, cut = starts[0], ends[turns - 1]
    kept = [m for m in messages[first:cut] if m.get("role") == "system"]
    messages[first:cut] = kept
    if measured is not None:
        measured = Measured(max(0, base - gone_measured), counted - gone_measured_count)
    return cut - first - len(kept), measured

"""A conversation's persisted form (state version 1, see :mod:`genesys_gateway.state`):
building it, signing it with HMAC-SHA256, and restoring a conversation from it.

Restoring checks the state (:func:`~genesys_gateway.state.check_state`: its version, its
schema, the history rules), verifies its signature when a key is given, and then:

* a tool call left without its result (not pending) is *repaired*: it is answered with a
  tool message ``"Error: the tool result was lost"`` (logged at WARNING), so the history
  can be sent;
* pending calls must be unanswered calls of the last assistant message, with the same
  tool name; anything else is a :class:`~genesys_gateway.errors.StateError`.

Signing: ``"signature"`` is the hex HMAC-SHA256, under the key, of the state's canonical
JSON without its signature (keys sorted, no spaces, ASCII). A state kept client-side (a
browser's hidden field, a cookie) then cannot be altered without the key.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from typing import Any

import attrs

from .errors import StateError
from .models import Usage
from .result import PendingCall
from .session import Session
from .state import STATE_VERSION, check_state
from .state.schema import describe_id
from .trimming import Measured

__all__ = ["LOST_RESULT", "Restored", "build_state", "check_key", "restore", "sign"]

logger = logging.getLogger("genesys_gateway.conversation")

#: The content of the tool message that answers a call whose result was lost.
LOST_RESULT = "Error: the tool result was lost"
_SIGNATURE = "signature"


@attrs.frozen
class Restored:
    """What a state restores: the conversation's id, history, session and usage."""

    id: str
    messages: list[dict[str, Any]]
    session: Session
    usage: Usage


def check_key(key: object) -> bytes | None:
    """``key`` when it is ``None`` or non-empty ``bytes``; else ``TypeError``/``ValueError``."""
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key must be bytes (e.g. b'...'), got {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    return bytes(key)


def build_state(conversation_id: str, messages: list[dict[str, Any]], session: Session,
                usage: Usage, *, copied: bool = True) -> dict[str, Any]:
    """The version-1 state; ``copied=False`` shares the messages (for a store, which
    encodes them at once)."""
    first = messages[0] if messages else None
    system = (first["content"] if first is not None and first.get("role") == "system"
              and isinstance(first.get("content"), str) else None)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "id": conversation_id,
        "messages": copy.deepcopy(messages) if copied else messages,
        "pending": [{"call_id": call.call_id, "name": call.name,
                     "arguments": copy.deepcopy(call.arguments) if copied else call.arguments}
                    for call in session.pending],
        "ran": list(session.ran),
        "usage": {"prompt_tokens": usage.prompt_tokens,
                  "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.total_tokens},
        "system": system,
    }
    if session.measured is not None:
        state["last_request"] = {"prompt_tokens": session.measured.prompt_tokens,
                                 "messages": session.measured.messages}
    return state


def _canonical(state: dict[str, Any], named: str | None) -> bytes:
    unsigned = {k: v for k, v in state.items() if k != _SIGNATURE}
    try:
        text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateError(f"{describe_id(named)}: the state is not JSON data: {exc}",
                         conversation_id=named) from None
    return text.encode("ascii")


def _digest(state: dict[str, Any], key: bytes, named: str | None) -> str:
    return hmac.new(key, _canonical(state, named), hashlib.sha256).hexdigest()


def sign(state: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``state`` with its ``"signature"`` (in place; returned for convenience)."""
    state[_SIGNATURE] = _digest(state, key, state.get("id"))
    return state


def _verify(data: dict[str, Any], key: bytes, named: str | None) -> None:
    signature = data.get(_SIGNATURE)
    if signature is None:
        raise StateError(f"{describe_id(named)}: the state is not signed, but a key was "
                         f"given: it may have been altered", conversation_id=named)
    expected = _digest(data, key, named)
    if not isinstance(signature, str) or not hmac.compare_digest(
            signature.encode("utf-8", "replace"), expected.encode("ascii")):
        raise StateError(f"{describe_id(named)}: the state's signature does not match: it "
                         f"was altered, or signed with another key", conversation_id=named)


def restore(data: Any, *, key: bytes | None, conversation_id: str | None = None,
            from_store: bool = False, max_history_tokens: int | None = None) -> Restored:
    """Check, verify and repair ``data``; ``StateError`` when it cannot be used.
    ``from_store``: ``data`` is what a store's ``load`` returned (already checked, and a
    fresh parse: used as it is, not copied)."""
    if key is not None and isinstance(data, dict):
        inner = data.get("id")
        _verify(data, key, conversation_id if conversation_id is not None
                else inner if isinstance(inner, str) else None)
    if not from_store:
        check_state(data, conversation_id=conversation_id)
        try:
            data = copy.deepcopy(data)
        except RecursionError:  # extra keys nested absurdly deep (the checks allow extras)
            named_id = conversation_id if conversation_id is not None else str(data.get("id"))
            raise StateError(f"{describe_id(named_id)}: invalid state: nested too deeply",
                             conversation_id=named_id) from None
    named: str = data["id"]
    pending = [PendingCall(p["call_id"], p["name"], p["arguments"]) for p in data["pending"]]
    messages, repaired = _repaired(data["messages"], pending, named)
    measured = data.get("last_request")
    session = Session(pending, data["ran"], max_history_tokens,
                      None if measured is None or repaired
                      else Measured(measured["prompt_tokens"], measured["messages"]))
    usage = data["usage"]
    return Restored(named, messages, session, Usage(
        usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]))


def _last_calls(messages: list[dict[str, Any]]) -> int | None:
    """The index of the assistant message whose tool results end the history, if any."""
    index = len(messages)
    while index > 0 and messages[index - 1].get("role") == "tool":
        index -= 1
    if index > 0 and messages[index - 1].get("role") == "assistant" \
            and messages[index - 1].get("tool_calls"):
        return index - 1
    return None


def _check_pending(messages: list[dict[str, Any]], pending: list[PendingCall],
                   last: int | None, named: str) -> None:
    def refuse(index: int, problem: str) -> StateError:
        return StateError(f"{describe_id(named)}: invalid state: pending[{index}]: {problem}",
                          conversation_id=named)

    if last is None:
        raise refuse(0, "a pending call must be a call of the last assistant message, and "
                        "the history does not end with tool calls")
    names = {c["id"]: c["function"]["name"] for c in messages[last]["tool_calls"]}
    sent = {c["id"]: c["function"]["arguments"] for c in messages[last]["tool_calls"]}
    answered = {m.get("tool_call_id") for m in messages[last + 1:]}
    for index, call in enumerate(pending):
        if call.call_id not in names:
            raise refuse(index, f"{call.call_id!r} is not a call of the last assistant message")
        if call.call_id in answered:
            raise refuse(index, f"{call.call_id!r} is pending but has a result")
        if names[call.call_id] != call.name:
            raise refuse(index, f"{call.call_id!r} is a call of {names[call.call_id]!r}, "
                                f"not {call.name!r}")
        if not _same_arguments(sent[call.call_id], call.arguments):
            raise refuse(index, f"the arguments of {call.call_id!r} are not the ones the "
                                "model sent in the history")


def _same_arguments(sent: Any, pending: Any) -> bool:
    """Whether the pending arguments are the model's arguments (the history's JSON text),
    with the tool's schema defaults allowed on top: every key the model sent must hold the
    same value, so an approval can never run arguments the model (and the approver) did
    not see."""
    try:
        parsed = json.loads(sent) if isinstance(sent, str) else None
    except (ValueError, RecursionError):
        return False
    if not isinstance(parsed, dict) or not isinstance(pending, dict):
        return False
    return all(key in pending and pending[key] == value for key, value in parsed.items())


def _repaired(messages: list[dict[str, Any]], pending: list[PendingCall],
              named: str) -> tuple[list[dict[str, Any]], bool]:
    """``messages`` with a lost result for every call without one (pending calls
    excepted), and whether any was added."""
    last = _last_calls(messages)
    pending_ids = {call.call_id for call in pending}
    if pending:
        _check_pending(messages, pending, last, named)
    insertions: list[tuple[int, list[str]]] = []
    index, count = 0, len(messages)
    while index < count:
        calls = messages[index].get("tool_calls")
        index += 1
        if not calls:
            continue
        start = index
        while index < count and messages[index].get("role") == "tool":
            index += 1
        answered = {m.get("tool_call_id") for m in messages[start:index]}
        waiting = pending_ids if start - 1 == last else ()
        missing = [c["id"] for c in calls if c["id"] not in answered and c["id"] not in waiting]
        if missing:
            insertions.append((index, missing))
    if not insertions:
        return messages, False
    out: list[dict[str, Any]] = []
    previous = 0
    for position, ids in insertions:
        out.extend(messages[previous:position])
        out.extend({"role": "tool", "tool_call_id": call_id, "content": LOST_RESULT}
                   for call_id in ids)
        previous = position
    out.extend(messages[previous:])
    lost = [call_id for _, ids in insertions for call_id in ids]
    logger.warning("%s: %d tool call(s) had no result (%s); answered with %r",
                   describe_id(named), len(lost), ", ".join(lost), LOST_RESULT)
    return out, True

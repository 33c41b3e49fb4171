"""The data of tool calls, shared by the executor and the loop (a leaf module).

:class:`ToolCallRequest` is one call from the model on its way to the executor;
:class:`ToolRun` is its outcome. :func:`plan_calls` turns the calls of one assistant turn
into requests with ids that are present and unique within the turn, noting which calls
cannot be run (no id, a repeated id, no arguments) so that the executor answers them.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal

import attrs

__all__ = ["ToolRun", "ToolRunStatus", "ToolCallRequest", "plan_calls", "MISSING_NAME"]

ToolRunStatus = Literal["ok", "invalid_arguments", "unknown_tool", "timeout", "error",
                        "invalid_output", "rejected", "repeated", "denied"]
"""``"rejected"``: the pool is saturated by hung calls, or the executor is closed;
``"repeated"``: the loop guard stopped the call; ``"denied"``: a person denied a call
that needed approval (``conversation.resume(deny=...)``)."""

#: The name given to a call the model sent without one (answered as an unknown tool).
MISSING_NAME = "missing_tool_name"


@attrs.frozen
class ToolRun:
    """The outcome of one tool call.

    Attributes:
        call_id: the call's id, as echoed to the model in the assistant message.
        name: the tool's name (``"missing_tool_name"`` if the model sent none).
        arguments: the validated arguments (schema defaults applied) when they
            validated, the parsed model arguments otherwise, ``None`` when not a JSON
            object (or nested too deeply to handle at all).
        status: how it ended (:data:`ToolRunStatus`).
        content: exactly what the model is sent in the ``role: tool`` message.
        error: what went wrong, for people and logs; ``None`` when ``status`` is ``"ok"``.
        duration_s: seconds from validation to the result.
        truncated: whether ``content`` was cut to the client's ``max_tool_result_chars``.
    """

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    status: ToolRunStatus
    content: str
    error: str | None = None
    duration_s: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """``status == "ok"``."""
        return self.status == "ok"


@attrs.frozen
class ToolCallRequest:
    """One tool call from the model.

    ``arguments_json`` is the raw argument string (possibly invalid JSON). ``problem``,
    when set, says why the call is answered without being run, with ``problem_status``
    as its :class:`ToolRun` status.
    """

    call_id: str
    name: str
    arguments_json: str | None = None
    problem: str | None = None
    problem_status: ToolRunStatus = "error"


def _wire_text(text: str) -> str:
    """``text`` as it reads once encoded to UTF-8 with replacement (the request body's rule)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _unique(candidate: str, taken: set[str]) -> str:
    if candidate not in taken:
        return candidate
    n = 2
    while f"{candidate}_{n}" in taken:
        n += 1
    return f"{candidate}_{n}"


def plan_calls(calls: Iterable[tuple[str | None, str | None, str | None]]) -> list[ToolCallRequest]:
    """One request per ``(id, name, arguments)`` of a turn, in order.

    Every request gets an id unique against every id in the turn: a call without an id
    gets ``call_missing_id_<index>``, a repeated id gets ``<id>_<n>`` (the first use keeps
    it); both are answered without running, as is a call without arguments. A call
    without a name is named ``missing_tool_name`` (answered as an unknown tool).
    """
    # ids as they will be on the wire: text that cannot be UTF-8 (lone surrogates) is
    # replaced when the request is encoded, so "\ud800x" and "\udc00x" would both be "?x"
    calls = [(_wire_text(call_id) if call_id else call_id, name, arguments)
             for call_id, name, arguments in calls]
    taken = {call_id for call_id, _, _ in calls if call_id}
    seen: set[str] = set()
    requests = []
    for index, (call_id, name, arguments) in enumerate(calls):
        if call_id and call_id not in seen and arguments is not None:  # the usual call
            seen.add(call_id)
            requests.append(ToolCallRequest(call_id, name or MISSING_NAME, arguments))
            continue
        problem: str | None = None
        status: ToolRunStatus = "error"
        if not call_id:
            call_id = _unique(f"call_missing_id_{index}", taken)
            problem = "the tool call has no id; call the tool again"
        elif call_id in seen:
            original = call_id
            call_id = _unique(original, taken)
            problem = f"duplicate tool call id {original!r}; use a unique id per call"
        elif arguments is None:
            problem = "the tool call has no arguments; send a JSON object ({} for none)"
            status = "invalid_arguments"
        taken.add(call_id)
        seen.add(call_id)
        requests.append(ToolCallRequest(call_id, name or MISSING_NAME, arguments, problem, status))
    return requests

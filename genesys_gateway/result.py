"""The outcome of a run: :class:`RunResult` and :data:`StopReason` (a leaf module)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .models import Usage
from .tools.calls import ToolRun

__all__ = ["PendingCall", "RunResult", "StopReason"]

StopReason = Literal["completed", "max_iterations", "deadline", "length", "content_filter",
                     "invalid_output", "cancelled", "usage_limit", "approval_required"]
"""Why a run ended: ``"completed"`` (the model answered), ``"max_iterations"`` (the bound
on model calls was hit), ``"deadline"`` (the run's deadline passed), ``"length"`` (the
answer was cut by the token limit; ``content`` holds the partial text),
``"content_filter"`` (the server withheld or cut the answer; ``content`` holds what came),
``"invalid_output"`` (a structured answer was still invalid after ``output_retries``
corrections; ``content`` holds the last answer), ``"cancelled"`` (a stream was closed
before the end), ``"usage_limit"`` (a :class:`~genesys_gateway.Limits` bound would have
been exceeded), ``"approval_required"`` (the model called a tool registered with
``requires_approval=True``: ``pending`` lists the calls waiting for
``conversation.resume(approve=..., deny=...)``)."""


@attrs.frozen
class PendingCall:
    """A call of a ``requires_approval=True`` tool, waiting for a person's decision.

    Attributes:
        call_id: the tool call's id (name it in ``conversation.resume(approve=[...])``).
        name: the tool's name.
        arguments: the validated arguments (schema defaults applied): exactly what the
            tool is called with when the call is approved.
    """

    call_id: str
    name: str
    arguments: dict[str, Any]


@attrs.frozen
class RunResult:
    """The outcome of one run: one user message and every model and tool round it caused.

    Attributes:
        content: the final answer's text; ``None`` when the run stopped before an answer
            (``"max_iterations"``, ``"deadline"``); the partial text for ``"length"`` and
            ``"content_filter"``. With structured output, the answer's JSON text (in
            ``output_mode="tool"``, the ``final_answer`` call's arguments).
        stop_reason: why the run ended (:data:`StopReason`); a bound is never an answer.
        messages: the whole history after the run, in OpenAI wire format.
        tool_runs: every tool call of the run, in order.
        iterations: model calls made.
        usage: token counts summed over every model call of the run.
        conversation_id: the conversation the run belongs to.
        finish_reason: the last model call's ``finish_reason`` (``None`` before any).
        output: the structured answer of a run with ``output_type`` (an instance of it)
            or ``output_schema`` (the parsed JSON); ``None`` without them, and whenever
            the run did not complete.
        pending: the calls waiting for approval (stop reason ``"approval_required"``),
            in the order the model made them; empty otherwise.
    """

    content: str | None
    stop_reason: StopReason
    messages: list[dict[str, Any]]
    tool_runs: tuple[ToolRun, ...]
    iterations: int
    usage: Usage
    conversation_id: str
    finish_reason: str | None = None
    output: Any = None
    pending: tuple[PendingCall, ...] = ()

    @property
    def completed(self) -> bool:
        """``stop_reason == "completed"``."""
        return self.stop_reason == "completed"

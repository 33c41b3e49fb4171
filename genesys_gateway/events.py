"""A run as events: what :class:`~genesys_gateway.stream.RunStream` yields.

Each event is a frozen attrs class with a ``type`` string. ``RunFinished`` is always the
last event of a run that ends (a run closed early ends with no further event; its result,
with stop reason ``"cancelled"``, is the stream's ``result``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import attrs

from .models import Usage
from .result import RunResult
from .tools.calls import ToolRun

__all__ = ["Event", "TextDelta", "ToolCallStarted", "ToolCallFinished", "ModelCallFinished",
           "RunFinished"]


@attrs.frozen
class TextDelta:
    """Text of the model's answer, as it arrives (``type == "text_delta"``).

    Attributes:
        text: the next piece of the answer's text (join them for the whole answer).
    """

    type: ClassVar[str] = "text_delta"
    text: str


@attrs.frozen
class ToolCallStarted:
    """A tool call is complete and about to run (``type == "tool_call_started"``).

    Attributes:
        call_id: the tool call's id (as the model sent it, or as repaired).
        name: the tool's name.
        arguments: the model's arguments when they are a JSON object, else ``None``.
    """

    type: ClassVar[str] = "tool_call_started"
    call_id: str
    name: str
    arguments: dict[str, Any] | None


@attrs.frozen
class ToolCallFinished:
    """A tool call ended (``type == "tool_call_finished"``); parallel calls end in the order
    they finish (the history still gets their messages in call order).

    Attributes:
        run: the call's outcome (:class:`~genesys_gateway.ToolRun`), as it also appears
            in the result's ``tool_runs``.
    """

    type: ClassVar[str] = "tool_call_finished"
    run: ToolRun


@attrs.frozen
class ModelCallFinished:
    """A model call returned (``type == "model_call_finished"``).

    Attributes:
        iteration: which model call of the run this was, counting from 1.
        finish_reason: the call's ``finish_reason`` (``"stop"``, ``"tool_calls"``,
            ``"length"``...), or ``None`` when the server sent none.
        usage: the call's token counts.
    """

    type: ClassVar[str] = "model_call_finished"
    iteration: int
    finish_reason: str | None
    usage: Usage


@attrs.frozen
class RunFinished:
    """The run ended; always the last event (``type == "run_finished"``).

    Attributes:
        result: the run's :class:`~genesys_gateway.RunResult` (also the stream's
            ``result``).
    """

    type: ClassVar[str] = "run_finished"
    result: RunResult


Event = Union[TextDelta, ToolCallStarted, ToolCallFinished, ModelCallFinished, RunFinished]
"""Any event a :class:`~genesys_gateway.RunStream` yields; tell them apart with
``isinstance`` or their ``type`` string."""

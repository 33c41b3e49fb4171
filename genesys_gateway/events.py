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
    """Text of the model's answer, as it arrives (``type == "text_delta"``)."""

    type: ClassVar[str] = "text_delta"
    text: str


@attrs.frozen
class ToolCallStarted:
    """A tool call is complete and about to run (``type == "tool_call_started"``).
    ``arguments`` are the model's arguments when they are a JSON object, else ``None``."""

    type: ClassVar[str] = "tool_call_started"
    call_id: str
    name: str
    arguments: dict[str, Any] | None


@attrs.frozen
class ToolCallFinished:
    """A tool call ended (``type == "tool_call_finished"``); parallel calls end in the order
    they finish (the history still gets their messages in call order)."""

    type: ClassVar[str] = "tool_call_finished"
    run: ToolRun


@attrs.frozen
class ModelCallFinished:
    """A model call returned (``type == "model_call_finished"``); ``iteration`` counts from 1."""

    type: ClassVar[str] = "model_call_finished"
    iteration: int
    finish_reason: str | None
    usage: Usage


@attrs.frozen
class RunFinished:
    """The run ended; always the last event (``type == "run_finished"``)."""

    type: ClassVar[str] = "run_finished"
    result: RunResult


Event = Union[TextDelta, ToolCallStarted, ToolCallFinished, ModelCallFinished, RunFinished]

"""Printing a run for people, as it happens: what the ``demo`` and ``chat`` commands show.

:class:`Transcript` prints a :class:`~genesys_gateway.stream.RunStream`'s events: the
model's text as it arrives, a line per tool call (its arguments, status, duration and
result, in one JSON style) and, when asked, a line per model call.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

if TYPE_CHECKING:
    from .events import Event
    from .result import RunResult
    from .stream import RunStream
    from .tools.calls import ToolRun

__all__ = ["Transcript", "compact_json", "shorten"]


def compact_json(value: Any) -> str:
    """``value`` as one line of JSON in the style tool results are sent in (no spaces)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with ``...`` when longer."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[:max(0, width - 3)] + "..."


class Transcript:
    """Prints a run's events to ``out`` as they happen.

    Args:
        out: where to print.
        prefix: printed before the model's text (``"assistant> "``).
        model_calls: print a line per model call (finish reason and tokens).
        started: print a line when a tool call starts, and its result on a line of its own
            when it ends (else one line per tool call, the result at its end).
        result_width: characters of a tool's result shown.
        token_note: added after token counts (``" (estimated by the emulator)"``).
        clock: a monotonic clock, for the tool calls' span (:attr:`tools_span_s`).

    Attributes:
        tool_runs: the tool calls that ended, in the order they ended.
        tools_span_s: seconds from the first tool call's start to the last one's end.
    """

    def __init__(self, out: TextIO, prefix: str, *, model_calls: bool = False, started: bool = False,
                 result_width: int = 80, token_note: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.prefix = out, prefix
        self.model_calls, self.started = model_calls, started
        self.result_width, self.token_note, self.clock = result_width, token_note, clock
        self.in_text = False  # a line of the model's text is open
        self.arguments: dict[str, str] = {}
        self.tool_runs: list[ToolRun] = []
        self.tools_span_s = 0.0
        self._first_start: float | None = None

    def write(self, text: str) -> None:
        """Print ``text`` as is and flush."""
        self.out.write(text)
        self.out.flush()

    def end_text(self) -> None:
        """End the line of the model's text, if one is open."""
        if self.in_text:
            self.write("\n")
            self.in_text = False

    def line(self, text: str) -> None:
        """Print ``text`` on a line of its own."""
        self.end_text()
        self.write(text + "\n")

    def show(self, event: Event) -> RunResult | None:
        """Print ``event``; the run's result when it is the last event."""
        from .events import ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted

        if isinstance(event, TextDelta):
            if not self.in_text:
                self.write(self.prefix)
                self.in_text = True
            self.write(event.text)
        elif isinstance(event, ToolCallStarted):
            if self._first_start is None:
                self._first_start = self.clock()
            args = compact_json(event.arguments) if event.arguments is not None else "-"
            self.arguments[event.call_id] = args
            if self.started:
                self.line(f"  tool {event.name}({args}) started")
        elif isinstance(event, ToolCallFinished):
            self._finished(event.run)
        elif isinstance(event, ModelCallFinished):
            if self.model_calls:
                self.line(f"model call {event.iteration}: finish reason {event.finish_reason}, "
                          f"{event.usage.total_tokens} tokens{self.token_note}")
        elif isinstance(event, RunFinished):
            self.end_text()
            return event.result
        return None

    def _finished(self, run: ToolRun) -> None:
        self.tool_runs.append(run)
        if self._first_start is not None:
            self.tools_span_s = self.clock() - self._first_start
        args = self.arguments.get(run.call_id) or (
            compact_json(run.arguments) if run.arguments is not None else "-")
        head = f"  tool {run.name}({args}) -> {run.status} in {run.duration_s * 1000:.0f} ms"
        if self.started:
            self.line(head)
            self.line(f"    {shorten(run.content, self.result_width)}")
        else:
            self.line(f"{head}: {shorten(run.content, self.result_width)}")

    def follow(self, stream: RunStream) -> RunResult:
        """Print every event of ``stream``; its result. Interrupted (an exception, Ctrl-C),
        the run is closed and the exception propagates."""
        result = None
        with stream:
            for event in stream:
                result = self.show(event) or result
        self.end_text()
        assert result is not None, "a run always ends with RunFinished"
        return result

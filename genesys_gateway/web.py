"""A run streamed to a browser: :func:`sse` turns a :class:`RunStream` into
``text/event-stream`` bytes, for any WSGI framework (``contrib.flask`` and
``contrib.django`` wrap it in their streaming responses).

Each event of the run becomes one frame::

    event: <the event's type>
    data: <one line of compact JSON>
    <blank line>

with these ``data`` fields (UTF-8, non-ASCII kept as is):

- ``text_delta``: ``text``.
- ``tool_call_started``: ``call_id``, ``name``, ``arguments`` (the model's arguments).
- ``tool_call_finished``: the :class:`~genesys_gateway.ToolRun`'s ``call_id``, ``name``,
  ``status``, ``content`` (exactly what the model is sent), ``duration_s`` and
  ``truncated``. Its ``error`` is left out: it may hold an exception's text, which is for
  the server's logs, not for a browser (``status`` says what kind of failure it was).
- ``model_call_finished``: ``iteration``, ``finish_reason``, ``usage``.
- ``run_finished`` (the last frame): the result's ``stop_reason``, ``content``, ``output``
  (structured output; ``null`` without it), ``usage``, ``conversation_id`` and ``pending``
  (the calls waiting for approval, ``{"call_id", "name", "arguments"}`` each: what a person
  approves or denies). Never the history (``messages``): it holds the system prompt and
  every tool result.

If the run fails (a ``TransportError``...), a last frame ``event: run_error`` with data
``{"error": "<the exception's class name>"}`` is sent (named so as not to clash with
``EventSource``'s own ``error`` event), then the exception is raised from the iteration so
the server logs it as it logs any failed response.

Closing the body (a WSGI server calls ``close()`` when the response ends, including when
the browser has gone away) closes the stream: the run stops at once and ends
``"cancelled"``. A browser's ``EventSource`` reconnects when a response ends; the page
should call ``source.close()`` on ``run_finished`` and ``run_error`` so the prompt is not
run again.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, Mapping

import attrs

from .events import Event, ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from .stream import RunStream
from .tools.serialization import json_default

__all__ = ["sse", "SSEBody", "event_data", "format_frame", "CONTENT_TYPE", "HEADERS"]

CONTENT_TYPE = "text/event-stream; charset=utf-8"
#: The headers of a streamed response besides its content type: no caching, and no
#: buffering by nginx (``X-Accel-Buffering``), so each frame reaches the browser at once.
HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

#: The event name of the frame sent when the run fails.
ERROR_EVENT = "run_error"

#: The line breaks of the event-stream format (and only those).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SSEBody:
    """The body :func:`sse` returns: an iterator of frames (``bytes``) with ``close()``,
    which closes the stream (and so cancels a run that has not finished). A WSGI server
    calls ``close()`` when the response ends, however it ends."""

    def __init__(self, stream: RunStream) -> None:
        self._stream = stream
        self._failure: BaseException | None = None
        self._done = False

    @property
    def stream(self) -> RunStream:
        """The stream whose events this body sends."""
        return self._stream

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            self._done = True
            raise failure
        if self._done:
            raise StopIteration
        try:
            event = next(self._stream)
        except StopIteration:
            self._done = True
            raise
        except Exception as error:  # sent as a frame, then raised for the server to log
            self._failure = error
            return format_frame(ERROR_EVENT, {"error": type(error).__name__})
        except BaseException:
            self._done = True
            raise
        return format_frame(event.type, event_data(event))

    def close(self) -> None:
        """Close the stream: a run not finished stops and ends ``"cancelled"``. Idempotent."""
        self._done = True
        self._failure = None
        self._stream.close()

    def __repr__(self) -> str:
        return f"<SSEBody of {self._stream!r}>"


def sse(stream: RunStream) -> SSEBody:
    """The run's events as ``text/event-stream`` frames (``bytes``), one per event.

    Return it as the body of a streaming response with content type
    :data:`CONTENT_TYPE` and :data:`HEADERS` (``contrib.flask.stream_response`` and
    ``contrib.django.stream_response`` do). Closing it closes ``stream``."""
    if not isinstance(stream, RunStream):
        raise TypeError(f"sse() takes a RunStream, got {type(stream).__name__}")
    return SSEBody(stream)


def event_data(event: Event) -> dict[str, Any]:
    """The ``data`` of an event's frame (see the module's documentation)."""
    if isinstance(event, TextDelta):
        return {"text": event.text}
    if isinstance(event, ToolCallStarted):
        return {"call_id": event.call_id, "name": event.name, "arguments": event.arguments}
    if isinstance(event, ToolCallFinished):
        run = event.run
        return {"call_id": run.call_id, "name": run.name, "status": run.status,
                "content": run.content, "duration_s": run.duration_s, "truncated": run.truncated}
    if isinstance(event, ModelCallFinished):
        return {"iteration": event.iteration, "finish_reason": event.finish_reason,
                "usage": attrs.asdict(event.usage)}
    if isinstance(event, RunFinished):
        result = event.result
        return {"stop_reason": result.stop_reason, "content": result.content,
                "output": getattr(result, "output", None), "usage": attrs.asdict(result.usage),
                "conversation_id": result.conversation_id,
                "pending": [attrs.asdict(call) for call in result.pending]}
    raise TypeError(f"not an event: {type(event).__name__}")


def format_frame(event: str, data: Any) -> bytes:
    """One frame: ``event: <event>``, ``data:`` with ``data`` as compact JSON, a blank line.

    Compact JSON has no line break (JSON escapes them in strings); should a line break
    still appear, each line gets its own ``data:`` field, which a browser joins back with
    ``\\n``, so a frame is never cut short."""
    if _LINE_BREAK.search(event):
        raise ValueError("an event name cannot contain a line break")
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    return f"event: {event}\n{lines}\n".encode("utf-8")


def _jsonable(value: Any) -> Any:
    """JSON for what ``json`` cannot encode: what a tool result may hold (attrs classes,
    dataclasses, enums, dates, decimals, UUIDs, sets), else its ``str``."""
    try:
        return json_default(value)
    except TypeError:
        return str(value)
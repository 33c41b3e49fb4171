"""``Conversation``: a multi-turn conversation that keeps its history across ``send`` calls.

A conversation owns its messages; each ``send`` runs the tool-calling loop
(:mod:`genesys_gateway.loop`) on a copy and keeps the result only when the run returns.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Generator, Mapping

from .events import Event, RunFinished
from .limits import Limits
from .loop import Loop, RunOptions, drain
from .output import OutputMode
from .result import RunResult
from .stream import RunStream

__all__ = ["Conversation"]


class Conversation:
    """A multi-turn conversation; keeps its history (including tool rounds) across turns.

    Create one with :meth:`GatewayClient.conversation`. ``send`` is serialized per
    conversation (one turn at a time). A failed model call (an exception) leaves the
    history as it was before that ``send``.

    Attributes:
        id: the conversation id (a UUID string), reported in results and audit events.
        messages: the history in OpenAI wire format (system message first, if any).
    """

    def __init__(self, loop: Loop, system: str | None = None) -> None:
        self._loop = loop
        self.id = str(uuid.uuid4())
        self.messages: list[dict[str, Any]] = []
        if system is not None:
            if not isinstance(system, str):
                raise TypeError("system must be a string")
            self.messages.append({"role": "system", "content": system})
        self._lock = threading.Lock()

    def send(self, text: str, *, deadline: float | None = None, max_iterations: int | None = None,
             extra_body: Mapping[str, Any] | None = None,
             extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
             output_type: type[Any] | None = None, output_schema: Mapping[str, Any] | None = None,
             output_mode: OutputMode = "json_schema", output_retries: int | None = None,
             **params: Any) -> RunResult:
        """Send ``text`` as the user and run tools until the model answers or a bound is hit.

        ``deadline`` (seconds) bounds the whole turn; ``max_iterations`` overrides the
        client's; other keywords are model parameters for this turn (a misspelt one is a
        ``TypeError``); ``extra_body``/``extra_headers`` go into each request verbatim;
        ``output_type``/``output_schema``/``output_mode``/``output_retries`` ask for a
        structured answer in ``result.output`` (see :meth:`GatewayClient.run`).
        """
        if not isinstance(text, str):
            raise TypeError(f"the prompt must be a string, got {type(text).__name__}")
        run = RunOptions.build("send", deadline=deadline, max_iterations=max_iterations,
                               extra_body=extra_body, extra_headers=extra_headers,
                               limits=limits, output_type=output_type,
                               output_schema=output_schema, output_mode=output_mode,
                               output_retries=output_retries, **params)
        return drain(self._turn(text, run))

    def stream(self, text: str, *, deadline: float | None = None,
               max_iterations: int | None = None, extra_body: Mapping[str, Any] | None = None,
               extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
               output_type: type[Any] | None = None, output_schema: Mapping[str, Any] | None = None,
               output_mode: OutputMode = "json_schema", output_retries: int | None = None,
               **params: Any) -> RunStream:
        """Like :meth:`send`, as a :class:`RunStream` of events. The history gets the turn
        only when the run finishes; closed early, it stays as it was before."""
        if not isinstance(text, str):
            raise TypeError(f"the prompt must be a string, got {type(text).__name__}")
        run = RunOptions.build("stream", deadline=deadline, max_iterations=max_iterations,
                               extra_body=extra_body, extra_headers=extra_headers,
                               limits=limits, output_type=output_type,
                               output_schema=output_schema, output_mode=output_mode,
                               output_retries=output_retries, **params)
        return RunStream(self._turn(text, run),
                         lambda: self._loop.cancelled(self.id, list(self.messages)))

    def _turn(self, text: str, run: RunOptions) -> Generator[Event, None, None]:
        """One turn as events; turns of one conversation run one at a time."""
        with self._lock:
            messages = [*self.messages, {"role": "user", "content": text}]
            events = self._loop.events(self.id, messages, run)
            try:
                for event in events:
                    if isinstance(event, RunFinished):
                        self.messages = event.result.messages
                    yield event
            finally:
                events.close()

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, {len(self.messages)} messages)"

"""``RunStream``: a run as an iterator of events, from synchronous code.

No event loop and no thread: each ``next()`` drives the run until its next event. Closing
the stream early (``close()``, leaving a ``with`` block, a WSGI server closing the
response) stops the run at once; its result then has stop reason ``"cancelled"``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Callable, Generator, Iterator

from .events import Event, RunFinished
from .result import RunResult

__all__ = ["RunStream"]


class RunStream:
    """An iterator of :mod:`~genesys_gateway.events` and a context manager.

    ``result`` is the :class:`RunResult` once the run finished (from its
    :class:`RunFinished` event) or was closed early (stop reason ``"cancelled"``);
    ``None`` before. An error of the run (``TransportError``, ``ResponseFormatError``...)
    is raised from the iteration.

    Made by :meth:`GatewayClient.stream <genesys_gateway.GatewayClient.stream>` and
    :meth:`Conversation.stream <genesys_gateway.Conversation.stream>`, not directly.

    Args:
        events: the run's events (a generator that drives the run).
        cancelled: called once when the stream is closed before ``RunFinished``; returns
            the ``"cancelled"`` result.
    """

    def __init__(self, events: Generator[Event, None, None],
                 cancelled: Callable[[], RunResult]) -> None:
        self._events = events
        self._cancelled = cancelled
        self._result: RunResult | None = None
        self._done = False

    @property
    def result(self) -> RunResult | None:
        """The run's result once it finished or was closed early (``"cancelled"``);
        ``None`` before."""
        return self._result

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        if self._done:
            raise StopIteration
        try:
            event = next(self._events)
        except BaseException:
            self._done = True
            raise
        if isinstance(event, RunFinished):
            self._result = event.result
        return event

    def until_done(self) -> RunResult:
        """Consume the remaining events; the run's result."""
        for _ in self:
            pass
        assert self._result is not None, "a run always ends with RunFinished"
        return self._result

    def close(self) -> None:
        """Stop the run if it has not finished (tools not started are cancelled, running
        ones signalled); its result becomes ``"cancelled"``. Idempotent."""
        if self._done:
            return
        self._done = True
        self._events.close()
        if self._result is None:
            self._result = self._cancelled()

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if not self._done else (self._result.stop_reason if self._result
                                                  else "failed")
        return f"<RunStream {state}>"

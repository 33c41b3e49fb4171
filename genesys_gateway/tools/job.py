"""A validated tool call on its way through the executor's pool: its timeout, its
:class:`ToolContext`, its state (queued, running, done), and running an ``async def``
handler on a fresh event loop in the worker thread, cancellable from the waiting thread.

The calls of one turn share a :class:`Batch`: one lock guards their states, and each
delivers its outcome to the batch's queue, the one thing the waiting caller waits on. No
per-call ``Future``, ``Event`` or ``Condition``.
"""

from __future__ import annotations

import inspect
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

from .calls import ToolCallRequest, ToolRun
from .context import ToolContext
from .registry import Tool

if TYPE_CHECKING:
    import asyncio

__all__ = ["Batch", "ToolJob", "QUEUED", "RUNNING", "DONE", "NOT_RUN", "DROPPED"]

QUEUED, RUNNING, DONE, NOT_RUN, DROPPED = range(5)
"""A job's states: ``NOT_RUN`` was taken out before it started (timed out or abandoned by
the caller), ``DROPPED`` when the pool shut down before it started."""


class Batch:
    """The calls of one turn: the lock of their states, the queue their outcomes arrive on."""

    __slots__ = ("lock", "finished")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished: queue.SimpleQueue[ToolJob] = queue.SimpleQueue()


class ToolJob:
    """A validated call on its way through the pool (executor-internal, mutable).

    ``execute`` (the executor's) runs the call in a worker and gives its :class:`ToolRun`;
    ``outcome`` is that run, or a ``BaseException`` that escaped it. ``on_hung_done`` is
    called when a call the caller gave up on (``hung``) finally returns."""

    __slots__ = ("index", "call", "tool", "arguments", "kwargs", "timeout", "context",
                 "loop", "task", "cancelled", "batch", "state", "hung", "outcome", "expires",
                 "submitted", "execute", "on_hung_done")

    def __init__(self, index: int, call: ToolCallRequest, tool: Tool, arguments: dict[str, Any],
                 kwargs: dict[str, Any], timeout: float) -> None:
        self.index, self.call, self.tool = index, call, tool
        self.arguments, self.kwargs, self.timeout = arguments, kwargs, timeout
        self.context: ToolContext | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.batch: Batch | None = None
        self.state = QUEUED
        self.hung = False
        self.outcome: ToolRun | BaseException | None = None
        self.expires = 0.0
        self.submitted = 0.0
        self.execute: Callable[[ToolJob], ToolRun] | None = None
        self.on_hung_done: Callable[[ToolJob], None] | None = None

    # ------------------------------------------------------------------ in a worker

    def run(self) -> None:
        """Run the call unless it was taken out first; deliver its outcome to the batch."""
        batch, execute = self.batch, self.execute
        assert batch is not None and execute is not None
        with batch.lock:
            if self.state != QUEUED:
                return
            self.state = RUNNING
        try:
            outcome: ToolRun | BaseException = execute(self)
        except BaseException as exc:  # delivered to the waiting caller
            outcome = exc
        with batch.lock:
            self.outcome, self.state, hung = outcome, DONE, self.hung
        del outcome
        batch.finished.put(self)
        if hung and self.on_hung_done is not None:
            self.on_hung_done(self)

    def drop(self) -> None:
        """The pool shut down before the call started: it is delivered as dropped."""
        assert self.batch is not None
        with self.batch.lock:
            if self.state != QUEUED:
                return
            self.state = DROPPED
        self.batch.finished.put(self)

    # ------------------------------------------------------------------ in the caller

    def give_up(self) -> int:
        """The caller stops waiting (a timeout, or the turn was closed): a queued call will
        not run (``NOT_RUN``), a running one is marked ``hung`` and signalled to stop
        (``RUNNING``); ``DONE`` or ``DROPPED`` if it ended first. The state it was in."""
        assert self.batch is not None
        with self.batch.lock:
            state = self.state
            if state == QUEUED:
                self.state = NOT_RUN
            elif state == RUNNING:
                self.hung = True
        if state == RUNNING:
            self.cancel()
        return state

    def run_awaitable(self, awaitable: Any) -> Any:
        """Run an awaitable on a fresh event loop in this worker thread (closed after)."""
        import asyncio  # only for async handlers: it costs ~20 ms to import

        assert self.batch is not None
        lock = self.batch.lock

        async def main() -> Any:
            with lock:
                self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
                cancelled = self.cancelled
            if cancelled:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                raise asyncio.CancelledError
            return await awaitable

        return asyncio.run(main())

    def cancel(self) -> None:
        """Signal a running call to stop: set the context event, cancel an async task."""
        if self.context is not None:
            self.context.cancelled.set()
        assert self.batch is not None
        with self.batch.lock:
            self.cancelled = True
            loop, task = self.loop, self.task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop already finished
                pass

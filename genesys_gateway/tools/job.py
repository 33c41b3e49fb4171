"""A validated tool call on its way through the executor's pool: its timeout, its
:class:`ToolContext`, and running an ``async def`` handler on a fresh event loop in the
worker thread, cancellable from the waiting thread."""

from __future__ import annotations

import concurrent.futures
import inspect
import threading
from typing import TYPE_CHECKING, Any

from .calls import ToolCallRequest, ToolRun
from .context import ToolContext
from .registry import Tool

if TYPE_CHECKING:
    import asyncio

__all__ = ["ToolJob"]


class ToolJob:
    """A validated call on its way through the pool (executor-internal, mutable)."""

    __slots__ = ("index", "call", "tool", "arguments", "kwargs", "timeout", "context",
                 "loop", "task", "cancelled", "lock", "future", "expires", "submitted")

    def __init__(self, index: int, call: ToolCallRequest, tool: Tool, arguments: dict[str, Any],
                 kwargs: dict[str, Any], timeout: float) -> None:
        self.index, self.call, self.tool = index, call, tool
        self.arguments, self.kwargs, self.timeout = arguments, kwargs, timeout
        self.context: ToolContext | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.lock = threading.Lock()
        self.future: concurrent.futures.Future[ToolRun] | None = None
        self.expires = 0.0
        self.submitted = 0.0

    def run_awaitable(self, awaitable: Any) -> Any:
        """Run an awaitable on a fresh event loop in this worker thread (closed after)."""
        import asyncio  # only for async handlers: it costs ~20 ms to import


        async def main() -> Any:
            with self.lock:
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
        with self.lock:
            self.cancelled = True
            loop, task = self.loop, self.task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop already finished
                pass

"""The tool executor's workers: a bounded pool of daemon threads and the job each call
becomes on its way through it.

The pool is not ``ThreadPoolExecutor``, whose non-daemon threads are joined at interpreter
exit, so one hung handler would block the process from exiting. It hands out ordinary
``concurrent.futures.Future`` objects. A :class:`_Job` runs an ``async def`` handler on a
fresh event loop in its worker thread and can be cancelled from the waiting thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .executor import ToolCallRequest
    from .tools import Tool, ToolContext


class _DaemonPool:
    """A bounded pool of daemon threads returning ``concurrent.futures.Future``\\ s.

    Threads start lazily, up to ``max_workers``; an idle worker is reused first (the
    same idle accounting as ``ThreadPoolExecutor``).
    """

    def __init__(self, max_workers: int, prefix: str) -> None:
        self._max = max_workers
        self._prefix = prefix
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._numbers = itertools.count()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the tool pool is shut down")
            self._queue.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._prefix}_{next(self._numbers)}")
                self._threads.add(thread)
                thread.start()
        return future

    def _work(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                future, fn, args = item
                del item
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # delivered to the waiting caller
                        future.set_exception(exc)
                        del exc
                del future, fn, args
                if self._shutdown:
                    return
                self._idle.release()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    @property
    def thread_count(self) -> int:
        with self._lock:
            return len(self._threads)

    def shutdown(self, wait: bool = False) -> None:
        """Cancel queued work and let idle workers exit; never waits unless asked."""
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


class _Job:
    """A validated call on its way through the pool (executor-internal, mutable)."""

    __slots__ = ("index", "call", "tool", "arguments", "kwargs", "timeout", "context",
                 "loop", "task", "cancelled", "lock", "future", "expires", "submitted")

    def __init__(self, index: int, call: ToolCallRequest, tool: Tool, arguments: dict,
                 kwargs: dict, timeout: float) -> None:
        self.index, self.call, self.tool = index, call, tool
        self.arguments, self.kwargs, self.timeout = arguments, kwargs, timeout
        self.context: ToolContext | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.cancelled = False
        self.lock = threading.Lock()
        self.future: concurrent.futures.Future | None = None
        self.expires = 0.0
        self.submitted = 0.0

    def run_awaitable(self, awaitable: Any) -> Any:
        """Run an awaitable on a fresh event loop in this worker thread (closed after)."""

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

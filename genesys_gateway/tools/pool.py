"""A bounded pool of daemon threads handing out ``concurrent.futures.Future`` objects.

Not ``ThreadPoolExecutor``, whose non-daemon threads are joined at interpreter exit, so one
hung task would block the process from exiting. The pool knows nothing of tools: it runs
callables.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
import weakref
from typing import Any, Callable, TypeVar

from ..constants import TOOL_WORKER_IDLE_SECONDS

__all__ = ["DaemonPool"]

T = TypeVar("T")
#: A queued call: its future, the function and its arguments (``None`` tells a worker to exit).
_Item = tuple["concurrent.futures.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """A bounded pool of daemon threads returning ``concurrent.futures.Future``\\ s.

    Threads start lazily, up to ``max_workers``, when no idle worker is waiting for the
    submitted call. A worker idle for ``idle_timeout`` seconds exits (``None``: never); new
    ones start on demand. Workers hold only a weak reference to the pool, so a pool that
    is garbage-collected without :meth:`shutdown` tells its idle workers to exit too.
    """

    def __init__(self, max_workers: int, prefix: str,
                 idle_timeout: float | None = TOOL_WORKER_IDLE_SECONDS) -> None:
        self._max = max_workers
        self._prefix = prefix
        self._idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._numbers = itertools.count()
        self._shutdown = False
        self._queued = 0  # calls submitted and not yet taken by a worker
        self._waiting = 0  # workers waiting for a call (or about to)
        weakref.finalize(self, _release_workers, self._queue, self._threads).atexit = False

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the tool pool is shut down")
            self._queue.put((future, fn, args))
            self._queued += 1
            if self._queued > self._waiting and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=_work, args=(weakref.ref(self), self._queue, self._idle_timeout),
                    daemon=True, name=f"{self._prefix}_{next(self._numbers)}")
                self._threads.add(thread)
                self._waiting += 1
                thread.start()
        return future

    def _took(self, real: bool) -> None:
        """A waiting worker took an item off the queue (``real``: a call, not a sentinel)."""
        with self._lock:
            self._waiting -= 1
            if real:
                self._queued -= 1

    def _ready(self) -> bool:
        """A worker finished a call: ``False`` if it must exit (shut down), else it waits."""
        with self._lock:
            if self._shutdown:
                return False
            self._waiting += 1
            return True

    def _retire(self, thread: threading.Thread) -> bool:
        """An idle worker timed out: it exits unless a queued call still needs it."""
        with self._lock:
            if self._queued >= self._waiting:  # a call arrived since: no one else takes it
                return False
            self._waiting -= 1
            self._threads.discard(thread)
            return True

    def _exited(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

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


def _release_workers(work: queue.SimpleQueue[_Item | None], threads: set[threading.Thread]) -> None:
    """The pool was garbage-collected: one exit sentinel per worker (never the pool itself)."""
    for _ in range(len(threads)):
        work.put(None)


def _work(pool_ref: weakref.ref[DaemonPool], work: queue.SimpleQueue[_Item | None],
          idle_timeout: float | None) -> None:
    """A worker's loop. It holds the pool only briefly (a weak reference otherwise), so an
    idle worker never keeps an abandoned pool, and the executor behind it, alive."""
    me = threading.current_thread()
    try:
        while True:
            try:
                item = work.get(timeout=idle_timeout)
            except queue.Empty:
                pool = pool_ref()
                if pool is None or pool._retire(me):
                    return
                del pool
                continue
            pool = pool_ref()
            if pool is not None:
                pool._took(item is not None)
            del pool
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
            pool = pool_ref()
            if pool is None or not pool._ready():
                return
            del pool
    finally:
        pool = pool_ref()
        if pool is not None:
            pool._exited(me)

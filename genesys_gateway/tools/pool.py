"""A bounded pool of daemon threads running tasks, waking no more threads than asked.

Not ``ThreadPoolExecutor``, whose non-daemon threads are joined at interpreter exit, so one
hung task would block the process from exiting; and not its ``Future`` machinery either: a
task is any object with ``run()`` (called in a worker; it must deliver its own outcome and
not raise) and ``drop()`` (the pool shut down before the task started). The pool knows
nothing of tools.

Waking a thread is the expensive part of handing work over, so the caller pays for one
wake at most: :meth:`DaemonPool.submit` wakes as many workers as it is told (one, for the
calls of a turn). The rest is a chained wake paid by the workers: a worker that takes a task
while more are queued wakes one more worker, unless a worker it or another woke is still on
its way, so queued tasks start in parallel within a thread wake-up each. A worker that
finishes a task takes the next queued one before it parks, so instant tasks mostly run on
the first worker, and a worker woken for a task already taken finds nothing and parks again.
"""

from __future__ import annotations

import itertools
import signal
import threading
import weakref
from collections import deque
from typing import Iterable, Protocol

from ..constants import TOOL_WORKER_IDLE_SECONDS

__all__ = ["DaemonPool", "Task"]


class Task(Protocol):
    def run(self) -> None: ...

    def drop(self) -> None: ...


class _Exit:
    """What :meth:`DaemonPool._next` hands a worker that must exit."""

    def run(self) -> None:
        pass

    def drop(self) -> None:
        pass


_EXIT = _Exit()


class DaemonPool:
    """A bounded pool of daemon threads.

    Threads start lazily, up to ``max_workers``, when a wake finds no idle worker. An idle
    worker waits on a lock of its own (the pool wakes the most recently idle one first, the
    one likeliest still in the CPU's caches) and exits after ``idle_timeout`` seconds
    (``None``: never). Workers hold only a weak reference to the pool, so a pool that is
    garbage-collected without :meth:`shutdown` tells its idle workers to exit too.
    """

    def __init__(self, max_workers: int, prefix: str,
                 idle_timeout: float | None = TOOL_WORKER_IDLE_SECONDS) -> None:
        self._max = max_workers
        self._prefix = prefix
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._work: deque[Task] = deque()
        self._parked: list[threading.Lock] = []  # each idle worker's lock, held until woken
        self._threads: set[threading.Thread] = set()
        self._waking = 0  # workers woken (or started) that have not yet asked for a task
        self._numbers = itertools.count()
        self._shutdown = False
        weakref.finalize(self, _unpark, self._parked).atexit = False

    def submit(self, tasks: Iterable[Task], wake: int = 1) -> None:
        """Queue ``tasks`` and wake up to ``wake`` workers for them (idle ones first, new
        ones while fewer than ``max_workers`` run). ``RuntimeError`` once shut down."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("the tool pool is shut down")
            self._work.extend(tasks)
            for _ in range(min(wake, len(self._work))):
                if not self._wake():
                    break

    def _wake(self) -> bool:
        """Wake an idle worker or start one (the caller holds the lock)."""
        if self._parked:
            self._parked.pop().release()
            self._waking += 1
            return True
        if len(self._threads) >= self._max:
            return False
        park = threading.Lock()
        park.acquire()
        thread = threading.Thread(target=_work, args=(weakref.ref(self), park, self._idle_timeout),
                                  daemon=True, name=f"{self._prefix}_{next(self._numbers)}")
        self._threads.add(thread)
        try:
            thread.start()
        except BaseException:  # "can't start new thread": as if the pool were full
            self._threads.discard(thread)
            raise
        self._waking += 1
        return True

    def _next(self, park: threading.Lock, me: threading.Thread, woken: bool) -> Task | None:
        """A worker's next task; ``None`` after parking it (idle); ``_EXIT`` to exit.
        ``woken``: the worker was just woken or started (not back from a task). A worker
        that takes a task while more are queued wakes one more, unless one is on its way."""
        with self._lock:
            if self._shutdown:  # (shutdown wakes workers without counting them)
                self._threads.discard(me)
                return _EXIT
            if woken:
                self._waking -= 1
            if not self._work:
                self._parked.append(park)
                return None
            task = self._work.popleft()
            if self._work and not self._waking:
                try:
                    self._wake()
                except RuntimeError:  # no thread to be had: the busy workers take the rest
                    pass
            return task

    def _retire(self, park: threading.Lock, me: threading.Thread) -> bool:
        """An idle worker timed out: it exits unless it was woken meanwhile."""
        with self._lock:
            if park not in self._parked:  # woken (its lock released) since: it stays
                return False
            self._parked.remove(park)
            self._threads.discard(me)
            return True

    def _exited(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    @property
    def thread_count(self) -> int:
        with self._lock:
            return len(self._threads)

    def shutdown(self, wait: bool = False) -> None:
        """Drop queued tasks and let idle workers exit; never waits unless asked."""
        with self._lock:
            self._shutdown = True
            dropped = list(self._work)
            self._work.clear()
            threads = list(self._threads)
            _unpark(self._parked)
        for task in dropped:
            task.drop()
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


def _unpark(parked: list[threading.Lock]) -> None:
    """Wake every idle worker (shut down, or the pool was garbage-collected: never the
    pool itself, which may be gone)."""
    while parked:
        try:
            parked.pop().release()
        except IndexError:  # emptied concurrently
            break


def _work(pool_ref: weakref.ref[DaemonPool], park: threading.Lock,
          idle_timeout: float | None) -> None:
    """A worker's loop. It holds the pool only briefly (a weak reference otherwise), so an
    idle worker never keeps an abandoned pool, and the executor behind it, alive."""
    me = threading.current_thread()
    if hasattr(signal, "pthread_sigmask"):  # Ctrl-C goes to the main thread, not a tool's
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    woken = True
    try:
        while True:
            pool = pool_ref()
            if pool is None:
                return
            task = pool._next(park, me, woken)
            del pool
            if task is _EXIT:
                return
            if task is not None:
                task.run()
                del task
                woken = False
                continue
            woken = True  # whatever ends the wait below, the worker was woken
            if park.acquire(timeout=-1 if idle_timeout is None else idle_timeout):
                continue
            pool = pool_ref()
            if pool is None or pool._retire(park, me):
                return
            del pool
            park.acquire()  # woken just as it timed out: its lock is released already
    finally:
        pool = pool_ref()
        if pool is not None:
            pool._exited(me)

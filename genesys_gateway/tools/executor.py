"""Running the tool calls of one assistant turn: validation, a bounded thread pool,
per-call timeouts, and one :class:`ToolRun` per call, in the order of the calls.

Hung handlers. A Python thread cannot be killed. When a call times out, the executor
cancels it if it has not started, otherwise sets its ``ToolContext.cancelled`` event (and
cancels the task of an ``async def`` handler, which frees the thread at its next
``await``), and tracks the still-running call as *hung* until it finally returns. Hung
calls keep occupying a worker; when every worker is hung, new calls fail fast with status
``"rejected"`` instead of queueing forever.

The pool is a small bounded pool of *daemon* threads (not ``ThreadPoolExecutor``, whose
non-daemon threads are joined at interpreter exit, so one hung handler would block the
process from exiting): :mod:`.pool`. Each validated call travels through it as a
:class:`~.job.ToolJob`; the calls of a turn share one :class:`~.job.Batch`, whose queue is
the one thing the caller waits on. A turn wakes one worker; a worker that takes a call while
more are queued wakes the next (the pool's chained wake), so a turn's calls start in
parallel, and a worker that finishes a call takes the turn's next one, so instant tools cost
the caller one thread hand-off per turn, not one per call.

Every call gets its :class:`ToolRun`, including the calls :func:`~.calls.plan_calls`
marked as not runnable (no id, a repeated id, no arguments): the executor answers those
through the same failure path, so the loop only appends results.

Statuses: ``"ok"``, ``"invalid_arguments"``, ``"unknown_tool"``, ``"timeout"``,
``"error"``, ``"invalid_output"`` (as in the design), plus ``"rejected"`` (pool saturated
by hung calls, or executor closed) and ``"repeated"`` (stopped by a :class:`RepeatGuard`).
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections import Counter
from typing import Any, Callable, Generator, Sequence

from ..at_fork import reinit_in_child
from ..checks import check_bool, check_optional_positive, check_positive, check_positive_int
from ..constants import (DEFAULT_MAX_TOOL_RESULT_CHARS,
                         DEFAULT_TOOL_TIMEOUT, DEFAULT_TOOL_WORKERS, MAX_TOOL_ERROR_CHARS,
                         NESTED_TOO_DEEPLY, TOOL_THREAD_NAME_PREFIX, TOOL_WORKER_IDLE_SECONDS)
from ..errors import ToolArgumentsError, ToolError
from .calls import ToolCallRequest, ToolRun, ToolRunStatus
from .context import ToolContext, idempotency_key
from .guard import RepeatGuard
from .job import DONE, DROPPED, QUEUED, RUNNING, Batch, ToolJob
from .pool import DaemonPool
from .registry import ToolSet
from .serialization import ResultSerializationError, serialize_result, truncate, validate_output
from .validation import parse_arguments

__all__ = ["ToolExecutor"]

logger = logging.getLogger("genesys_gateway.tools")


_NO_TOOLS = ToolSet()


def _short(text: str, limit: int = MAX_TOOL_ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _too_deep(name: Any) -> str:
    return _short(f"invalid arguments for tool {name!r}: {NESTED_TOO_DEEPLY}")


class ToolExecutor:
    """Runs tool calls concurrently in a bounded pool of daemon threads. Safe to share
    between threads; ``close()`` never blocks on a hung handler.

    Args:
        max_workers: threads running tool calls at once (default 8).
        default_timeout: seconds a call may take unless its tool sets one (default 5).
        max_result_chars: longer results are cut with a visible marker (default 4096).
        clock: measures ``duration_s`` and reads ``run(deadline=)``; waits use real time.
        worker_idle_timeout: an idle worker thread exits after this long (``None``: never).
        expose_errors: send a failed handler's exception text to the model, not only its type.
    """

    def __init__(self, max_workers: int = DEFAULT_TOOL_WORKERS,
                 default_timeout: float = DEFAULT_TOOL_TIMEOUT,
                 max_result_chars: int = DEFAULT_MAX_TOOL_RESULT_CHARS,
                 clock: Callable[[], float] = time.monotonic,
                 worker_idle_timeout: float | None = TOOL_WORKER_IDLE_SECONDS,
                 expose_errors: bool = False) -> None:
        self.max_workers = check_positive_int("max_workers", max_workers)
        self.default_timeout = check_positive("default_timeout", default_timeout)
        self.max_result_chars = check_positive_int("max_result_chars", max_result_chars)
        self.clock = clock
        self.worker_idle_timeout = check_optional_positive("worker_idle_timeout",
                                                           worker_idle_timeout)
        self.expose_errors = check_bool("expose_errors", expose_errors)
        self._lock = threading.Lock()
        self._pool: DaemonPool | None = None
        self._hung: set[ToolJob] = set()
        self._hung_ended = threading.Condition(self._lock)
        self._closed = False
        self._stats: Counter[str] = Counter()
        reinit_in_child(self, ToolExecutor._after_fork)

    # ------------------------------------------------------------------ public

    @property
    def hung_count(self) -> int:
        """Calls that timed out but whose handler is still running."""
        with self._lock:
            return self._prune_hung()

    def wait_for_hung(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds for hung handlers to return; the number still hung.

        For graceful shutdowns and tests; the request path never waits for hung calls.
        """
        with self._hung_ended:
            self._hung_ended.wait_for(lambda: self._prune_hung() == 0, timeout)
            return self._prune_hung()

    def _prune_hung(self) -> int:
        """Drop finished calls from the hung set (caller holds the lock)."""
        if self._hung and any(job.state == DONE for job in self._hung):
            self._hung = {job for job in self._hung if job.state != DONE}
        return len(self._hung)

    @property
    def stats(self) -> dict[str, int]:
        """Counts of outcomes by status since creation, plus ``hung`` and ``threads``."""
        with self._lock:
            stats = dict(self._stats)
            stats["hung"] = self._prune_hung()
            stats["threads"] = self._pool.thread_count if self._pool is not None else 0
        return stats

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed executor rejects new calls)."""
        return self._closed

    def run(self, toolset: ToolSet | None, calls: Sequence[ToolCallRequest], *,
            deadline: float | None = None, guard: RepeatGuard | None = None,
            conversation_id: str | None = None) -> list[ToolRun]:
        """One :class:`ToolRun` per call, in the order of ``calls``. Never raises for a
        bad call: problems (including those :func:`~.calls.plan_calls` noted) become
        statuses the model can read and correct. ``toolset=None`` means no tools.
        ``conversation_id`` gives each call's ``ToolContext.idempotency_key``."""
        runs: list[ToolRun | None] = [None] * len(calls)
        for index, run in self.iter_runs(toolset, calls, deadline=deadline, guard=guard,
                                         conversation_id=conversation_id):
            runs[index] = run
        done = [run for run in runs if run is not None]
        assert len(done) == len(calls), "every call gets exactly one ToolRun"
        return done

    def iter_runs(self, toolset: ToolSet | None, calls: Sequence[ToolCallRequest], *,
                  deadline: float | None = None, guard: RepeatGuard | None = None,
                  conversation_id: str | None = None,
                  ) -> Generator[tuple[int, ToolRun], None, None]:
        """``(index in calls, ToolRun)`` for every call, as each ends: calls that cannot
        run first, then the others in the order they finish. Closing the iterator early
        cancels the calls not yet started and signals ``ToolContext.cancelled`` to those
        running (they are tracked as hung until they return)."""
        calls = list(calls)
        if toolset is None:
            toolset = _NO_TOOLS
        jobs: list[ToolJob] = []
        for index, call in enumerate(calls):
            try:
                prepared = self._prepare(index, toolset, call, deadline, guard)
            except RecursionError:  # e.g. the repeat guard keying absurdly deep arguments
                prepared = self._fail(call, "invalid_arguments", _too_deep(call.name), None,
                                      self.clock())
            if isinstance(prepared, ToolJob):
                jobs.append(prepared)
            else:
                yield self._counted(index, prepared)
        if jobs:
            for index, run in self._execute(jobs, conversation_id):
                yield self._counted(index, run)

    def _counted(self, index: int, run: ToolRun) -> tuple[int, ToolRun]:
        with self._lock:
            self._stats[run.status] += 1
        return index, run

    def close(self, wait: bool = False) -> None:
        """Stop the pool: queued calls are cancelled, idle workers exit. Hung handler
        threads cannot be killed; they are daemon threads and never block exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)

    def _after_fork(self) -> None:
        """In a forked child: the parent's worker threads do not exist here. Forget their
        pool (its queue and its count of idle workers would make calls wait for them; a new
        pool starts on demand), the hung calls they were running, and the lock one of them
        may have held at the moment of the fork."""
        self._lock = threading.Lock()
        self._hung_ended = threading.Condition(self._lock)
        self._pool = None
        self._hung = set()

    def __enter__(self) -> "ToolExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _fail(self, call: ToolCallRequest, status: ToolRunStatus, message: str, arguments: Any,
              start: float, content: str | None = None) -> ToolRun:
        content, truncated = truncate(content if content is not None else f"Error: {message}",
                                      self.max_result_chars)
        return ToolRun(call.call_id, call.name, arguments, status, content, message,
                       max(0.0, self.clock() - start), truncated)

    def _prepare(self, index: int, toolset: ToolSet, call: ToolCallRequest,
                 deadline: float | None, guard: RepeatGuard | None) -> ToolRun | ToolJob:
        start = self.clock()
        if call.problem is not None:  # no id, a repeated id, no arguments: never run
            return self._fail(call, call.problem_status, call.problem, None, start,
                              content=f"Error: not run: {call.problem}")
        name = call.name
        tool = toolset.get(name)
        arguments, problem = parse_arguments(call.arguments_json)
        if tool is None:
            return self._fail(call, "unknown_tool", toolset.unknown_tool_message(name),
                              arguments, start)
        if problem is not None:
            return self._fail(call, "invalid_arguments", f"tool {name!r}: {problem}", None, start)
        try:
            arguments = tool.validate_arguments(arguments)
        except ToolArgumentsError as exc:
            return self._fail(call, "invalid_arguments", str(exc), arguments, start)
        if guard is not None and not guard.allow(name, arguments):
            message = guard.message()
            return self._fail(call, "repeated", message, arguments, start, content=message)
        kwargs = arguments
        if tool.converter is not None:
            try:
                kwargs = tool.converter(arguments)
            except RecursionError:
                return self._fail(call, "invalid_arguments", _too_deep(name), arguments, start)
            except Exception as exc:
                return self._fail(call, "invalid_arguments", _short(
                    f"invalid arguments for tool {name!r}: {type(exc).__name__}: {exc}"), arguments, start)
        timeout = tool.timeout or self.default_timeout
        if deadline is not None:
            left = deadline - start
            if left <= 0:
                return self._fail(call, "timeout", f"tool {name!r} was not run: the run's "
                                  "deadline has passed", arguments, start)
            timeout = min(timeout, left)
        return ToolJob(index, call, tool, arguments, kwargs, timeout)

    def _reject(self, job: ToolJob, start: float, closed: bool) -> ToolRun:
        if closed:
            message = f"tool {job.call.name!r} was not run: the tool executor is closed"
        else:
            message = (f"tool {job.call.name!r} was not run: all {self.max_workers} tool workers "
                       "are busy with earlier calls that timed out; try again later")
        return self._fail(job.call, "rejected", message, job.arguments, start)

    def _execute(self, jobs: list[ToolJob], conversation_id: str | None,
                 ) -> Generator[tuple[int, ToolRun], None, None]:
        start = self.clock()
        with self._lock:
            closed = self._closed
            saturated = self._prune_hung() >= self.max_workers
            if not closed and not saturated and self._pool is None:
                self._pool = DaemonPool(self.max_workers, TOOL_THREAD_NAME_PREFIX,
                                        self.worker_idle_timeout)
            pool = self._pool
        if closed or saturated or pool is None:
            for job in jobs:
                yield job.index, self._reject(job, start, closed or pool is None)
            return
        batch, now = Batch(), time.monotonic()
        for job in jobs:
            job.batch, job.execute, job.on_hung_done = batch, self._call, self._forget_hung
            job.submitted, job.expires = start, now + job.timeout
            if job.tool.context_param is not None:
                job.context = ToolContext(job.call.call_id, job.expires, threading.Event(),
                                          None if conversation_id is None
                                          else idempotency_key(conversation_id, job.call.call_id))
        try:
            pool.submit(jobs)
        except RuntimeError:  # closed concurrently
            for job in jobs:
                yield job.index, self._reject(job, start, True)
            return
        pending = set(jobs)
        try:
            while pending:
                wait_s = min([job.expires for job in pending]) - time.monotonic()
                try:
                    job = batch.finished.get(timeout=max(0.0, wait_s))
                except queue.Empty:
                    now = time.monotonic()
                    for job in [job for job in pending if job.expires <= now]:
                        pending.discard(job)
                        yield job.index, self._time_out(job)
                    continue
                if job in pending:  # not a hung call of this turn returning late
                    pending.discard(job)
                    yield job.index, self._collect(job)
        finally:  # closed early (a cancelled stream): stop what has not finished
            for job in pending:
                if job.give_up() == RUNNING:
                    with self._lock:
                        self._hung.add(job)

    def _time_out(self, job: ToolJob) -> ToolRun:
        name = job.call.name
        state = job.give_up()
        if state == QUEUED:
            message = (f"tool {name!r} timed out after {job.timeout:.3g} s before it could start "
                       "(all tool workers were busy); it was not run")
        elif state == RUNNING:
            with self._lock:
                self._hung.add(job)
            message = f"tool {name!r} timed out after {job.timeout:.3g} s and was cancelled"
            logger.warning("tool %r (call %s) timed out after %.3g s; its thread is still "
                           "running", name, job.call.call_id, job.timeout)
        else:  # it ended just now
            return self._collect(job)
        return self._fail(job.call, "timeout", message, job.arguments, job.submitted)

    def _forget_hung(self, job: ToolJob) -> None:
        with self._lock:
            self._hung.discard(job)
            remaining = self._prune_hung()
            self._hung_ended.notify_all()
        logger.info("a timed-out tool call finished; %d still hung", remaining)

    def _collect(self, job: ToolJob) -> ToolRun:
        if job.state == DROPPED:  # the pool was shut down before the call started
            return self._reject(job, self.clock(), True)
        outcome = job.outcome
        if isinstance(outcome, ToolRun):
            return outcome
        assert isinstance(outcome, BaseException)
        return self._error(job, outcome, self.clock())  # a BaseException escaped the handler

    def _error(self, job: ToolJob, exc: BaseException, start: float) -> ToolRun:
        """An ``error`` run. The model sees a :class:`ToolError`'s message; of any other
        exception only its type (its text may hold data the model must not see), unless
        ``expose_errors``. ``ToolRun.error`` keeps the full text for people and logs."""
        text = _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if isinstance(exc, ToolError):
            content = f"Error: {_short(str(exc)) or 'the tool failed'}"
        elif self.expose_errors:
            content = f"Error: {text}"
        else:
            content = f"Error: the tool failed ({type(exc).__name__})"
        return self._fail(job.call, "error", text, job.arguments, start, content=content)

    def _call(self, job: ToolJob) -> ToolRun:
        """Run one handler in a worker thread and turn its outcome into a ToolRun."""
        start = self.clock()
        tool, call = job.tool, job.call
        kwargs = job.kwargs
        if tool.context_param is not None:
            kwargs = {**kwargs, tool.context_param: job.context}
        try:
            result = tool.handler(**kwargs)
            if inspect.isawaitable(result):
                result = job.run_awaitable(result)
        except ToolError as exc:  # the handler's own message for the model: no traceback
            logger.info("tool %r (call %s) reported an error: %s", call.name, call.call_id, exc)
            return self._error(job, exc, start)
        except Exception as exc:  # a bug or a failure in the tool: its traceback is logged
            logger.warning("tool %r (call %s) raised %s", call.name, call.call_id,
                           type(exc).__name__, exc_info=True)
            return self._error(job, exc, start)
        try:
            text = serialize_result(result)
        except ResultSerializationError as exc:
            message = _short(f"tool {call.name!r} returned a value that cannot be sent to the "
                             f"model: {exc}")
            return self._fail(call, "error", message, job.arguments, start)
        if tool.output_validator is not None:
            problem = validate_output(tool, result, text)
            if problem is not None:
                return self._fail(call, "invalid_output", _short(problem), job.arguments, start)
        content, truncated = truncate(text, self.max_result_chars)
        return ToolRun(call.call_id, call.name, job.arguments, "ok", content, None,
                       max(0.0, self.clock() - start), truncated)

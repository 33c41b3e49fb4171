"""The tool pool's hand-off: the caller wakes one worker, a worker that takes a task while
more are queued wakes the next (so a turn's tasks run concurrently), never more workers than
tasks or ``max_workers``; a finishing worker takes the next queued task, queued tasks are
dropped at shutdown, and no worker outlives it."""

from __future__ import annotations

import gc
import threading

from genesys_gateway.tools.calls import ToolCallRequest, ToolRun
from genesys_gateway.tools.executor import ToolExecutor
from genesys_gateway.tools.job import DONE, NOT_RUN, QUEUED, Batch, ToolJob
from genesys_gateway.tools.pool import DaemonPool
from genesys_gateway.tools.registry import ToolRegistry

WAIT = 10.0


class Recorder:
    """A task recording the thread that ran it; it blocks until ``gate`` is set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.ran = threading.Event()
        self.dropped = False
        self.runs = 0

    def run(self) -> None:
        self.runs += 1
        self.thread = threading.current_thread()
        self.started.set()
        if self.gate is not None:
            self.gate.wait(WAIT)
        self.ran.set()

    def drop(self) -> None:
        self.dropped = True


class Meeting:
    """A task that waits for ``barrier``: it completes only if every party runs at once."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier
        self.thread: threading.Thread | None = None
        self.ran = threading.Event()
        self.broken = False

    def run(self) -> None:
        self.thread = threading.current_thread()
        try:
            self.barrier.wait(WAIT)
        except threading.BrokenBarrierError:
            self.broken = True
        self.ran.set()

    def drop(self) -> None:
        pass


def test_a_turns_tasks_run_concurrently_after_one_wake():
    """One wake from the caller; the worker that takes the first task wakes the next (a
    chained wake, no timer): the two meet at the barrier, so they ran at the same time."""
    pool = DaemonPool(4, "test-pool")
    try:
        for _ in range(20):  # new workers first, then parked ones woken
            barrier = threading.Barrier(2)
            tasks = [Meeting(barrier), Meeting(barrier)]
            pool.submit(tasks, wake=1)
            for task in tasks:
                assert task.ran.wait(WAIT)
            assert not any(task.broken for task in tasks)
            assert tasks[0].thread is not tasks[1].thread
    finally:
        pool.shutdown(wait=True)


def test_a_turns_tool_calls_run_concurrently_without_a_timer():
    """Through the executor: two handlers of one turn meet at a barrier, turn after turn."""
    registry = ToolRegistry()
    barrier = threading.Barrier(2)

    @registry.tool
    def meet() -> str:
        """Passes only if the turn's other call runs at the same time."""
        barrier.wait(WAIT)
        return threading.current_thread().name

    tools = registry.snapshot()
    with ToolExecutor(max_workers=4, default_timeout=WAIT) as executor:
        for turn in range(20):
            calls = [ToolCallRequest(f"a{turn}", "meet", "{}"), ToolCallRequest(f"b{turn}", "meet", "{}")]
            runs = executor.run(tools, calls)
            assert [run.status for run in runs] == ["ok", "ok"]
            assert runs[0].content != runs[1].content


def test_each_taken_task_with_more_queued_wakes_one_more_worker():
    pool = DaemonPool(8, "test-pool")
    gate = threading.Event()
    try:
        tasks = [Recorder(gate) for _ in range(4)]
        pool.submit(tasks, wake=1)
        for task in tasks:  # all four started while every one of them blocks
            assert task.started.wait(WAIT)
        assert len({task.thread for task in tasks}) == 4
        assert pool.thread_count == 4  # no more workers than tasks: the last one woke none
    finally:
        gate.set()
        pool.shutdown(wait=True)


def test_workers_woken_for_tasks_taken_already_run_nothing_twice():
    """Instant tasks: the first worker often takes the whole turn before the worker it woke
    gets going; that one finds nothing and parks again. Every task runs exactly once."""
    pool = DaemonPool(8, "test-pool")
    try:
        for _ in range(50):
            tasks = [Recorder() for _ in range(3)]
            pool.submit(tasks, wake=1)
            for task in tasks:
                assert task.ran.wait(WAIT)
            assert [task.runs for task in tasks] == [1, 1, 1]
    finally:
        pool.shutdown(wait=True)


def test_a_full_pool_runs_queued_tasks_when_a_worker_is_free():
    pool = DaemonPool(2, "test-pool")
    gate = threading.Event()
    try:
        tasks = [Recorder(gate) for _ in range(3)]
        pool.submit(tasks, wake=1)
        assert tasks[0].started.wait(WAIT) and tasks[1].started.wait(WAIT)
        assert pool.thread_count == 2 and not tasks[2].started.is_set()  # bounded
        gate.set()
        assert tasks[2].ran.wait(WAIT)  # a busy worker takes it when it is free
        assert pool.thread_count == 2
    finally:
        gate.set()
        pool.shutdown(wait=True)


class Numbered(Recorder):
    def __init__(self, number: int, order: list[int]) -> None:
        super().__init__()
        self.number, self.order = number, order

    def run(self) -> None:
        self.order.append(self.number)
        super().run()


def test_one_worker_runs_a_turn_of_instant_tasks_in_order():
    pool = DaemonPool(1, "test-pool")
    try:
        order: list[int] = []
        tasks = [Numbered(number, order) for number in range(5)]
        pool.submit(tasks, wake=1)
        for task in tasks:
            assert task.ran.wait(WAIT)
        assert order == list(range(5)) and pool.thread_count == 1
    finally:
        pool.shutdown(wait=True)


def test_shutdown_drops_queued_tasks_and_workers_exit():
    pool = DaemonPool(1, "test-pool")
    gate = threading.Event()
    first, queued = Recorder(gate), Recorder()
    pool.submit([first, queued])
    assert first.started.wait(WAIT)
    pool.shutdown()
    assert queued.dropped and not queued.started.is_set()
    gate.set()
    assert first.ran.wait(WAIT)
    worker = first.thread
    assert worker is not None
    worker.join(WAIT)
    assert not worker.is_alive() and pool.thread_count == 0


def test_idle_workers_of_a_dropped_pool_exit():
    pool = DaemonPool(2, "test-pool")
    tasks = [Recorder(), Recorder()]
    pool.submit(tasks, wake=2)
    for task in tasks:
        assert task.ran.wait(WAIT)
    threads = {task.thread for task in tasks}
    del pool, tasks
    gc.collect()
    for thread in threads:
        assert thread is not None
        thread.join(WAIT)
        assert not thread.is_alive()


def test_a_job_given_up_while_queued_never_runs():
    reg = ToolRegistry()
    ran = []

    @reg.tool
    def mark() -> str:
        ran.append(1)
        return "ran"

    tool = reg.snapshot().get("mark")
    assert tool is not None
    job = ToolJob(0, ToolCallRequest("c", "mark", "{}"), tool, {}, {}, 1.0)
    job.batch = Batch()
    job.execute = lambda j: ToolRun("c", "mark", {}, "ok", str(j.tool.handler()))
    assert job.state == QUEUED
    assert job.give_up() == QUEUED and job.state == NOT_RUN
    job.run()
    assert ran == [] and job.state == NOT_RUN and job.batch.finished.empty()


def test_a_job_delivers_its_run_to_the_batch_once():
    reg = ToolRegistry()

    @reg.tool
    def answer() -> int:
        return 42

    tool = reg.snapshot().get("answer")
    assert tool is not None
    job = ToolJob(0, ToolCallRequest("c", "answer", "{}"), tool, {}, {}, 1.0)
    job.batch = Batch()
    job.execute = lambda j: ToolRun("c", "answer", {}, "ok", str(j.tool.handler()))
    job.run()
    job.run()  # a second run is ignored
    assert job.state == DONE and isinstance(job.outcome, ToolRun) and job.outcome.content == "42"
    assert job.batch.finished.get_nowait() is job and job.batch.finished.empty()
    assert job.give_up() == DONE and not job.hung


def test_tools_run_with_sigint_blocked_so_ctrl_c_reaches_the_main_thread():
    """A SIGINT the kernel hands to a tool's thread would not interrupt the main thread's
    blocking read (the chat's prompt): workers block it, so it goes to the main thread."""
    import signal

    import pytest

    import genesys_gateway as gg
    from genesys_gateway.testing import GatewayEmulator, reply, tool_call

    if not hasattr(signal, "pthread_sigmask"):
        pytest.skip("no pthread_sigmask on this platform")
    registry = gg.ToolRegistry()
    masks: list[set[int]] = []

    @registry.tool
    def mask() -> str:
        """The calling thread's blocked signals."""
        masks.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        return "ok"

    with GatewayEmulator() as emulator:
        emulator.script(reply(tool_calls=[tool_call("mask", {})]), reply(content="done"))
        with gg.GatewayClient(base_url=emulator.url, tools=registry,
                              auth=gg.ClientCredentials("id", "secret", token_url=emulator.token_url)) as client:
            assert client.run("mask?").content == "done"
    assert masks and signal.SIGINT in masks[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's untouched

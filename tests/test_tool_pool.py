"""The tool pool's hand-off: it wakes no more workers than asked, a finishing worker takes
the next queued task, queued tasks are dropped at shutdown, and no worker outlives it."""

from __future__ import annotations

import gc
import threading

from genesys_gateway.tools.calls import ToolCallRequest, ToolRun
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

    def run(self) -> None:
        self.thread = threading.current_thread()
        self.started.set()
        if self.gate is not None:
            self.gate.wait(WAIT)
        self.ran.set()

    def drop(self) -> None:
        self.dropped = True


def test_one_wake_runs_queued_tasks_on_one_worker():
    pool = DaemonPool(4, "test-pool")
    try:
        tasks = [Recorder() for _ in range(5)]
        pool.submit(tasks, wake=1)
        for task in tasks:
            assert task.ran.wait(WAIT)
        assert {task.thread for task in tasks} == {tasks[0].thread}
        assert pool.thread_count == 1
    finally:
        pool.shutdown(wait=True)


def test_wake_adds_a_worker_for_tasks_queued_behind_a_blocked_one():
    pool = DaemonPool(4, "test-pool")
    gate = threading.Event()
    try:
        first, second = Recorder(gate), Recorder()
        pool.submit([first, second], wake=1)
        assert first.started.wait(WAIT)
        assert pool.thread_count == 1 and not second.started.is_set()  # queued behind it
        assert pool.wake()
        assert second.ran.wait(WAIT)  # ran while the first still blocks
        assert not first.ran.is_set() and second.thread is not first.thread
        assert not pool.wake()  # nothing queued
    finally:
        gate.set()
        pool.shutdown(wait=True)


def test_wake_fails_when_every_worker_is_busy():
    pool = DaemonPool(1, "test-pool")
    gate = threading.Event()
    try:
        first, second = Recorder(gate), Recorder()
        pool.submit([first, second], wake=2)
        assert pool.thread_count == 1 and not pool.wake()
        gate.set()
        assert second.ran.wait(WAIT)  # the busy worker takes it when it is free
    finally:
        gate.set()
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

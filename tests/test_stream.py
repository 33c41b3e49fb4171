"""A run as events (``client.stream`` / ``conversation.stream``): one engine for ``run``,
``send`` and ``stream``; events as they happen; closing early cancels."""

from __future__ import annotations

import threading

import attrs
import pytest

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call

WAIT = 10


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def registry(release):
    reg = gg.ToolRegistry()

    @reg.tool(timeout=5)
    def fast(x: int) -> int:
        """Quick."""
        return x * 2

    @reg.tool(timeout=5)
    def slow(x: int, ctx: gg.ToolContext) -> int:
        """Waits for the test to release it."""
        assert release.wait(WAIT)
        return x

    @reg.tool(timeout=5)
    def blocked(ctx: gg.ToolContext) -> str:
        """Blocks until cancelled."""
        ctx.cancelled.wait(WAIT)
        return "cancelled" if ctx.cancelled.is_set() else "not cancelled"

    return reg


def test_events_arrive_in_order_and_parallel_tools_finish_in_completion_order(
        emulator, make_client, registry, release):
    emulator.script(reply(content="let me check", tool_calls=[
        tool_call("slow", {"x": 1}, id="s"), tool_call("fast", {"x": 2}, id="f")]),
        reply(content="done"))
    stream = make_client(tools=registry).stream("go")
    seen = []
    for event in stream:
        seen.append(event)
        if isinstance(event, gg.ToolCallFinished) and event.run.call_id == "f":
            release.set()  # the slow tool may end only after the fast one was reported
    types = [e.type for e in seen]
    assert types == ["text_delta", "model_call_finished", "tool_call_started", "tool_call_started",
                     "tool_call_finished", "tool_call_finished", "text_delta",
                     "model_call_finished", "run_finished"]
    assert [e.run.call_id for e in seen if isinstance(e, gg.ToolCallFinished)] == ["f", "s"]
    assert seen[2] == gg.ToolCallStarted("s", "slow", {"x": 1})
    assert seen[0].text == "let me check" and seen[6].text == "done"
    assert [e.iteration for e in seen if isinstance(e, gg.ModelCallFinished)] == [1, 2]
    result = stream.result
    assert result is seen[-1].result and result.content == "done" and result.completed
    # the history keeps the tool messages in call order
    assert [m["tool_call_id"] for m in result.messages if m["role"] == "tool"] == ["s", "f"]


def test_run_send_and_stream_are_one_engine(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("fast", {"x": 3})]), reply(content="six"))
    via_run = make_client(tools=registry).run("go")
    emulator.script(reply(tool_calls=[tool_call("fast", {"x": 3})]), reply(content="six"))
    via_stream = make_client(tools=registry).stream("go").until_done()
    for result in (via_run, via_stream):
        assert result.content == "six" and result.iterations == 2
        assert result.tool_runs[0].content == "6"


def test_closing_early_cancels_and_keeps_the_conversation_as_before(
        emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("blocked", {}, id="b")]))
    client = make_client(tools=registry)
    conversation = client.conversation(system="sys")
    before = list(conversation.messages)
    stream = conversation.stream("go")
    with stream:
        for event in stream:
            if isinstance(event, gg.ToolCallStarted):
                break  # the browser went away
    assert stream.result is not None and stream.result.stop_reason == "cancelled"
    assert not stream.result.completed
    assert conversation.messages == before  # the turn was not kept
    assert len(emulator.chat_requests) == 1  # no further model call
    assert client.executor().wait_for_hung(WAIT) == 0  # the running tool saw `cancelled`
    assert list(stream) == []  # a closed stream yields nothing more
    # the conversation is usable again
    emulator.script(reply(content="hello again"))
    assert conversation.send("hi").content == "hello again"
    assert [m["role"] for m in conversation.messages] == ["system", "user", "assistant"]


def test_a_failure_mid_run_is_raised_from_the_iteration(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("fast", {"x": 1})]), {"choices": []})
    stream = make_client(tools=registry, retry=gg.NoRetry()).stream("go")
    types = []
    with pytest.raises(gg.ResponseFormatError):
        for event in stream:
            types.append(event.type)
    assert types[-1] == "tool_call_finished"
    assert stream.result is None


def test_stream_checks_its_keywords_like_run(make_client):
    with pytest.raises(TypeError, match="tempreature"):
        make_client().stream("x", tempreature=1)


def test_event_types_are_the_pinned_strings():
    assert [cls.type for cls in (gg.TextDelta, gg.ToolCallStarted, gg.ToolCallFinished,
                                 gg.ModelCallFinished, gg.RunFinished)] == [
        "text_delta", "tool_call_started", "tool_call_finished", "model_call_finished",
        "run_finished"]


def test_a_run_nobody_streams_makes_only_its_last_event(emulator, make_client, registry):
    """run()/send()/resume() read only RunFinished: their options say so, and the loop
    then makes no other event (the result is the same)."""
    quiet = gg.loop.RunOptions.build("run")
    assert quiet.quiet and not quiet.streaming
    assert gg.loop.RunOptions.build("send").quiet and gg.loop.RunOptions.build("resume").quiet
    assert not gg.loop.RunOptions.build("stream").quiet
    assert not gg.loop.RunOptions.build("run", temperature=0.5).streaming
    assert gg.loop.RunOptions.build("send", temperature=0.5).quiet
    client = make_client(tools=registry)
    loop = gg.loop.Loop(client.complete, registry.snapshot, client.executor,
                        gg.loop.LoopOptions(client.model, 5, 3))
    results = {}
    for name, run in (("quiet", quiet), ("read", gg.loop.RunOptions())):
        emulator.script(reply(content="let me check", tool_calls=[
            tool_call("fast", {"x": 2}, id="f")]), reply(content="done"))
        events = list(loop.events("c", [{"role": "user", "content": "go"}], run))
        results[name] = (len(events), events[-1].result)
    assert results["quiet"][0] == 1 and results["read"][0] == 7
    quiet_result, read_result = results["quiet"][1], results["read"][1]
    assert quiet_result.content == read_result.content == "done"
    assert [attrs.evolve(r, duration_s=0) for r in quiet_result.tool_runs] == [
        attrs.evolve(r, duration_s=0) for r in read_result.tool_runs]
    assert quiet_result.messages == read_result.messages

"""``gg.sse``: a RunStream as text/event-stream frames, parsed back the way a browser does."""

from __future__ import annotations

import dataclasses
import json
import threading

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import genesys_gateway as gg
from genesys_gateway.events import ModelCallFinished, RunFinished, TextDelta, ToolCallFinished
from genesys_gateway.testing import reply, tool_call
from genesys_gateway.web import CONTENT_TYPE, HEADERS, SSEBody, event_data, format_frame
from tests.web_helpers import parse_frames

WAIT = 10


@pytest.fixture
def registry():
    reg = gg.ToolRegistry()

    @reg.tool(timeout=5)
    def weather(city: str) -> dict:
        """Weather for a city.

        Args:
            city: the city.
        """
        return {"city": city, "sky": "clear\nand warm"}

    @reg.tool(timeout=5)
    def broken(city: str) -> str:
        """Always fails.

        Args:
            city: the city.
        """
        raise KeyError("api_key=SECRET-IN-EXCEPTION")

    return reg


def test_frames_carry_every_event_in_order(emulator, make_client, registry):
    emulator.script(
        reply(content="Checking…", tool_calls=[tool_call("weather", {"city": "Zürich"}, id="w1")]),
        reply(content="Zürich: clear — «warm»\nline two\r\nthree\u2028four"))
    body = gg.sse(make_client(tools=registry).stream("weather?"))
    assert isinstance(body, SSEBody)
    raw = b"".join(body)
    frames = parse_frames(raw)
    assert [name for name, _ in frames] == [
        "text_delta", "model_call_finished", "tool_call_started", "tool_call_finished",
        "text_delta", "model_call_finished", "run_finished"]
    assert frames[0][1] == {"text": "Checking…"}
    assert frames[1][1] == {"iteration": 1, "finish_reason": "tool_calls",
                           "usage": frames[1][1]["usage"]}
    assert set(frames[1][1]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert frames[2][1] == {"call_id": "w1", "name": "weather", "arguments": {"city": "Zürich"}}
    finished = frames[3][1]
    assert set(finished) == {"call_id", "name", "status", "content", "duration_s", "truncated"}
    assert finished["status"] == "ok" and finished["truncated"] is False
    assert json.loads(finished["content"]) == {"city": "Zürich", "sky": "clear\nand warm"}
    text = "Zürich: clear — «warm»\nline two\r\nthree\u2028four"
    assert frames[4][1] == {"text": text}  # line breaks inside the text survive the frame
    result = body.stream.result
    assert frames[6][1] == {"stop_reason": "completed", "content": text, "output": None,
                           "usage": attrs.asdict(result.usage),
                           "conversation_id": result.conversation_id, "pending": []}
    # UTF-8 as is (not \u escapes), one data line per frame, frames end with a blank line
    assert "Zürich".encode() in raw and b"\\u00fc" not in raw
    for block in raw.split(b"\n\n")[:-1]:
        lines = block.split(b"\n")
        assert len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")
        assert b"\r" not in block


def test_a_tool_error_sends_its_status_never_its_exception_text(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("broken", {"city": "x"})]), reply(content="sorry"))
    raw = b"".join(gg.sse(make_client(tools=registry).stream("go")))
    finished = dict(parse_frames(raw))["tool_call_finished"]
    assert finished["status"] == "error"
    assert finished["content"] == "Error: the tool failed (KeyError)"
    assert "error" not in finished
    assert b"SECRET-IN-EXCEPTION" not in raw and b"api_key" not in raw


def test_run_finished_never_carries_the_history(emulator, make_client):
    emulator.script(reply(content="hi"))
    conversation = make_client().conversation(system="SYSTEM-PROMPT-TEXT")
    raw = b"".join(gg.sse(conversation.stream("hello")))
    last = parse_frames(raw)[-1]
    assert last[0] == "run_finished" and "messages" not in last[1]
    assert b"SYSTEM-PROMPT-TEXT" not in raw
    assert last[1]["conversation_id"] == conversation.id


def test_a_failed_run_sends_run_error_then_raises(emulator, make_client):
    emulator.fail(400, times=1)
    body = gg.sse(make_client().stream("go"))
    frame = next(body)
    assert parse_frames(frame) == [("run_error", {"error": "BadRequestError"})]
    with pytest.raises(gg.BadRequestError):
        next(body)
    assert list(body) == []  # ended


def test_closing_the_body_cancels_the_run(emulator, make_client, registry):
    emulator.script(reply(content="first", tool_calls=[tool_call("weather", {"city": "a"})]),
                    reply(content="never"))
    stream = make_client(tools=registry).stream("go")
    body = gg.sse(stream)
    assert parse_frames(next(body)) == [("text_delta", {"text": "first"})]
    body.close()
    assert stream.result is not None and stream.result.stop_reason == "cancelled"
    assert list(body) == []
    body.close()  # idempotent
    assert len(emulator.chat_requests) == 1


def test_closing_a_body_never_iterated_closes_its_stream(emulator, make_client):
    # A server may close the response before sending any of it (a HEAD request, a client
    # gone before the first byte): a generator function would never run its `finally`.
    stream = make_client().stream("go")
    gg.sse(stream).close()
    assert stream.result is not None and stream.result.stop_reason == "cancelled"
    assert emulator.chat_requests == []


def test_sse_takes_only_a_run_stream():
    with pytest.raises(TypeError, match="RunStream"):
        gg.sse(iter([TextDelta("x")]))  # type: ignore[arg-type]


def test_structured_output_and_odd_values_become_json():
    @attrs.frozen
    class Answer:
        city: str
        tags: frozenset

    @dataclasses.dataclass
    class Point:
        x: int

    result = gg.RunResult("{}", "completed", [], (), 1, gg.Usage(), "conv-1")
    data = event_data(RunFinished(result))
    assert data["output"] is None
    frame = format_frame("x", {"a": Answer("Oslo", frozenset({"b", "a"})), "p": Point(3),
                               "s": {2, 1}, "o": object.__new__(type("Thing", (), {
                                   "__str__": lambda self: "thing"}))})
    assert parse_frames(frame) == [("x", {"a": {"city": "Oslo", "tags": ["a", "b"]},
                                          "p": {"x": 3}, "s": [1, 2], "o": "thing"})]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
@example("a\r\nb\rc\nd\x85e\u2028f\u2029g\x00h\n\ndata: x\n\n")
def test_no_text_can_break_a_frame(text):
    # every line break a parser might see (\r, \n, \r\n, NEL, U+2028...) stays inside
    # the one data line, and a browser-like parser gets the text back exactly
    frame = format_frame("text_delta", event_data(TextDelta(text)))
    assert frame.endswith(b"\n\n") and frame.count(b"\n") == 3 and b"\r" not in frame
    assert parse_frames(frame) == [("text_delta", {"text": text})]


def test_an_event_name_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        format_frame("bad\nname", {})


def test_model_call_and_tool_events_data():
    run = gg.ToolRun("c1", "t", {"k": 1}, "timeout", "Error: slow", error="Trace: secret",
                     duration_s=1.5, truncated=True)
    assert event_data(ToolCallFinished(run)) == {
        "call_id": "c1", "name": "t", "status": "timeout", "content": "Error: slow",
        "duration_s": 1.5, "truncated": True}
    usage = gg.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert event_data(ModelCallFinished(2, "length", usage)) == {
        "iteration": 2, "finish_reason": "length",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}


def test_content_type_and_headers():
    assert CONTENT_TYPE.startswith("text/event-stream")
    assert dict(HEADERS) == {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def test_frames_stream_as_events_happen(emulator, make_client):
    """The first frame is available before the run has finished (no buffering)."""
    release = threading.Event()
    reg = gg.ToolRegistry()

    @reg.tool(timeout=5)
    def wait_for_test() -> str:
        """Blocks until released."""
        assert release.wait(WAIT)
        return "ok"

    emulator.script(reply(content="working", tool_calls=[tool_call("wait_for_test", {})]),
                    reply(content="done"))
    body = gg.sse(make_client(tools=reg).stream("go"))
    try:
        assert parse_frames(next(body)) == [("text_delta", {"text": "working"})]
        assert body.stream.result is None  # still running
        release.set()
        assert parse_frames(b"".join(body))[-1][1]["content"] == "done"
    finally:
        release.set()
        body.close()

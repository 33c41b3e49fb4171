"""Server-sent events on the wire: the emulator's streamed answers and the transports'
``send_stream`` (bodies read as they arrive, bounded, closed early on demand)."""

import json
from contextlib import closing

import pytest

import genesys_gateway as gg
from genesys_gateway.errors import ResponseFormatError, TransportError
from genesys_gateway.http.sse import SSEParser
from genesys_gateway.http.transport import HTTPRequest, Timeout
from genesys_gateway.testing import GatewayEmulator, reply, tool_call


def chat_request(em, body, *, max_bytes=10_000_000, timeout=Timeout()):
    token = em.issue_token()
    return HTTPRequest("POST", em.chat_url, {"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json"},
                       json.dumps(body).encode(), timeout, max_bytes)


def body(**extra):
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def datas(chunks):
    parser = SSEParser()
    out = [e.data for c in chunks for e in parser.feed(c)]
    parser.close()
    return out


def test_emulator_streams_chunks_usage_and_done(transport_factory):
    with GatewayEmulator(stream_chunk_chars=3) as em, closing(transport_factory()) as transport:
        em.script(reply(content="hello world", tool_calls=[tool_call("f", {"a": 1})]))
        resp = transport.send_stream(chat_request(em, body(stream=True, stream_options={"include_usage": True})))
        assert resp.status == 200 and resp.header("content-type") == "text/event-stream"
        events = datas(resp.chunks)
        resp.close()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(d) for d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "hello world"
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]
              and c["choices"][0]["delta"].get("content")]
    assert pieces[0] == "hel"
    args = "".join(tc["function"].get("arguments") or "" for c in chunks if c["choices"]
                   for tc in c["choices"][0]["delta"].get("tool_calls") or [])
    assert json.loads(args) == {"a": 1}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_no_usage_chunk_unless_asked(transport_factory):
    with GatewayEmulator() as em, closing(transport_factory()) as transport:
        resp = transport.send_stream(chat_request(em, body(stream=True)))
        chunks = [json.loads(d) for d in datas(resp.chunks)[:-1]]
        resp.close()
    assert all(c["choices"] and "usage" not in c for c in chunks)


def test_chunks_arrive_before_the_stream_ends(transport_factory):
    with GatewayEmulator(stream_chunk_chars=2) as em, closing(transport_factory()) as transport:
        em.stream_hooks.hold_after = 3
        em.script(reply(content="abcdefgh"))
        resp = transport.send_stream(chat_request(em, body(stream=True)))
        parser = SSEParser()
        seen = []
        for chunk in resp.chunks:
            seen += parser.feed(chunk)
            if len(seen) >= 3:
                break
        assert len(seen) == 3  # while the server holds the rest
        em.stream_hooks.release.set()
        rest = [e.data for c in resp.chunks for e in parser.feed(c)]
        resp.close()
    assert rest[-1] == "[DONE]"


def test_closing_mid_stream_drops_the_connection(transport_factory):
    with GatewayEmulator() as em, closing(transport_factory()) as transport:
        em.stream_hooks.hold_after = 2
        resp = transport.send_stream(chat_request(em, body(stream=True)))
        next(resp.chunks)
        resp.close()
        em.stream_hooks.release.set()
        assert em.stream_hooks.client_gone.wait(5)


def test_a_dropped_stream_is_a_closed_transport_error(transport_factory):
    with GatewayEmulator() as em, closing(transport_factory()) as transport:
        em.stream_hooks.break_after = 2
        resp = transport.send_stream(chat_request(em, body(stream=True)))
        with pytest.raises(TransportError) as info:
            list(resp.chunks)
        resp.close()
    assert info.value.kind == "closed"


def test_the_size_cap_holds_on_a_stream(transport_factory):
    with GatewayEmulator(stream_chunk_chars=1) as em, closing(transport_factory()) as transport:
        em.script(reply(content="x" * 500))
        resp = transport.send_stream(chat_request(em, body(stream=True), max_bytes=2000))
        with pytest.raises(ResponseFormatError, match="max_response_bytes"):
            list(resp.chunks)
        resp.close()


def test_the_total_deadline_holds_on_a_stream(transport_factory):
    with GatewayEmulator() as em, closing(transport_factory()) as transport:
        em.stream_hooks.hold_after = 1
        resp = transport.send_stream(chat_request(em, body(stream=True), timeout=Timeout(total=0.3)))
        with pytest.raises(TransportError) as info:
            list(resp.chunks)
        resp.close()
        em.stream_hooks.release.set()
    assert info.value.kind == "deadline"


def test_an_error_status_body_is_read_whole(transport_factory):
    with GatewayEmulator() as em, closing(transport_factory()) as transport:
        resp = transport.send_stream(chat_request(em, {"model": "m", "stream": True}))
        assert resp.status == 400
        assert b"messages" in resp.read()


def test_streaming_transports_satisfy_the_protocol():
    from genesys_gateway.http.transport import StreamingTransport

    with closing(gg.Urllib3Transport()) as a, closing(gg.RequestsTransport()) as b:
        assert isinstance(a, StreamingTransport) and isinstance(b, StreamingTransport)


# --- the client: stream() reads server-sent events ------------------------------------

from genesys_gateway.events import ModelCallFinished, RunFinished, TextDelta, ToolCallFinished  # noqa: E402


def client_for(make_client, em, transport_factory, **kwargs):
    return make_client(em=em, transport=transport_factory(), **kwargs)


def texts(events):
    return [e.text for e in events if isinstance(e, TextDelta)]


def test_stream_yields_text_deltas_as_they_arrive(make_client, transport_factory):
    with GatewayEmulator(stream_chunk_chars=2) as em:
        client = client_for(make_client, em, transport_factory)
        em.script(reply(content="abcdefgh"))
        em.stream_hooks.hold_after = 3  # role chunk, "ab", "cd": then the server waits
        with client.stream("hi") as stream:
            events = iter(stream)
            first = [next(events), next(events)]
            assert texts(first) == ["ab", "cd"]  # before the answer is over
            em.stream_hooks.release.set()
            rest = list(events)
        assert texts(rest) == ["ef", "gh"]
        assert stream.result.content == "abcdefgh" and stream.result.stop_reason == "completed"
        sent = em.chat_requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_tool_call_deltas_are_merged_and_usage_summed(make_client, transport_factory):
    with GatewayEmulator(stream_chunk_chars=2) as em:
        reg = gg.ToolRegistry()
        client = client_for(make_client, em, transport_factory, tools=reg)
        calls = []

        @reg.tool(timeout=5)
        def add(a: int, b: int) -> int:
            """Add."""
            calls.append((a, b))
            return a + b

        em.script(reply(tool_calls=[tool_call("add", {"a": 20, "b": 22})], usage={
                      "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}),
                  reply(content="forty-two", usage={
                      "prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}))
        with client.stream("add") as stream:
            events = list(stream)
        assert calls == [(20, 22)]
        assert sum(1 for e in events if isinstance(e, ToolCallFinished)) == 1
        assert "".join(texts(events)) == "forty-two"
        assert sum(1 for e in events if isinstance(e, ModelCallFinished)) == 2
        assert stream.result.usage.total_tokens == 17
        assert isinstance(events[-1], RunFinished)


def test_run_and_send_keep_whole_responses(make_client):
    with GatewayEmulator() as em:
        client = make_client(em=em)
        em.script(reply(content="whole"))
        assert client.run("hi").content == "whole"
        assert "stream" not in em.chat_requests[-1]


def test_server_streaming_off_keeps_the_event_api(make_client):
    with GatewayEmulator() as em:
        client = make_client(em=em, server_streaming=False)
        em.script(reply(content="whole answer"))
        with client.stream("hi") as stream:
            assert texts(list(stream)) == ["whole answer"]
        assert "stream" not in em.chat_requests[-1]


def test_a_dropped_stream_is_a_transport_error(make_client, transport_factory):
    with GatewayEmulator() as em:
        client = client_for(make_client, em, transport_factory, retry=gg.NoRetry())
        em.script(reply(content="a long answer cut short"))
        em.stream_hooks.break_after = 3
        with client.stream("hi") as stream:
            with pytest.raises(TransportError) as info:
                list(stream)
    assert info.value.kind == "closed"


def test_a_malformed_frame_is_a_response_format_error(make_client, transport_factory):
    with GatewayEmulator() as em:
        client = client_for(make_client, em, transport_factory)
        em.stream_hooks.break_after, em.stream_hooks.break_kind = 2, "garbage"
        with client.stream("hi") as stream:
            with pytest.raises(ResponseFormatError):
                list(stream)


def test_closing_the_stream_mid_answer_closes_the_connection(make_client, transport_factory):
    with GatewayEmulator(stream_chunk_chars=1) as em:
        client = client_for(make_client, em, transport_factory)
        em.script(reply(content="abcdef"))
        em.stream_hooks.hold_after = 3
        stream = client.stream("hi")
        assert isinstance(next(iter(stream)), TextDelta)
        stream.close()
        em.stream_hooks.release.set()
        assert em.stream_hooks.client_gone.wait(5)
        assert stream.result.stop_reason == "cancelled"


def test_an_error_status_before_the_stream_is_retried(make_client, transport_factory):
    with GatewayEmulator() as em:
        client = client_for(make_client, em, transport_factory)
        em.fail(503)
        em.script(reply(content="after a retry"))
        with client.stream("hi") as stream:
            assert "".join(texts(list(stream))) == "after a retry"


def test_a_run_deadline_passing_mid_stream_stops_the_run(make_client, transport_factory):
    with GatewayEmulator(stream_chunk_chars=1) as em:
        client = client_for(make_client, em, transport_factory)
        em.script(reply(content="abcdef"))
        em.stream_hooks.hold_after = 3
        with client.stream("hi", deadline=0.3) as stream:
            events = list(stream)
        em.stream_hooks.release.set()
    assert texts(events) == ["a", "b"]
    assert stream.result.stop_reason == "deadline"


def test_mock_transport_streams_pieces():
    from genesys_gateway.testing.mock import MockTransport, sse_response

    frames = [b'data: {"choices":[{"index":0,"delta":{"content":"he"}}]}\n\n',
              b'data: {"choices":[{"index":0,"delta":{"content":"llo"},"finish_reason":"stop"}]}\n\n',
              b"data: [DONE]\n\n"]
    transport = MockTransport(lambda request: sse_response(frames))
    client = gg.GatewayClient(base_url="http://127.0.0.1:1", auth=gg.BearerToken("t"), transport=transport)
    with client.stream("hi") as stream:
        assert texts(list(stream)) == ["he", "llo"]
    assert json.loads(transport.requests[0].body)["stream"] is True
    assert stream.result.content == "hello" and transport.closed_streams == 0


def test_mock_transport_cut_stream_and_early_close():
    from genesys_gateway.testing.mock import MockTransport, sse_response

    frame = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    transport = MockTransport(lambda request: sse_response([frame, frame]))
    client = gg.GatewayClient(base_url="http://127.0.0.1:1", auth=gg.BearerToken("t"), transport=transport,
                              retry=gg.NoRetry())
    with client.stream("hi") as stream:
        with pytest.raises(TransportError, match="before"):
            list(stream)
    with client.stream("hi") as stream:
        next(iter(stream))
    assert transport.closed_streams == 1  # the cut one was read to its end; the other was not


def test_a_transport_without_send_stream_reads_whole_responses(make_client, emulator):
    class WholeOnly:
        def __init__(self):
            self.inner = gg.Urllib3Transport()

        def send(self, request):
            return self.inner.send(request)

        def close(self):
            self.inner.close()

    client = make_client(transport=WholeOnly())
    emulator.script(reply(content="whole"))
    with client.stream("hi") as stream:
        assert texts(list(stream)) == ["whole"]
    assert "stream" not in emulator.chat_requests[-1]


def test_server_streaming_must_be_a_bool():
    with pytest.raises(gg.ConfigurationError):
        gg.GatewayClient(base_url="http://127.0.0.1:1", auth=gg.BearerToken("t"), server_streaming="yes")


@pytest.mark.parametrize("quirks", [
    {"repeat_index"}, {"empty_name"}, {"arguments_last"}, {"no_done"},
    {"repeat_index", "empty_name", "arguments_last", "no_done"},
], ids=lambda q: "+".join(sorted(q)))
def test_real_servers_quirks_over_the_wire(make_client, transport_factory, quirks):
    """The stream shapes real OpenAI-compatible servers send (DESIGN's list: id and name
    only in the first chunk, a repeated index there, name "" on argument chunks, arguments
    only in the final chunk, a usage-only last chunk, [DONE] missing) merge into the same
    calls and answer, through the real emulator and both transports."""
    with GatewayEmulator(stream_chunk_chars=3) as em:
        reg = gg.ToolRegistry()
        client = client_for(make_client, em, transport_factory, tools=reg)
        calls = []

        @reg.tool(timeout=5)
        def add(a: int, b: int) -> int:
            """Add."""
            calls.append((a, b))
            return a + b

        em.stream_hooks.quirks = frozenset(quirks)
        em.script(reply(tool_calls=[tool_call("add", {"a": 20, "b": 22}, id="c1"),
                                    tool_call("add", {"a": 1, "b": 2}, id="c2")],
                        usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}),
                  reply(content="twenty-three and forty-two",
                        usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}))
        with client.stream("add") as stream:
            events = list(stream)
    assert sorted(calls) == [(1, 2), (20, 22)]
    finished = [e.run for e in events if isinstance(e, ToolCallFinished)]
    assert sorted(r.call_id for r in finished) == ["c1", "c2"] and all(r.ok for r in finished)
    assert "".join(texts(events)) == "twenty-three and forty-two"
    assert stream.result.stop_reason == "completed" and stream.result.usage.total_tokens == 17

"""Streamed responses (``send_stream``) on the urllib3 transport's direct path
(``http.direct_stream``), against real loopback servers, side by side with urllib3's own
path and the requests transport: bodies handed over as they arrive, the same bounds and
the same ``TransportError.kind`` for the same fault, connections reused only when read
whole, and the emulator's streamed answers on kept-alive connections."""

from __future__ import annotations

import gzip
import json
import os
import threading
from contextlib import closing

import pytest

import genesys_gateway as gg
from genesys_gateway.errors import ResponseFormatError
from genesys_gateway.http.sse import SSEParser
from genesys_gateway.http.transport import HTTPRequest
from genesys_gateway.testing import GatewayEmulator, reply
from tests.test_stress import client_sockets
from tests.test_transport_direct_adversarial import PATHS, TIMEOUT, Scripted

FIRST = b'data: {"n":1}\n\n'
REST = b'data: {"n":2}\n\ndata: [DONE]\n\n'
SSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


#: framing -> (head lines, what is sent first, what is sent once released, close after)
FRAMINGS = {
    "chunked": (b"Transfer-Encoding: chunked\r\n", chunk(FIRST), chunk(REST) + b"0\r\n\r\n", False),
    # one HTTP chunk holding both events, its first event sent alone: handed over before
    # the chunk is complete
    "one chunk": (b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s" % (len(FIRST + REST), FIRST),
                  REST + b"\r\n0\r\n\r\n", False),
    "length": (b"Content-Length: %d\r\n" % len(FIRST + REST), FIRST, REST, False),
    "to close": (b"Connection: close\r\n", FIRST, REST, True),
}


def open_stream(transport, server, path="direct", timeout=TIMEOUT, limit=10_000_000, headers=None):
    return transport.send_stream(HTTPRequest("POST", server.url, {**PATHS[path][1], **(headers or {})},
                                             b"{}", timeout, limit))


def held(first: bytes, rest: bytes, release: threading.Event, timed_out: threading.Event,
         close: bool = False):
    """An answer sending *first*, then *rest* once *release* is set (``timed_out`` set if
    it never was)."""
    def answer(conn, _number, _head):
        conn.sendall(first)
        if not release.wait(10):
            timed_out.set()
        conn.sendall(rest)
        return "close" if close else None

    return answer


@pytest.mark.parametrize("framing", list(FRAMINGS))
@pytest.mark.parametrize("path", list(PATHS))
def test_the_first_event_arrives_before_the_server_sends_the_rest(path, framing):
    lines, first, rest, close = FRAMINGS[framing]
    release, timed_out = threading.Event(), threading.Event()
    with Scripted(held(SSE + lines + b"\r\n" + first, rest, release, timed_out, close)) as server:
        with closing(PATHS[path][0]()) as transport:
            stream = open_stream(transport, server, path)
            parser = SSEParser()
            events = []
            try:
                while not events:
                    events.extend(parser.feed(next(stream.chunks)))
                assert not timed_out.is_set()  # the server still waits: the rest is not sent
                assert [e.data for e in events] == ['{"n":1}']
                release.set()
                for piece in stream.chunks:
                    events.extend(parser.feed(piece))
            finally:
                release.set()
                stream.close()
    assert [e.data for e in events] == ['{"n":1}', '{"n":2}', "[DONE]"]
    assert isinstance(stream.headers, dict) == (path == "direct")  # the direct path's own


def streamed(data: bytes) -> "object":
    def answer(conn, _number, _head):
        conn.sendall(SSE + b"Transfer-Encoding: chunked\r\n\r\n" + data)

    return answer


def test_a_stream_read_whole_leaves_its_connection_for_the_next_request():
    with Scripted(streamed(chunk(FIRST) + chunk(REST) + b"0\r\n\r\n")) as server:
        with closing(gg.Urllib3Transport()) as transport:
            for _ in range(3):
                stream = open_stream(transport, server)
                assert b"".join(stream.chunks) == FIRST + REST
                stream.close()
                assert client_sockets(server.port) == 1
            response = transport.send(HTTPRequest("POST", server.url, {}, b"{}", TIMEOUT))
            assert response.body == FIRST + REST  # a plain request on the same connection
    assert server.connections == 1 and not server.pipelined


def test_a_stream_closed_half_read_drops_its_connection():
    release, timed_out = threading.Event(), threading.Event()
    answer = held(SSE + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(FIRST), chunk(REST) + b"0\r\n\r\n",
                  release, timed_out)
    with Scripted(answer) as server:
        with closing(gg.Urllib3Transport()) as transport:
            stream = open_stream(transport, server)
            assert next(stream.chunks) == FIRST
            stream.close()
            stream.close()  # twice: harmless
            assert client_sockets(server.port) == 0  # never left idle with unread bytes
            release.set()
            second = open_stream(transport, server)
            assert b"".join(second.chunks) == FIRST + REST
            second.close()
    assert server.connections == 2


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def stall_after(data: bytes):
    """Sends *data*, then nothing until the test is over (``release``)."""
    def make(release: threading.Event):
        def answer(conn, _number, _head):
            conn.sendall(data)
            release.wait(10)
            return "close"

        return answer

    return make


def sending(data: bytes, close: bool = True):
    def make(_release: threading.Event):
        def answer(conn, _number, _head):
            conn.sendall(data)
            return "close" if close else None

        return answer

    return make


CHUNKED = SSE + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("make, kw, expected", [
    # cut mid-chunk, mid-length, in a chunk size line
    (sending(CHUNKED + b"10\r\nabc"), {}, "closed"),
    (sending(SSE + b"Content-Length: 10\r\n\r\nabc"), {}, "closed"),
    (sending(CHUNKED + b"3\r\nabc\r\nzz\r\n"), {}, "closed"),
    (sending(CHUNKED + b"3\r\nabcXX"), {}, "closed"),
    # a head cut short: as http.client reads it (the headers so far; the body to the end)
    (sending(b"HTTP/1.1 200 OK\r\nContent-Ty"), {}, (200, b"")),
    (sending(b"SSH-2.0-OpenSSH_9.0\r\n\r\n"), {}, "protocol"),
    # the per-read timeout, and the total deadline with a longer read timeout
    (stall_after(CHUNKED + chunk(FIRST)), {"timeout": gg.Timeout(5.0, 0.3)}, "read_timeout"),
    (stall_after(CHUNKED + chunk(FIRST)), {"timeout": gg.Timeout(5.0, 5.0, total=0.5)}, "deadline"),
    (stall_after(b"HTTP/1.1 200 OK\r\n"), {"timeout": gg.Timeout(5.0, 0.3)}, "read_timeout"),
    # the size cap over the streamed body, before and after decoding
    (sending(CHUNKED + chunk(b"x" * 60) + chunk(b"y" * 60) + b"0\r\n\r\n"), {"limit": 100}, "too large"),
    (sending(SSE + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
             + chunk(gzipped(b"z" * 5000)) + b"0\r\n\r\n"), {"limit": 1000}, "too large"),
    # decoded as urllib3's path decodes it
    (sending(SSE + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
             + chunk(gzipped(FIRST + REST)) + b"0\r\n\r\n", close=False), {}, (200, FIRST + REST)),
    (sending(SSE + b"Content-Encoding: br\r\nContent-Length: 2\r\n\r\nok", close=False), {}, "protocol"),
])
def test_a_stream_fault_gives_the_same_answer_on_every_path(make, kw, expected):
    results = {}
    for path, (factory, _headers) in PATHS.items():
        release = threading.Event()
        with Scripted(make(release)) as server, closing(factory()) as transport:
            try:
                stream = open_stream(transport, server, path, **kw)
                try:
                    results[path] = (stream.status, b"".join(stream.chunks))
                finally:
                    stream.close()
            except gg.TransportError as error:
                results[path] = error.kind
            except ResponseFormatError as error:
                assert "max_response_bytes" in str(error)
                results[path] = "too large"
            finally:
                release.set()
            assert client_sockets(server.port) == (1 if results[path] == (200, FIRST + REST) else 0), path
    assert results == {path: expected for path in PATHS}


def test_closing_the_transport_while_a_stream_is_open_lets_it_finish_and_keeps_nothing():
    release, timed_out = threading.Event(), threading.Event()
    answer = held(CHUNKED + chunk(FIRST), chunk(REST) + b"0\r\n\r\n", release, timed_out)
    with Scripted(answer) as server:
        transport = gg.Urllib3Transport()
        stream = open_stream(transport, server)
        assert next(stream.chunks) == FIRST
        transport.close()
        release.set()
        assert b"".join(stream.chunks) == REST
        stream.close()
        assert client_sockets(server.port) == 0  # read whole, but not kept by a closed transport
        with pytest.raises(gg.TransportError, match="closed"):
            open_stream(transport, server)


def numbered(conn, number, _head):
    """Each answer names its request's number on its connection."""
    body = b"request %d" % number
    conn.sendall(CHUNKED + chunk(body) + b"0\r\n\r\n")


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_a_stream_read_to_its_end_in_a_forked_child_leaves_the_parents_connection_alone():
    with Scripted(numbered) as server, closing(gg.Urllib3Transport()) as transport:
        stream = open_stream(transport, server)  # opened in the parent, left unread
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                first = b"".join(stream.chunks)
                stream.close()  # read whole: the parent's connection must not become the child's idle one
                second = open_stream(transport, server)
                report = first + b" / " + b"".join(second.chunks)
                second.close()
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                report = repr(error).encode()
            os.write(write_end, report)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read()
        os.waitpid(pid, 0)
        stream.close()
    assert report == b"request 0 / request 0"  # the child's second request: a connection of its own


# --- the emulator's streamed answers on kept-alive connections -------------------------------

def stream_request(em, headers=None):
    token = em.issue_token()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return HTTPRequest("POST", em.chat_url, {"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json", **(headers or {})},
                       json.dumps(body).encode(), TIMEOUT)


def datas(data: bytes) -> list[str]:
    parser = SSEParser()
    out = [e.data for e in parser.feed(data)]
    parser.close()
    return out


@pytest.mark.parametrize("path", list(PATHS))
def test_the_emulator_keeps_a_streamed_answers_connection_alive(path):
    with GatewayEmulator() as em, closing(PATHS[path][0]()) as transport:
        em.script(reply(content="one"), reply(content="two"))
        opened = em.connections_opened  # the token's request
        for _ in range(2):
            stream = transport.send_stream(stream_request(em, PATHS[path][1]))
            assert stream.header("transfer-encoding") == "chunked"
            assert stream.header("connection") is None
            assert datas(stream.read())[-1] == "[DONE]"
        assert em.connections_opened - opened <= 1  # both streams (and maybe the token) on one
        assert len({r.connection_id for r in em.requests if r.endpoint == "chat"}) == 1


def test_the_emulator_closes_a_stream_when_asked_or_when_a_hook_may_cut_it():
    with GatewayEmulator() as em, closing(gg.Urllib3Transport()) as transport:
        stream = transport.send_stream(stream_request(em, {"Connection": "close"}))
        assert stream.header("connection") == "close"
        assert datas(stream.read())[-1] == "[DONE]"
        em.stream_hooks.hold_after = 100  # set, even if never reached: the stream may be held
        stream = transport.send_stream(stream_request(em))
        assert stream.header("connection") == "close"
        assert datas(stream.read())[-1] == "[DONE]"
        em.stream_hooks.hold_after = None
        stream = transport.send_stream(stream_request(em))
        assert stream.header("connection") is None and datas(stream.read())[-1] == "[DONE]"
        ids = [r.connection_id for r in em.requests if r.endpoint == "chat"]
        assert len(set(ids[-3:])) == 3  # the first two connections were closed after their answer

"""The urllib3 transport's direct path (``http.direct``, ``http.wire``) against hostile and
quirky loopback servers, side by side with urllib3's own path and the requests transport:
the same fault must give the same answer or the same ``TransportError.kind``.

urllib3's own path is reached through the same transport with a header value that is a
``str`` subclass: the direct path leaves such a request to urllib3 (checked below)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from typing import Callable

import pytest

import genesys_gateway as gg
from genesys_gateway.http.transport import INVALID_HEADER, HTTPRequest
from genesys_gateway.http.wire import encode_head
from tests.test_stress import client_sockets

TIMEOUT = gg.Timeout(5.0, 5.0)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Plain(str):
    """A header value the direct path leaves to urllib3 (it sends only exact ``str``)."""


PATHS = {
    "direct": (gg.Urllib3Transport, {}),
    "urllib3": (gg.Urllib3Transport, {"X-Path": Plain("urllib3")}),
    "requests": (gg.RequestsTransport, {}),
}


def test_the_urllib3_path_is_reached_with_a_str_subclass_value():
    assert encode_head("GET", "/", "h", {"X-Path": Plain("urllib3")}, None, "ua") is None
    assert encode_head("GET", "/", "h", {"X-Path": "direct"}, None, "ua") is not None


#: ``answer(conn, request_number_on_this_connection, request_head) -> "close" | None``
Answer = Callable[[socket.socket, int, bytes], "str | None"]


class Scripted:
    """A loopback HTTP/1.1 server whose answers are scripted bytes. Each request head (and
    its ``Content-Length`` body, unless ``read_body`` is false) is read, then ``answer`` is
    called. ``connections`` counts accepted connections; ``pipelined`` is set if a request
    arrived on a connection before the previous one was answered (two users of one
    connection)."""

    def __init__(self, answer: Answer, tls: tuple[str, str] | None = None, read_body: bool = True) -> None:
        self.answer = answer
        self.read_body = read_body
        self.connections = 0
        self.pipelined = False
        self.server_names: list[str | None] = []
        self._context = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(*tls)
            self._context.sni_callback = lambda _s, name, _c: self.server_names.append(name)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/x"
        self._open: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        accepter = threading.Thread(target=self._accept, daemon=True)
        accepter.start()
        self._threads.append(accepter)

    def __enter__(self) -> "Scripted":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
        self.listener.close()
        for conn in list(self._open):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(raw, server_side=True)
            buf = b""
            number = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if self.read_body:
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    buf = buf[length:]
                if buf:
                    self.pipelined = True
                if self.answer(conn, number, head) == "close":
                    return
                number += 1
        except OSError:
            pass
        finally:
            conn.close()


def send(transport, server, path="direct", method="GET", body=None, headers=None, timeout=TIMEOUT,
         limit=10_000_000):
    url = server if isinstance(server, str) else server.url
    return transport.send(HTTPRequest(method, url, {**PATHS[path][1], **(headers or {})}, body,
                                      timeout, limit))


def outcome(transport, server, path, **kw):
    """``(status, body)``, or the ``TransportError``'s kind."""
    try:
        response = send(transport, server, path, **kw)
    except gg.TransportError as error:
        return error.kind
    return response.status, response.body


def on_each_path(answer: Answer, requests: int = 2, **kw):
    """{path: ([outcome of each request, in turn, on one transport], connections opened)}."""
    results = {}
    for path, (factory, _headers) in PATHS.items():
        with Scripted(answer) as server:
            transport = factory()
            try:
                results[path] = ([outcome(transport, server, path, **kw) for _ in range(requests)],
                                 server.connections)
            finally:
                transport.close()
    return results


def sends(data: bytes, close: bool = False) -> Answer:
    def answer(conn, _number, _head):
        conn.sendall(data)
        return "close" if close else None

    return answer


# --- framing ------------------------------------------------------------------------------

def test_a_repeated_chunked_transfer_encoding_is_still_chunked():
    """Two ``Transfer-Encoding: chunked`` lines: http.client reads the first and frames the
    body by its chunks. The direct path joined them into ``"chunked, chunked"``, did not
    recognise it, read the body to the end of a kept-alive connection and so waited for the
    read timeout on every request."""
    answer = sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"2\r\nok\r\n0\r\n\r\n")
    results = on_each_path(answer, timeout=gg.Timeout(5.0, 2.0))
    assert results == {path: ([(200, b"ok")] * 2, 1) for path in PATHS}


@pytest.mark.parametrize("length", [b"\xb2", b"\xb2, \xb2"])
def test_a_content_length_of_non_ascii_digits_is_an_invalid_response(length):
    """A latin-1 superscript digit passes ``str.isdigit()`` but not ``int()``: the
    ``ValueError`` was reported, by every path, as a request header that cannot be sent."""
    answer = sends(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nok")
    for path, (factory, _headers) in PATHS.items():
        with Scripted(answer) as server:
            transport = factory()
            try:
                with pytest.raises(gg.TransportError) as info:
                    send(transport, server, path)
            finally:
                transport.close()
        assert info.value.kind == "protocol", path
        assert INVALID_HEADER not in str(info.value) and "Content-Length" in str(info.value), path


def test_an_early_answer_to_a_large_body_is_the_answer_not_a_broken_pipe():
    """A server answers (413) after the head and closes without reading a large body: the
    rest of the send fails with EPIPE or ECONNRESET. urllib3 ignores that failure and reads
    the answer; the direct path raised a retryable ``"closed"`` error instead, so the client
    retried a request the server had refused and never showed the 413."""
    def answer(conn, _number, _head):
        conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
        return "close"

    body = b"x" * (24 * 1024 * 1024)
    for path, (factory, _headers) in PATHS.items():
        with Scripted(answer, read_body=False) as server:
            transport = factory()
            try:
                assert outcome(transport, server, path, method="POST", body=body) == (413, b"big"), path
            finally:
                transport.close()

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
        self.requests = 0
        self._lock = threading.Lock()
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
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send at once
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
                with self._lock:
                    self.requests += 1
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


@pytest.mark.parametrize("data, expected", [
    # conflicting lengths: refused by every path
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "protocol"),
    # equal repeated lengths: one length
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", (200, b"ok")),
    # Transfer-Encoding wins over Content-Length
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2;ext=\"a;b\"\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n", (200, b"ok")),
    # a status line without a reason phrase, a latin-1 header value, a folded header
    (b"HTTP/1.1 200\r\nX-Name: caf\xe9\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok", (200, b"ok")),
    # a status that is not three digits
    (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", "protocol"),
    (b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", "protocol"),
    # not HTTP at all
    (b"SSH-2.0-OpenSSH_9.0\r\n\r\n", "protocol"),
    # a chunk size no integer can hold: refused (cut or too large), never read whole
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 100 + b"\r\nok", "read_timeout"),
])
def test_framing_answers_alike_on_every_path(data, expected):
    results = on_each_path(sends(data), requests=1, timeout=gg.Timeout(5.0, 1.0))
    assert {path: outcomes for path, (outcomes, _n) in results.items()} == {
        path: [expected] for path in PATHS}


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_a_body_after_a_bodiless_answer_is_never_read_as_the_next_answer(method, status):
    """A server that sends a body after HEAD, 204 or 304 (which have none)."""
    def answer(conn, number, _head):
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\nHTTP/" % status if number == 0 else
                     b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")

    with Scripted(answer) as server:
        transport = gg.Urllib3Transport()
        try:
            assert outcome(transport, server, "direct", method=method) == (status, b"")
            assert outcome(transport, server, "direct") == (200, b"second")
        finally:
            transport.close()


def test_interim_answers_are_skipped_and_101_ends_the_connection():
    """100 and 103 precede the answer (urllib3's path returns a 103 as the answer); after a
    101 the connection speaks another protocol: it is not reused."""
    def answer(conn, number, _head):
        if number == 0:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK)
        else:
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")

    with Scripted(answer) as server:
        transport = gg.Urllib3Transport()
        try:
            assert [outcome(transport, server, "direct") for _ in range(4)] == [
                (200, b"ok"), (101, b""), (200, b"ok"), (101, b"")]
        finally:
            transport.close()
        assert server.connections == 2


# --- keep-alive -----------------------------------------------------------------------------

def test_bytes_after_the_body_are_never_read_as_the_next_answer():
    """Extra bytes after the body, in the same segment (a Content-Length too small, or a
    pipelined fake answer) or arriving while the connection is idle: the next request gets
    its own answer, on a connection that carries nothing else."""
    sent_extra = threading.Event()
    send_extra = threading.Event()

    def answer(conn, number, _head):
        if number == 0:
            conn.sendall(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
        elif number == 1:
            conn.sendall(OK)
            send_extra.wait(10)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
            sent_extra.set()
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")

    for path, (factory, _headers) in PATHS.items():
        sent_extra.clear()
        send_extra.clear()
        with Scripted(answer) as server:
            transport = factory()
            try:
                assert outcome(transport, server, path) == (200, b"ok")
                assert outcome(transport, server, path) == (200, b"ok")
                send_extra.set()
                assert sent_extra.wait(10)  # on loopback: in the client's socket once sent
                assert outcome(transport, server, path) == (200, b"ok"), path  # a new connection
            finally:
                transport.close()
            assert server.connections == 2, path


@pytest.mark.parametrize("data, connections", [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 3),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok", 3),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 1),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1),
])
def test_connection_reuse_follows_the_answer(data, connections):
    """``Connection: close`` and HTTP/1.0 without keep-alive are honoured (the server here
    keeps the connection open: a reused one would carry the next request and work, so only
    the count of connections tells)."""
    results = on_each_path(sends(data), requests=3)
    assert results == {path: ([(200, b"ok")] * 3, connections) for path in PATHS}


def test_a_body_to_the_end_of_the_connection_is_read_and_the_connection_dropped():
    results = on_each_path(sends(b"HTTP/1.1 200 OK\r\n\r\nuntil close", close=True), requests=2)
    assert results == {path: ([(200, b"until close")] * 2, 2) for path in PATHS}


# --- a huge head ------------------------------------------------------------------------------

def endless(prefix: bytes, piece: bytes) -> Answer:
    def answer(conn, _number, _head):
        conn.sendall(prefix)
        for _ in range(200):
            conn.sendall(piece)
        return "close"

    return answer


@pytest.mark.parametrize("answer", [
    endless(b"HTTP/1.1 200 OK\r\nX-Long: ", b"y" * 65536),
    endless(b"HTTP/1.1 200 OK\r\n", b"X-Many: " + b"y" * 100 + b"\r\n"),
    endless(b"HTTP/1.1 100 Continue\r\n", b"X-Many: " + b"y" * 100 + b"\r\n"),
    endless(b"HTTP/1.1 200 OK", b"y" * 65536),
])
def test_an_endless_head_is_refused_at_http_clients_limits(answer):
    results = on_each_path(answer, requests=1)
    assert {path: outcomes for path, (outcomes, _n) in results.items()} == {
        path: ["protocol"] for path in PATHS}


# --- threads and close() ----------------------------------------------------------------------

def echo_id(conn, _number, head):
    """Answers each request with its ``X-Id`` header."""
    ident = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                 if line.lower().startswith(b"x-id:"))
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ident), ident))


def test_16_threads_never_share_a_connection_or_an_answer():
    errors: list[BaseException] = []
    with Scripted(echo_id) as server:
        transport = gg.Urllib3Transport()

        def run(n):
            try:
                for i in range(40):
                    ident = f"{n}-{i}"
                    assert send(transport, server, headers={"X-Id": ident}).body == ident.encode()
            except BaseException as error:  # noqa: BLE001 - asserted below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        transport.close()
        assert errors == []
        assert not server.pipelined  # no connection carried two requests at once
        assert server.connections <= 16
        assert server.requests == 16 * 40
        assert client_sockets(server.port) == 0


def test_close_while_threads_send_raises_only_closed_and_leaves_no_socket():
    errors: list[BaseException] = []
    answered = threading.Semaphore(0)
    with Scripted(echo_id) as server:
        transport = gg.Urllib3Transport()

        def run(n):
            for i in range(1000):
                try:
                    send(transport, server, headers={"X-Id": f"{n}-{i}"})
                    answered.release()
                except gg.TransportError as error:
                    if error.kind != "protocol" or "closed" not in str(error):
                        errors.append(error)
                    return
                except BaseException as error:  # noqa: BLE001 - asserted below
                    errors.append(error)
                    return

        threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for _ in range(40):
            assert answered.acquire(timeout=30)
        transport.close()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert not any(thread.is_alive() for thread in threads)
        assert client_sockets(server.port) == 0


# --- TLS --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_on_the_direct_path_verifies_the_certificate_and_the_host(certificate):
    with Scripted(sends(OK), tls=certificate) as server:
        for ca_certs, url in ((None, server.url), (certificate[0], server.url.replace("127.0.0.1", "localhost"))):
            transport = gg.Urllib3Transport(ca_certs=ca_certs)
            try:
                with pytest.raises(gg.TransportError) as info:
                    send(transport, url)
            finally:
                transport.close()
            assert info.value.kind == "tls" and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        assert server.server_names == [None, "localhost"]  # SNI sent for a host name, not for an IP
        transport = gg.Urllib3Transport(ca_certs=certificate[0])
        try:
            assert [outcome(transport, server, "direct") for _ in range(3)] == [(200, b"ok")] * 3
        finally:
            transport.close()
        assert server.connections == 3  # the two refused, then one kept alive
        assert server.server_names == [None, "localhost", None]


# --- the request --------------------------------------------------------------------------------

def test_the_request_bytes_are_urllib3s_bytes():
    """The same request through the direct path and urllib3's: the same request line and
    header lines (a name with a space, a latin-1 value), the same body."""
    heads: list[bytes] = []

    def answer(conn, _number, head):
        heads.append(head)
        conn.sendall(OK)

    headers = {"X Spaced": "v", "X-Latin": "caf\u00e9", "Authorization": "Bearer t"}
    with Scripted(answer) as server:
        transport = gg.Urllib3Transport()
        try:
            for path in ("direct", "urllib3"):
                send(transport, server, path, method="POST", body=b"\x00\xff{}", headers=headers)
        finally:
            transport.close()
    assert len(heads) == 2
    direct, urllib3 = (sorted(h.split(b"\r\n")[1:]) for h in heads)
    assert heads[0].split(b"\r\n")[0] == heads[1].split(b"\r\n")[0] == b"POST /x HTTP/1.1"
    assert b"X Spaced: v" in direct and b"X-Latin: caf\xe9" in direct and b"Content-Length: 4" in direct
    urllib3.remove(b"X-Path: urllib3")
    assert direct == urllib3

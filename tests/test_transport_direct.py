"""The urllib3 transport's direct path (``http.direct`` and ``http.wire``): its framing,
unit by unit, and its guarantees against real loopback servers. The failure kinds, bounds
and proxies it shares with urllib3's path are checked for both transports in
``test_transport_errors``, ``test_transport_bounds`` and ``test_proxies``."""

from __future__ import annotations

import http.client
import io
import socket
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.constants import DEFAULT_PATH
from genesys_gateway.http.transport import INVALID_HEADER, HTTPRequest
from genesys_gateway.http.wire import BodyReader, encode_head, read_head, reusable
from genesys_gateway.testing import GatewayEmulator
from tests.test_stress import client_sockets

UA = "python-urllib3/2"


def fp(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


def head(headers, body=b"{}", method="POST"):
    return encode_head(method, "/v1/chat", "gw.test:8443", headers, body, UA)


# --- encoding a request ------------------------------------------------------------------

def test_the_head_is_what_urllib3_sends():
    assert head({"Authorization": "Bearer t", "User-Agent": "me"}) == (
        b"POST /v1/chat HTTP/1.1\r\nAuthorization: Bearer t\r\nUser-Agent: me\r\nHost: gw.test:8443\r\n"
        b"Accept-Encoding: identity\r\nContent-Length: 2\r\n\r\n")


def test_defaults_give_way_to_the_callers_headers_and_a_bodyless_post_says_zero():
    sent = head({"host": "other", "accept-encoding": "gzip"}, body=None)
    assert sent is not None
    assert b"Host: gw.test" not in sent and b"identity" not in sent
    assert sent.endswith(b"User-Agent: python-urllib3/2\r\nContent-Length: 0\r\n\r\n")
    assert b"Content-Length" not in head({}, body=None, method="GET")  # type: ignore[operator]


@pytest.mark.parametrize("headers", [
    {"X-Key": "a\r\nEvil: 1"}, {"X-Key": "a\n"}, {"X-Key": "a\r"}, {"X-Key": "folded\r\n value"},
    {"X-Key": "caf\u2019"}, {"Bad:Name": "v"}, {" X": "v"}, {"X\u00e9": "v"},
    {"X-Key": b"bytes"}, {"X-Key": 1}, {"Content-Length": "2"}, {"transfer-encoding": "chunked"},
])
def test_what_urllib3_must_send_or_refuse_is_left_to_it(headers):
    assert head(headers) is None


# --- reading a response ------------------------------------------------------------------

def test_a_head_split_at_once_or_line_by_line_reads_alike():
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Dup: a\r\nx-dup: b\r\n"
           b"X-Fold: one\r\n two\r\nnot a header\r\nContent-Length: 2\r\n\r\n{}")
    whole = read_head(fp(raw))
    bare_lf = read_head(fp(raw.replace(b"\r\n", b"\n")))
    expected = (11, 200, {"content-type": "application/json", "x-dup": "a, b", "x-fold": "one two",
                          "content-length": "2"})
    assert whole == bare_lf == expected


def test_interim_responses_are_skipped():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"
    version, status, headers = read_head(fp(raw))
    assert (version, status) == (10, 204) and reusable(version, headers)


@pytest.mark.parametrize("raw, error", [
    (b"", http.client.RemoteDisconnected),
    (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 20 OK\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 099 x\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/2.0 200 OK\r\n\r\n", http.client.UnknownProtocol),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\n" + b"X: y\n" * 101 + b"\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
])
def test_a_bad_head_raises_http_clients_exception(raw, error):
    with pytest.raises(error):
        read_head(fp(raw))


def test_connection_reuse_follows_the_version_and_connection_header():
    assert reusable(11, {}) and not reusable(11, {"connection": "Close"})
    assert not reusable(10, {}) and reusable(10, {"connection": "Keep-Alive"})


def body_of(raw: bytes, headers, method="POST", status=200, n=3):
    reader = BodyReader(fp(raw), method, status, headers)
    parts = []
    while True:
        piece = reader.read(n)
        if not piece:
            return b"".join(parts), reader.whole
        parts.append(piece)


def test_chunked_bodies_with_extensions_and_trailers():
    raw = b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
    assert body_of(raw, {"transfer-encoding": "chunked"}) == (b"abcdefg", True)
    reader = BodyReader(fp(raw), "POST", 200, {"transfer-encoding": "Chunked"})
    assert reader.read() == b"abcdefg" and reader.whole


def test_lengths_and_bodiless_responses():
    assert body_of(b"hello", {"content-length": "5, 5"}) == (b"hello", True)
    assert body_of(b"hello", {}) == (b"hello", False)  # read to the end: never reused
    assert body_of(b"", {}, status=204) == (b"", True)
    assert body_of(b"", {"content-length": "5"}, method="HEAD") == (b"", True)


@pytest.mark.parametrize("raw, headers, error", [
    (b"hel", {"content-length": "5"}, http.client.IncompleteRead),
    (b"4\r\nab", {"transfer-encoding": "chunked"}, http.client.IncompleteRead),
    (b"zz\r\n", {"transfer-encoding": "chunked"}, http.client.IncompleteRead),
    (b"2\r\nabXX0\r\n\r\n", {"transfer-encoding": "chunked"}, http.client.IncompleteRead),
    (b"hello", {"content-length": "5, 6"}, http.client.HTTPException),
    (b"hello", {"content-length": "-5"}, http.client.HTTPException),
])
def test_a_cut_or_garbled_body_raises_http_clients_exception(raw, headers, error):
    with pytest.raises(error):
        body_of(raw, headers)


# --- the path against real servers ---------------------------------------------------------

class ClosingServer:
    """Answers one request per connection with a keep-alive response, then closes the
    connection (the server side of a keep-alive timeout); ``closed`` is set each time."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/x"
        self.connections = 0
        self.closed = threading.Semaphore(0)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(self.RESPONSE)
            self.closed.release()

    def close(self) -> None:
        self.listener.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_not_used():
    server = ClosingServer()
    transport = gg.Urllib3Transport()
    try:
        request = HTTPRequest("GET", server.url, {}, None, gg.Timeout(5.0, 5.0))
        assert transport.send(request).body == b"ok"
        assert server.closed.acquire(timeout=10)  # the idle connection is now closed by the server
        response = transport.send(request)  # no error: a fresh connection
        assert (response.status, response.body) == (200, b"ok")
        assert server.connections == 2
    finally:
        transport.close()
        server.close()


def test_an_oversized_answer_is_refused_and_its_connection_never_reused(make_client, emulator):
    client = make_client(transport=gg.Urllib3Transport(), max_response_bytes=4096,
                         retry=gg.NoRetry())
    assert client.complete([{"role": "user", "content": "a"}]).message.content == "Echo: a"
    opened = emulator.connections_opened
    emulator.misbehave("oversized_body", size=100_000)
    with pytest.raises(gg.ResponseFormatError, match="max_response_bytes"):
        client.complete([{"role": "user", "content": "b"}])
    assert client.complete([{"role": "user", "content": "c"}]).message.content == "Echo: c"
    assert emulator.connections_opened == opened + 1  # the refused one was closed


def test_header_injection_is_refused_and_nothing_is_sent(make_client, emulator):
    client = make_client(transport=gg.Urllib3Transport(), retry=gg.NoRetry())
    with pytest.raises(gg.ConfigurationError):  # the client's own check, first
        client.complete([{"role": "user", "content": "a"}], extra_headers={"X-Tag": "secret\r\nEvil: 1"})
    transport = gg.Urllib3Transport()  # and the transport's, for any caller
    try:
        with pytest.raises(gg.TransportError) as info:
            transport.send(HTTPRequest("POST", emulator.url + DEFAULT_PATH,
                                       {"X-Tag": "secret\r\nEvil: 1"}, b"{}"))
    finally:
        transport.close()
    assert info.value.kind == "protocol" and str(info.value).startswith(INVALID_HEADER)
    assert "secret" not in str(info.value)
    assert emulator.requests == []


def test_close_leaves_no_socket_and_a_closed_transport_refuses():
    with GatewayEmulator() as em:
        client = gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(em.issue_token()))  # urllib3
        errors = []

        def call(n):
            try:
                client.complete([{"role": "user", "content": str(n)}])
            except Exception as e:  # noqa: BLE001 - asserted below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [] and client_sockets(em.port) > 0
        client.close()
        assert client_sockets(em.port) == 0
        transport = gg.Urllib3Transport()
        transport.close()
        with pytest.raises(gg.TransportError, match="closed"):
            transport.send(HTTPRequest("POST", em.url + DEFAULT_PATH, {}, b"{}"))


def test_a_host_reached_directly_and_one_through_a_proxy_share_a_transport(monkeypatch, emulator):
    """The direct path is taken only without a proxy: with one (here the environment's,
    for a second host name of the same emulator), the request goes through urllib3's
    proxy manager and the proxy sees it; NO_PROXY's host keeps the direct path."""
    from tests.proxy_helpers import ForwardProxy

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        transport = gg.Urllib3Transport()
        try:
            direct = transport.send(HTTPRequest("POST", emulator.chat_url, {}, b"{}"))
            proxied_url = emulator.chat_url.replace("127.0.0.1", "localhost")
            proxied = transport.send(HTTPRequest("POST", proxied_url, {}, b"{}"))
        finally:
            transport.close()
    assert direct.status == proxied.status == 401  # the emulator's answer without a token, both ways
    assert proxy.seen == [("POST", proxied_url)]

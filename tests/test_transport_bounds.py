"""The transports' bounds against hostile servers (the emulator's stream faults), on both
transports: a total deadline per request that holds however slowly the headers or the body
arrive, a cap on the decoded body that holds without reading it whole (gzip bombs
included), and a pool sized so that 32 threads sharing one client never churn connections.
"""

import gzip
import io
import json
import logging
import threading
import time
import tracemalloc
import zlib

import attrs
import pytest
import requests
import requests.adapters

import genesys_gateway as gg
from genesys_gateway.constants import DEFAULT_MAX_RESPONSE_BYTES
from genesys_gateway.http.transport import HTTPRequest
from genesys_gateway.testing import GatewayEmulator

HI = [{"role": "user", "content": "hi"}]
MiB = 1024 * 1024
SLACK = 0.5  # a deadline holds to within this many seconds


def send(emulator, transport, *, timeout=gg.Timeout(5.0, 5.0), cap=DEFAULT_MAX_RESPONSE_BYTES):
    """One POST to the emulator's chat endpoint (stream faults answer before auth)."""
    try:
        return transport.send(HTTPRequest("POST", emulator.chat_url, {"Content-Type": "application/json"},
                                          b"{}", timeout, cap))
    finally:
        transport.close()


def timed_failure(error_type, call):
    started = time.monotonic()
    with pytest.raises(error_type) as info:
        call()
    return info.value, time.monotonic() - started


def completion(content="ok"):
    return json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()


# --- Timeout.total ----------------------------------------------------------------------

def test_timeout_total_defaults_to_none_and_clip_sets_it():
    assert gg.Timeout().total is None
    assert gg.Timeout(5, 60).clip(None) == gg.Timeout(5, 60)
    assert gg.Timeout(5, 60).clip(2) == gg.Timeout(2, 2, total=2)
    assert gg.Timeout(5, 60, total=1).clip(2) == gg.Timeout(5, 60, total=1).clip(2) == gg.Timeout(2, 2, 1)
    assert gg.Timeout(5, 60, total=30).clip(3).total == 3
    assert gg.Timeout(5, 60, total=30).clip(-1) == gg.Timeout(0.001, 0.001, 0.001)


def test_client_validates_the_total():
    assert gg.GatewayClient(base_url="http://127.0.0.1:1", timeout=gg.Timeout(total=3)).timeout.total == 3.0
    assert gg.GatewayClient(base_url="http://127.0.0.1:1", timeout=2).timeout == gg.Timeout(2, 2)
    for bad in (0, -1, float("nan"), float("inf"), "3", True):
        with pytest.raises(gg.ConfigurationError) as info:
            gg.GatewayClient(base_url="http://127.0.0.1:1", timeout=gg.Timeout(total=bad))
        assert info.value.option == "timeout"


# --- the total deadline -----------------------------------------------------------------

def test_slow_body_is_bounded_by_the_total(emulator, transport_factory):
    """Headers at once, then a body byte every 0.4 s: each read is quick, the whole is not."""
    emulator.misbehave("slow_body", seconds=0.4, size=1000)
    error, elapsed = timed_failure(gg.TransportError, lambda: send(
        emulator, transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=1.0)))
    assert error.kind == "deadline" and not error.retryable
    assert 1.0 - 0.05 <= elapsed < 1.0 + SLACK


def test_slow_headers_are_bounded_by_the_total(emulator, transport_factory):
    """One header byte every 0.1 s, forever: a read timeout never fires."""
    emulator.misbehave("slow_headers", seconds=0.1)
    error, elapsed = timed_failure(gg.TransportError, lambda: send(
        emulator, transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=1.0)))
    assert error.kind == "deadline"
    assert elapsed < 1.0 + SLACK


def test_silent_server_past_the_total_is_deadline_not_read_timeout(emulator, transport_factory):
    emulator.delay(5)
    error, elapsed = timed_failure(gg.TransportError, lambda: send(
        emulator, transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=0.5)))
    assert error.kind == "deadline" and elapsed < 0.5 + SLACK


def test_read_timeout_within_the_total_is_a_read_timeout(emulator, transport_factory):
    emulator.delay(5)
    error, elapsed = timed_failure(gg.TransportError, lambda: send(
        emulator, transport_factory(), timeout=gg.Timeout(5.0, 0.3, total=3.0)))
    assert error.kind == "read_timeout" and error.retryable and elapsed < 3.0


def test_a_total_leaves_a_normal_answer_alone(emulator, transport_factory):
    emulator.fail(200, body=completion("fine"))
    response = send(emulator, transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=5.0))
    assert response.status == 200 and json.loads(response.body)["choices"][0]["message"]["content"] == "fine"


def test_run_deadline_bounds_a_slow_body_end_to_end(make_client, emulator, transport_factory):
    """``run(deadline=2)`` against a body trickling a byte every 0.4 s ends in about 2 s,
    with stop reason "deadline" (the client clips each request's total to what is left)."""
    client = make_client(transport=transport_factory())
    client.complete(HI)  # the token, fetched outside the measured run
    emulator.misbehave("slow_body", seconds=0.4, size=1000)
    started = time.monotonic()
    result = client.run("hi", deadline=2)
    elapsed = time.monotonic() - started
    assert result.stop_reason == "deadline" and result.content is None
    assert elapsed < 2 + SLACK


def test_complete_deadline_bounds_a_slow_body(make_client, emulator, transport_factory):
    client = make_client(transport=transport_factory())
    client.complete(HI)
    emulator.misbehave("slow_body", seconds=0.4, size=1000)
    error, elapsed = timed_failure(gg.TransportError, lambda: client.complete(HI, deadline=1))
    assert error.kind == "deadline" and elapsed < 1 + SLACK


# --- stop reasons: only a passed deadline is "deadline" -----------------------------------

def test_read_timeout_with_a_far_deadline_raises_the_transport_error(make_client, emulator,
                                                                     transport_factory):
    emulator.delay(5)
    client = make_client(transport=transport_factory(), timeout=gg.Timeout(5.0, 0.3), retry=gg.NoRetry())
    error, elapsed = timed_failure(gg.TransportError, lambda: client.run("hi", deadline=30))
    assert error.kind == "read_timeout" and elapsed < 5


def test_passed_deadline_is_the_deadline_stop_reason(make_client, emulator, transport_factory):
    emulator.delay(5)
    client = make_client(transport=transport_factory(), retry=gg.NoRetry())
    started = time.monotonic()
    assert client.run("hi", deadline=0.5).stop_reason == "deadline"
    assert time.monotonic() - started < 0.5 + SLACK


def test_a_requests_own_total_is_not_the_runs_deadline(make_client, emulator, transport_factory):
    emulator.misbehave("slow_body", seconds=0.4, size=1000)
    client = make_client(transport=transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=0.5),
                         retry=gg.NoRetry())
    error, _ = timed_failure(gg.TransportError, lambda: client.run("hi", deadline=30))
    assert error.kind == "deadline"  # the request's budget: raised, not a "deadline" stop


# --- the response size cap --------------------------------------------------------------

def peak_memory(call):
    """(what *call* raised or returned, peak bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except gg.GatewayError as e:
            outcome = e
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_client_option_max_response_bytes():
    client = gg.GatewayClient(base_url="http://127.0.0.1:1")
    assert client.options.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 10 * MiB
    assert gg.GatewayClient(base_url="http://127.0.0.1:1", max_response_bytes=5).options.max_response_bytes == 5
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(gg.ConfigurationError) as info:
            gg.GatewayClient(base_url="http://127.0.0.1:1", max_response_bytes=bad)
        assert info.value.option == "max_response_bytes"


def test_oversized_body_is_refused_without_reading_it(emulator, transport_factory):
    emulator.misbehave("oversized_body", size=200 * MiB)
    started = time.monotonic()
    error, peak = peak_memory(lambda: send(emulator, transport_factory(), cap=MiB))
    assert isinstance(error, gg.ResponseFormatError) and "max_response_bytes" in str(error)
    assert peak < 3 * MiB and time.monotonic() - started < 5


def test_endless_chunked_body_ends_at_the_cap(emulator, transport_factory):
    emulator.misbehave("endless_body")
    error, peak = peak_memory(lambda: send(emulator, transport_factory(), cap=MiB))
    assert isinstance(error, gg.ResponseFormatError) and peak < 3 * MiB


def test_slow_endless_body_ends_at_the_deadline(emulator, transport_factory):
    emulator.misbehave("endless_body", seconds=0.2)  # 64 KiB every 0.2 s: the cap is far
    error, elapsed = timed_failure(gg.TransportError, lambda: send(
        emulator, transport_factory(), timeout=gg.Timeout(5.0, 5.0, total=1.0)))
    assert error.kind == "deadline" and elapsed < 1.0 + SLACK


def test_gzip_bomb_is_not_expanded_whole(emulator, transport_factory):
    """199 KB of gzip that expands to 200 MB: refused after decoding about the cap."""
    emulator.misbehave("gzip_bomb", size=200 * MiB)
    cap = DEFAULT_MAX_RESPONSE_BYTES
    error, peak = peak_memory(lambda: send(emulator, transport_factory(), cap=cap))
    assert isinstance(error, gg.ResponseFormatError) and "max_response_bytes" in str(error)
    assert peak < 3 * cap


@pytest.mark.parametrize("encode, encoding", [
    (gzip.compress, "gzip"),
    (gzip.compress, "x-gzip"),
    (zlib.compress, "deflate"),
    (lambda data: zlib.compress(data)[2:-4], "deflate"),  # raw deflate, as some servers send
    (lambda data: gzip.compress(gzip.compress(data)), "gzip, gzip"),
    (lambda data: data, "identity"),
])
def test_compressed_answers_are_decoded(make_client, emulator, transport_factory, encode, encoding):
    emulator.fail(200, body=encode(completion("squeezed")), headers={"Content-Encoding": encoding})
    client = make_client(transport=transport_factory())
    assert client.complete(HI).message.content == "squeezed"


def test_cap_is_on_the_decoded_size(make_client, emulator, transport_factory):
    body = completion("x" * 5000)
    client = make_client(transport=transport_factory(), max_response_bytes=len(body) - 1, retry=gg.NoRetry())
    client.complete(HI)  # the token (a small answer)
    emulator.fail(200, body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    with pytest.raises(gg.ResponseFormatError):
        client.complete(HI)
    emulator.fail(200, body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    exact = make_client(transport=transport_factory(), max_response_bytes=len(body))
    assert exact.complete(HI).message.content == "x" * 5000


def test_body_at_the_cap_is_accepted_and_one_byte_more_is_not(emulator, transport_factory):
    body = completion("y" * 100)
    emulator.fail(200, body=body)
    assert send(emulator, transport_factory(), cap=len(body)).body == body
    emulator.fail(200, body=body)
    error, _ = peak_memory(lambda: send(emulator, transport_factory(), cap=len(body) - 1))
    assert isinstance(error, gg.ResponseFormatError)


def test_a_connection_left_mid_body_is_never_reused(make_client, emulator, transport_factory):
    """A refused (too large) answer leaves unread bytes on a kept-alive connection: the
    next call must not read them as its own answer."""
    client = make_client(transport=transport_factory(), max_response_bytes=2000, retry=gg.NoRetry())
    assert client.complete(HI).message.content == "Echo: hi"
    emulator.fail(200, body=completion("z" * 50_000))
    with pytest.raises(gg.ResponseFormatError):
        client.complete(HI)
    assert client.complete([{"role": "user", "content": "again"}]).message.content == "Echo: again"


@pytest.mark.parametrize("encoding, body", [("gzip", b"not gzip at all"), ("br", b"\x00\x01"),
                                            ("deflate", b"\xff\xfe\xfd")])
def test_undecodable_or_unsupported_encoding_is_a_protocol_error(emulator, transport_factory, encoding, body):
    emulator.fail(200, body=body, headers={"Content-Encoding": encoding})
    error, _ = timed_failure(gg.TransportError, lambda: send(emulator, transport_factory()))
    assert error.kind == "protocol" and not error.retryable


def test_reset_mid_body_is_closed(emulator, transport_factory):
    emulator.misbehave("reset_mid_body")
    error, _ = timed_failure(gg.TransportError, lambda: send(emulator, transport_factory()))
    assert error.kind == "closed" and error.retryable


# --- the pool ---------------------------------------------------------------------------

def test_32_threads_share_one_client_without_churning_connections(caplog, transport_factory):
    threads, calls = 32, 10
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    with GatewayEmulator() as em, gg.GatewayClient(
            base_url=em.url, auth=gg.BearerToken(em.issue_token()), transport=transport_factory()) as client:
        barrier = threading.Barrier(threads)
        errors = []

        def worker(n):
            try:
                barrier.wait(10)
                for i in range(calls):
                    text = f"{n}-{i}"
                    answer = client.complete([{"role": "user", "content": text}]).message.content
                    assert answer == f"Echo: {text}"
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        opened = em.connections_opened
    assert errors == []
    full = [r for r in caplog.records if "pool is full" in r.getMessage().lower()]
    assert full == []
    assert opened <= threads  # at most one connection per thread, each kept and reused


class CannedAdapter(requests.adapters.BaseAdapter):
    """A custom requests adapter (``RequestsTransport(mount=...)``) whose responses' ``raw``
    is a plain file, not urllib3's."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code, response.raw, response.request, response.url = 200, io.BytesIO(self.body), \
            request, request.url
        return response

    def close(self):
        pass


def test_custom_requests_adapters_hold_the_cap():
    body = completion("from a custom adapter") * 100
    transport = gg.RequestsTransport(mount={"http://": CannedAdapter(body)})
    request = HTTPRequest("POST", "http://127.0.0.1:1/chat", {}, b"{}", gg.Timeout(), len(body))
    assert transport.send(request).body == body
    with pytest.raises(gg.ResponseFormatError):
        transport.send(attrs.evolve(request, max_response_bytes=len(body) - 1))
    transport.close()


# --- the emulator's hostile servers -----------------------------------------------------

def test_misbehave_refuses_unknown_kinds(emulator):
    with pytest.raises(ValueError, match="slow_body"):
        emulator.misbehave("slow")


def test_closing_the_emulator_stops_a_hostile_writer_at_once():
    import socket

    before = threading.active_count()
    em = GatewayEmulator().start()
    em.misbehave("slow_headers", seconds=30)
    with socket.create_connection(("127.0.0.1", em.port)) as sock:
        sock.sendall(b"POST " + em.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        started = time.monotonic()
        em.close()
        assert time.monotonic() - started < 1.0
    assert threading.active_count() == before
    assert em.requests[-1].fault == "slow_headers"

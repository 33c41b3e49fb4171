"""Both transports against real loopback failures, and the order of their exception tables.

A failure must be classified alike by both transports (same ``kind``, so the same retry
decision), and no message may quote a request header value: it may be a credential.
"""

import http.client
import socket
import time

import pytest
import requests
import urllib3
import urllib3.connection

import genesys_gateway as gg
from genesys_gateway.http import requests_transport, urllib3_transport
from genesys_gateway.http.bounded import RequestDeadlineExceeded
from genesys_gateway.http.transport import (
    INVALID_HEADER,
    HTTPRequest,
    to_transport_error,
)
from tests.net_helpers import RawServer, free_port, full_backlog_listener

SECRET = "SECRET123"
HEADERS = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
TIMEOUT = gg.Timeout(5.0, 5.0)
TRANSPORTS = {"urllib3": gg.Urllib3Transport, "requests": gg.RequestsTransport}


def failures(url, timeout=TIMEOUT, headers=HEADERS):
    """{transport name: the TransportError its send() raised} for one POST to *url*."""
    errors = {}
    for name, factory in TRANSPORTS.items():
        transport = factory()
        try:
            with pytest.raises(gg.TransportError) as info:
                transport.send(HTTPRequest("POST", url + "/chat", headers, b"{}", timeout))
        finally:
            transport.close()
        error = info.value
        assert SECRET not in str(error) and SECRET not in repr(error), (name, error)
        errors[name] = error
    return errors


def kinds(errors):
    return {name: error.kind for name, error in errors.items()}


def test_refused_connection_is_refused_not_a_timeout():
    errors = failures(f"http://127.0.0.1:{free_port()}")
    assert kinds(errors) == {"urllib3": "refused", "requests": "refused"}
    for error in errors.values():
        assert str(error).startswith("connection failed:") and "refused" in str(error).lower()
        assert "timeout" not in str(error)
        assert error.retryable


def test_closed_without_answer_is_closed():
    with RawServer("close") as server:
        errors = failures(server.url)
    assert kinds(errors) == {"urllib3": "closed", "requests": "closed"}
    # a close that lands while the request body is still being sent reaches the client as
    # a reset (the kernel answers the unread data with an RST): the kind is the same
    assert all(str(e).startswith(("connection closed:", "connection reset:")) and e.retryable
               for e in errors.values())


def test_reset_is_closed():
    with RawServer("reset") as server:
        errors = failures(server.url)
    assert kinds(errors) == {"urllib3": "closed", "requests": "closed"}
    # "connection reset" or, when the RST lands while the body is still being sent,
    # "connection closed": the kind is what both transports must agree on
    assert all(str(e).startswith(("connection reset:", "connection closed:")) for e in errors.values())


def test_unresolvable_host_is_dns():
    try:
        socket.getaddrinfo("gw.invalid", 80)
    except socket.gaierror:
        pass
    else:
        pytest.skip("this resolver answers for .invalid names")
    errors = failures("http://gw.invalid")
    assert kinds(errors) == {"urllib3": "dns", "requests": "dns"}
    assert all(str(e).startswith("name resolution failed:") and e.retryable for e in errors.values())


def test_tls_handshake_failure_is_tls():
    with RawServer("not_tls") as server:  # answers a TLS hello with plain text
        errors = failures(server.url.replace("http://", "https://"))
    assert kinds(errors) == {"urllib3": "tls", "requests": "tls"}
    assert all(str(e).startswith("TLS error:") and not e.retryable for e in errors.values())


def test_stall_after_headers_is_a_read_timeout():
    with RawServer("stall") as server:
        started = time.monotonic()
        errors = failures(server.url, timeout=gg.Timeout(connect=5.0, read=0.3))
        elapsed = time.monotonic() - started
    assert kinds(errors) == {"urllib3": "read_timeout", "requests": "read_timeout"}
    assert all(str(e).startswith("read timeout:") and e.retryable for e in errors.values())
    assert elapsed < 5.0  # two 0.3 s read timeouts, not the 5 s connect timeout


def test_invalid_status_line_is_a_protocol_error():
    with RawServer("bad_status") as server:
        errors = failures(server.url)
    assert kinds(errors) == {"urllib3": "protocol", "requests": "protocol"}
    for error in errors.values():
        assert str(error).startswith("invalid HTTP response:") and "BadStatusLine" in str(error)
        assert not error.retryable


def test_truncated_body_is_closed():
    with RawServer("truncate") as server:
        errors = failures(server.url)
    assert kinds(errors) == {"urllib3": "closed", "requests": "closed"}
    assert all(e.retryable for e in errors.values())


def test_body_cut_mid_chunk_is_closed_on_both_transports():
    with RawServer("truncate_chunked") as server:
        errors = failures(server.url)
    assert kinds(errors) == {"urllib3": "closed", "requests": "closed"}
    assert all(e.retryable for e in errors.values())


def test_connect_timeout_is_a_connect_timeout():
    listener, fillers = full_backlog_listener()
    try:
        host, port = listener.getsockname()
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((host, port)) == 0:
                pytest.skip("this kernel accepts connections beyond a full backlog")
        errors = failures(f"http://{host}:{port}", timeout=gg.Timeout(connect=0.3, read=5.0))
    finally:
        for s in [listener, *fillers]:
            s.close()
    assert kinds(errors) == {"urllib3": "connect_timeout", "requests": "connect_timeout"}
    assert all(str(e).startswith("connect timeout:") and e.retryable for e in errors.values())


@pytest.mark.parametrize("value", [f"{SECRET}\r\nEvil: 1", f"{SECRET}\n", f"{SECRET}\u2019"])
def test_unsendable_header_is_refused_without_quoting_it(value):
    with RawServer("close") as server:
        errors = failures(server.url, headers={**HEADERS, "X-Key": value})
    assert kinds(errors) == {"urllib3": "protocol", "requests": "protocol"}
    assert all(str(e).startswith(INVALID_HEADER) for e in errors.values())


# --- the tables, unit by unit --------------------------------------------------------

def urllib3_error(exc) -> gg.TransportError:
    error = to_transport_error(exc, urllib3_transport.error_table())
    assert error is not None, exc
    return error


def requests_error(exc) -> gg.TransportError:
    error = to_transport_error(exc, requests_transport.error_table())
    assert error is not None, exc
    return error


CONN = urllib3.connection.HTTPConnection("gw.invalid", 443)  # never connected
POOL = urllib3.HTTPConnectionPool("gw.invalid", 443)


def refused():
    cause = ConnectionRefusedError(111, "Connection refused")
    exc = urllib3.exceptions.NewConnectionError(CONN, f"Failed to establish a new connection: {cause}")
    exc.__cause__ = cause
    return exc


def name_not_resolved():
    cause = socket.gaierror(-2, "Name or service not known")
    if hasattr(urllib3.exceptions, "NameResolutionError"):  # urllib3 2
        return urllib3.exceptions.NameResolutionError("gw.invalid", CONN, cause)
    try:  # urllib3 1.26 raises NewConnectionError while handling the gaierror, without "from"
        raise cause
    except socket.gaierror:
        try:
            raise urllib3.exceptions.NewConnectionError(CONN, f"Failed to establish a new connection: {cause}")
        except urllib3.exceptions.NewConnectionError as exc:
            return exc


def connect_timed_out():
    return urllib3.exceptions.ConnectTimeoutError(CONN, "Connection to gw timed out. (connect timeout=1)")


def read_timed_out():
    return urllib3.exceptions.ReadTimeoutError(POOL, "/chat", "Read timed out. (read timeout=1)")


def deadline_passed():
    cause = RequestDeadlineExceeded("request deadline exceeded")
    exc = urllib3.exceptions.ReadTimeoutError(POOL, "/chat", "Read timed out.")
    exc.__cause__ = cause
    return exc


URLLIB3_FAILURES = {  # urllib3's exception for a failure -> (kind, message prefix)
    "refused": (refused, "refused", "connection failed"),
    "dns": (name_not_resolved, "dns", "name resolution failed"),
    "connect timeout": (connect_timed_out, "connect_timeout", "connect timeout"),
    "read timeout": (read_timed_out, "read_timeout", "read timeout"),
    "deadline": (deadline_passed, "deadline", "request deadline exceeded"),
    "closed": (lambda: urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection")), "closed",
        "connection closed"),
    "reset": (lambda: urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")), "closed", "connection reset"),
    "bad status line": (lambda: urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.BadStatusLine("NOT-HTTP")), "protocol", "invalid HTTP response"),
    "tls": (lambda: urllib3.exceptions.SSLError("certificate verify failed"), "tls", "TLS error"),
    "proxy": (lambda: urllib3.exceptions.ProxyError("Unable to connect to proxy", refused()), "refused", "proxy error"),
    "proxy dns": (lambda: urllib3.exceptions.ProxyError("Unable to connect to proxy", name_not_resolved()),
                  "dns", "proxy error"),
    "tunnel refused": (lambda: urllib3.exceptions.ProxyError(
        "Unable to connect to proxy", OSError("Tunnel connection failed: 403 Forbidden")), "refused", "proxy error"),
    "decode": (lambda: urllib3.exceptions.DecodeError("bad gzip"), "protocol", "invalid content encoding"),
}


@pytest.mark.parametrize("failure", list(URLLIB3_FAILURES))
def test_urllib3_table_classifies_each_failure(failure):
    make, kind, prefix = URLLIB3_FAILURES[failure]
    error = urllib3_error(make())
    assert (error.kind, str(error).split(":")[0]) == (kind, prefix)


def test_new_connection_error_is_not_a_connect_timeout():
    # NewConnectionError (and NameResolutionError) subclass ConnectTimeoutError: a table
    # that put ConnectTimeoutError first would call a refused connection a timeout.
    assert issubclass(urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
    error = urllib3_error(refused())
    assert str(error).startswith("connection failed:") and "Connection refused" in str(error)
    assert not str(urllib3_error(name_not_resolved())).startswith("connect timeout")


@pytest.mark.parametrize("failure", list(URLLIB3_FAILURES))
def test_requests_table_agrees_with_urllib3_on_wrapped_failures(failure):
    """requests wraps urllib3's exception (through MaxRetryError for connection failures):
    the classification and the message must be urllib3's."""
    make = URLLIB3_FAILURES[failure][0]
    expected = urllib3_error(make())
    wrapped = [requests.exceptions.ConnectionError(make()),
               requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(POOL, "/chat", make()))]
    for exc in wrapped:
        error = requests_error(exc)
        assert (error.kind, str(error)) == (expected.kind, str(expected))


def test_requests_table_own_exceptions():
    assert requests_error(requests.exceptions.ConnectTimeout("no cause")).kind == "connect_timeout"
    assert requests_error(requests.exceptions.ReadTimeout("no cause")).kind == "read_timeout"
    assert requests_error(requests.exceptions.SSLError("no cause")).kind == "tls"
    assert requests_error(requests.exceptions.ProxyError("no cause")).kind == "refused"
    assert requests_error(requests.exceptions.ConnectionError("no cause")).kind == "closed"
    assert requests_error(requests.exceptions.ChunkedEncodingError("no cause")).kind == "closed"
    # InvalidURL is a RequestException, hence an OSError: not the "connection error" fallback
    invalid_url = requests_error(requests.exceptions.InvalidURL("Invalid URL 'http://'"))
    assert (invalid_url.kind, invalid_url.retryable) == ("protocol", False)
    header = requests_error(requests.exceptions.InvalidHeader(f"Invalid return character in header value: {SECRET!r}"))
    assert header.kind == "protocol" and SECRET not in str(header)


@pytest.mark.parametrize("table", [urllib3_transport.error_table, requests_transport.error_table])
def test_no_row_is_shadowed_by_an_earlier_one(table):
    rows = table()
    for i, later in enumerate(rows):
        for earlier in rows[:i]:
            assert not issubclass(later.exc_type, earlier.exc_type), (earlier, later)


@pytest.mark.parametrize("module", [urllib3_transport, requests_transport])
def test_map_exceptions_maps_table_rows_and_lets_others_through(module):
    with pytest.raises(gg.TransportError) as info, module.map_exceptions:
        raise ValueError(f"Invalid header value b'{SECRET}\\r\\n'")
    assert info.value.kind == "protocol" and SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(KeyError), module.map_exceptions:
        raise KeyError("not a transport failure")


RETRYABLE = {"refused": True, "dns": True, "connect_timeout": True, "read_timeout": True, "closed": True,
             "deadline": False, "tls": False, "protocol": False}


@pytest.mark.parametrize("kind", sorted(RETRYABLE))
def test_retryable_by_kind(kind):
    error = gg.TransportError("x", kind=kind)
    assert error.retryable is RETRYABLE[kind]
    assert kind in gg.TransportError.KINDS


def test_transport_error_kinds_are_exactly_these():
    assert set(gg.TransportError.KINDS) == set(RETRYABLE)
    with pytest.raises(ValueError):
        gg.TransportError("x", kind="timeout")


@pytest.mark.parametrize("table", [urllib3_transport.error_table, requests_transport.error_table])
def test_every_row_gives_a_known_kind(table):
    assert {rule.kind for rule in table()} - {None} <= set(gg.TransportError.KINDS)


@pytest.mark.parametrize("kind", sorted(RETRYABLE))
def test_kind_survives_pickling(kind):
    import pickle

    error = pickle.loads(pickle.dumps(gg.TransportError("lost", kind=kind)))
    assert (type(error), str(error), error.kind, error.retryable) == (
        gg.TransportError, "lost", kind, RETRYABLE[kind])

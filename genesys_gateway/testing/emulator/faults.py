"""Fault specs, the request log entry and Genesys-style error bodies for the emulator."""

from __future__ import annotations

import functools
import json
import socket
import struct
import threading
import zlib
from typing import Any, Iterable, Mapping, Optional, Union

import attrs

__all__ = [
    "ERROR_CODES",
    "Fault",
    "HeaderPairs",
    "HeadersLike",
    "RecordedRequest",
    "STREAM_FAULTS",
    "encode_body",
    "genesys_error",
    "oauth_error",
    "write_stream_fault",
]

#: Response headers as ``(name, value)`` pairs; a ``None`` value removes a default header.
HeaderPairs = tuple[tuple[str, Optional[str]], ...]
#: What fault helpers accept as headers: a mapping or ``(name, value)`` pairs (values are
#: sent as ``str(value)``; ``None`` removes a default header).
HeadersLike = Union[Mapping[str, object], Iterable[tuple[str, object]]]

#: Genesys Cloud error ``code`` for each status the emulator answers by default.
ERROR_CODES: dict[int, str] = {
    400: "bad.request",
    401: "authentication.required",
    403: "missing.permissions",
    404: "not.found",
    405: "method.not.allowed",
    408: "request.timeout",
    409: "conflict",
    413: "request.entity.too.large",
    415: "unsupported.media.type",
    422: "invalid.value",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}

_DEFAULT_MESSAGES = {
    429: "Rate limit exceeded the maximum. Retry the request in [1] seconds",
    500: "The server encountered an unexpected condition which prevented it from fulfilling the request.",
    502: "The gateway received an invalid response from an upstream server.",
    503: "The service is currently unavailable.",
    504: "The gateway did not receive a timely response from an upstream server.",
}

#: Faults that write their own response, byte by byte if need be (see :func:`write_stream_fault`).
STREAM_FAULTS = ("slow_headers", "slow_body", "endless_body", "oversized_body", "gzip_bomb",
                 "reset_mid_body")
FAULT_KINDS = ("fail", "delay", "drop", "garbage", "echo") + STREAM_FAULTS


@attrs.frozen
class Fault:
    """One injected fault, consumed by one request to its endpoint.

    ``kind`` is ``"fail"`` (answer *status* with *body*/*headers*), ``"delay"`` (wait *seconds*,
    then answer normally), ``"drop"`` (read the request, close the socket without answering) or
    ``"garbage"`` (answer *status* with the raw *body* and *content_type*) or ``"echo"`` (answer
    *status* with an error body quoting the request's ``Authorization`` header, see
    :func:`echo_body`, as JSON or, with a ``text/*`` *content_type*, as text). A ``None`` body of a
    ``"fail"`` fault means the default error body for the status and endpoint. A header whose
    value is ``None`` removes that default header (e.g. ``Retry-After`` of a 429).

    Hostile servers (the response is written by :func:`write_stream_fault`, then the
    connection is closed; *status* defaults to 200):

    * ``"slow_headers"``: the status line, then one byte of a header every *seconds*, forever;
    * ``"slow_body"``: headers at once (``Content-Length: size``, default 1000), then one body
      byte every *seconds*;
    * ``"endless_body"``: a chunked body that never ends (64 KiB chunks, *seconds* apart);
    * ``"oversized_body"``: a *size*-byte body (``Content-Length``), as fast as it is read;
    * ``"gzip_bomb"``: ``Content-Encoding: gzip``, a small body that expands to *size* bytes;
    * ``"reset_mid_body"``: headers promising *size* bytes (default 1000), half of them, then
      a TCP reset.

    Attributes:
        kind: one of the kinds above.
        status: the status to answer (see the kinds above).
        body: the body to answer (``None``: the default error body).
        headers: ``(name, value)`` header pairs to send (``None`` value: remove it).
        seconds: the delay, or the time between trickled bytes.
        content_type: the ``Content-Type`` of a ``"garbage"`` or ``"echo"`` answer.
        size: the body size of the hostile-server kinds.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(FAULT_KINDS))
    status: int = 0
    body: object = None
    headers: HeaderPairs = ()
    seconds: float = 0.0
    content_type: str = "application/json"
    size: int = 0


@attrs.frozen
class RecordedRequest:
    """One request the emulator received, with what it answered.

    Attributes:
        method: the HTTP method.
        path: the request path.
        headers: the request headers, with lower-case names.
        body: the raw request body.
        json: the parsed body (a dict) or ``None``.
        endpoint: ``"chat"``, ``"token"`` or ``"other"``.
        status: the status answered, ``None`` when the connection was dropped.
        connection_id: identifies the TCP connection (requests on one connection share it).
        correlation_id: the ``ININ-Correlation-Id`` the emulator answered with.
        fault: the kind of the injected fault applied, if any.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Optional[dict[str, Any]]
    endpoint: str
    status: Optional[int]
    connection_id: int
    correlation_id: str = ""
    fault: Optional[str] = None


def genesys_error(status: int, message: str, context_id: str, code: str | None = None) -> dict[str, Any]:
    """A Genesys Cloud ``ErrorBody``."""
    return {
        "message": message,
        "code": code or ERROR_CODES.get(status, "error"),
        "status": status,
        "contextId": context_id,
        "details": [],
        "errors": [],
    }


def oauth_error(error: str, description: str) -> dict[str, str]:
    """An OAuth error body as the Genesys login host sends it."""
    return {"error": error, "description": description, "error_description": description}


def default_fault_body(status: int, endpoint: str, context_id: str) -> dict[str, Any]:
    """The body of a ``fail`` fault given no body: Genesys-style, or OAuth-style on the token
    endpoint for 400/401 (Genesys rate-limits token requests with 400 ``invalid_request``)."""
    if endpoint == "token" and status == 400:
        return oauth_error("invalid_request", "rate limit exceeded")
    if endpoint == "token" and status == 401:
        return oauth_error("invalid_client", "Invalid client credentials")
    message = _DEFAULT_MESSAGES.get(status) or f"Injected fault: HTTP {status}"
    return genesys_error(status, message, context_id)


def echo_body(status: int, endpoint: str, context_id: str, authorization: str,
              content_type: str = "application/json") -> object:
    """What a careless server answers: the refused ``Authorization`` header quoted in the
    message, whole and without its scheme, and again nested in ``details``."""
    scheme, _, credential = authorization.partition(" ")
    text = f"Refused Authorization header {authorization!r} ({scheme} credential {credential})"
    if content_type.startswith("text/"):
        return text
    body: dict[str, Any] = (oauth_error("invalid_request" if status == 400 else "invalid_client", text)
                            if endpoint == "token" else genesys_error(status, text, context_id))
    body["details"] = [{"header": "Authorization", "value": authorization, "credential": [credential]}]
    return body


def encode_body(body: object) -> bytes:
    """bytes as is, str as UTF-8, anything else as compact JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def normalize_headers(headers: HeadersLike | None) -> HeaderPairs:
    """A mapping or sequence of pairs as a tuple of ``(name, value)`` pairs."""
    if not headers:
        return ()
    items: Iterable[tuple[object, object]]
    if isinstance(headers, Mapping):
        items = headers.items()
    elif hasattr(headers, "items"):  # a headers object that is not a Mapping (email.message.Message)
        items = getattr(headers, "items")()
    else:
        items = headers
    return tuple((str(k), None if v is None else str(v)) for k, v in items)


def merge_headers(
    defaults: Iterable[tuple[str, str]], overrides: Iterable[tuple[str, Optional[str]]]
) -> list[tuple[str, str]]:
    """Headers with *overrides* replacing defaults case-insensitively (``None`` removes)."""
    out = {k.lower(): (k, v) for k, v in defaults}
    for k, v in overrides:
        if v is None:
            out.pop(k.lower(), None)
        else:
            out[k.lower()] = (k, v)
    return list(out.values())


# --- hostile servers -------------------------------------------------------------------

_BLOCK = 64 * 1024


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip body that expands to *size* spaces (about 1/1000 of *size*; cached)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    parts.append(packer.compress(b" " * (size % len(block))))
    parts.append(packer.flush())
    return b"".join(parts)


def _head(fault: Fault, headers: Iterable[tuple[str, str]]) -> bytes:
    from http import HTTPStatus

    status = fault.status or 200
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    pairs = merge_headers([("Content-Type", fault.content_type), *headers, ("Connection", "close")],
                          fault.headers)
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in pairs)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def write_stream_fault(fault: Fault, stopping: threading.Event, sock: socket.socket) -> None:
    """Answer on *sock* as the hostile server *fault* describes (:data:`STREAM_FAULTS`);
    return when done, when *stopping* is set (the emulator closes) or when the client has
    gone away (a write fails)."""
    try:
        _write(fault, stopping, sock)
    except OSError:
        pass  # the client closed the connection: that is what a bounded client does


def _trickle(data: bytes, seconds: float, stopping: threading.Event, sock: socket.socket) -> None:
    for i in range(len(data)):
        if stopping.wait(seconds):
            return
        sock.sendall(data[i:i + 1])


def _write(fault: Fault, stopping: threading.Event, sock: socket.socket) -> None:
    kind, seconds = fault.kind, fault.seconds
    if kind == "slow_headers":
        status_line = _head(fault, []).partition(b"\r\n")[0]
        sock.sendall(status_line + b"\r\nX-Slow: ")
        while not stopping.is_set():  # one endless header line: only a total bound ends it
            _trickle(b"a" * 64, seconds, stopping, sock)
    elif kind in ("slow_body", "reset_mid_body"):
        body = encode_body(fault.body) if fault.body is not None else b" " * (fault.size or 1000)
        sock.sendall(_head(fault, [("Content-Length", str(len(body)))]))
        if kind == "slow_body":
            _trickle(body, seconds, stopping, sock)
        else:
            sock.sendall(body[:len(body) // 2])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # SO_LINGER 0: a reset, not a clean end
    elif kind == "endless_body":
        sock.sendall(_head(fault, [("Transfer-Encoding", "chunked")]))
        chunk = b"%x\r\n" % _BLOCK + b" " * _BLOCK + b"\r\n"
        while not stopping.is_set():
            sock.sendall(chunk)
            if seconds:
                stopping.wait(seconds)
    elif kind == "oversized_body":
        sock.sendall(_head(fault, [("Content-Length", str(fault.size))]))
        block, left = b" " * _BLOCK, fault.size
        while left > 0 and not stopping.is_set():
            sock.sendall(block[:left])
            left -= _BLOCK
    elif kind == "gzip_bomb":
        body = gzip_bomb(fault.size)
        sock.sendall(_head(fault, [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))])
                     + body)

"""The bounds both transports hold on a response, whatever the server does.

* A **total deadline per request** (``Timeout(total=...)``): every socket operation of the
  request (connect, each send, each receive of the headers and of the body) waits at most
  for what is left of the budget, so a server that trickles a byte now and then cannot hold
  a request past it. A read timeout alone cannot do that: it bounds each receive, and
  ``http.client`` reads a header line or a chunk in as many receives as the server likes.
  The deadline is handed to the connection by the thread that sends (:func:`set_deadline`),
  read by the connection classes of the transports' pools (:func:`bounded_connection`: its
  ``connect`` and ``send``) and by :class:`BoundedHTTPResponse`, their ``http.client``
  response class, whose socket reader (:class:`DeadlineReader`) sets the socket's timeout
  to ``min(read timeout, time left)`` before each receive.
* A **cap on the decoded body** (:func:`read_body`): the body is read in pieces and refused
  (``ResponseFormatError``) as soon as it is larger than the cap; a declared
  ``Content-Length`` over the cap is refused before reading. ``gzip`` and ``deflate`` are
  decoded here, incrementally, never producing more than the cap plus one piece (a gzip
  bomb is not expanded); the library's own decoding is not used (urllib3 bounds streaming
  decompression only from 2.6.0 on). The compressed size is capped too.
"""

from __future__ import annotations

import http.client
import io
import threading
import time
import zlib
from typing import Any, Callable, Mapping, Protocol

from ..errors import ResponseFormatError, TransportError

__all__ = [
    "CHUNK",
    "BoundedHTTPResponse",
    "Deadline",
    "DeadlineReader",
    "RawResponse",
    "RequestDeadlineExceeded",
    "bounded_connection",
    "capped_body",
    "deadline_passed",
    "Decoder",
    "content_encodings",
    "read_body",
    "set_deadline",
]

CHUNK = 64 * 1024
MAX_ENCODINGS = 4  # more stacked Content-Encodings than this is an attack, not a server


class RequestDeadlineExceeded(TimeoutError):
    """A socket operation found the request's total budget spent. A ``TimeoutError``, so
    the HTTP libraries wrap it as they wrap a timeout (the tables find it inside)."""


class Deadline:
    """When the request's total budget runs out (``at``, on ``time.monotonic``), with its
    read timeout (each receive waits at most for the smaller of the two)."""

    __slots__ = ("at", "read", "total")

    def __init__(self, total: float, read: float) -> None:
        self.at = time.monotonic() + total
        self.read = read
        self.total = total

    def left(self) -> float:
        """Seconds left; ``RequestDeadlineExceeded`` when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise RequestDeadlineExceeded(f"no whole response within {self.total:g} s")
        return left


class _Active(threading.local):
    deadline: Deadline | None = None  # a class default: reading it never raises (cheap)


_active = _Active()


def set_deadline(deadline: Deadline | None) -> None:
    """Make *deadline* the one of this thread's request (``None`` once it is done: a
    transport sets it only for a request that has one, and always clears it after)."""
    _active.deadline = deadline


def deadline_passed(error: TransportError, deadline: Deadline | None) -> TransportError:
    """*error*, or a ``"deadline"`` error when it is a timeout that fired because the
    budget was spent (the library's timeout was cut to what was left of it)."""
    if (deadline is not None and error.kind in ("connect_timeout", "read_timeout")
            and time.monotonic() >= deadline.at - 0.005):
        return TransportError(f"request deadline exceeded: no whole response within {deadline.total:g} s",
                              kind="deadline")
    return error


# --- the socket side --------------------------------------------------------------------

class DeadlineReader(io.RawIOBase):
    """A socket's raw reader whose every receive waits at most ``min(read, time left)``
    while it has a deadline (:meth:`start`; without one, the socket's own timeout holds)."""

    def __init__(self, sock: Any, deadline: Deadline | None) -> None:
        super().__init__()
        self._raw = sock.makefile("rb", buffering=0)  # shares the socket's reference count
        self._sock = sock
        self._deadline = deadline
        self._timeout: float | None = None

    def start(self, deadline: Deadline | None) -> None:
        """The next response's deadline (the socket's timeout may have been set since)."""
        self._deadline = deadline
        self._timeout = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        deadline = self._deadline
        if deadline is None:
            return self._raw.readinto(buffer)  # type: ignore[no-any-return]
        left = deadline.left()
        limited = left < deadline.read
        timeout = left if limited else deadline.read
        if timeout != self._timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout
        try:
            return self._raw.readinto(buffer)  # type: ignore[no-any-return]
        except TimeoutError:
            if limited:
                raise RequestDeadlineExceeded(f"no whole response within {deadline.total:g} s") from None
            raise

    def fileno(self) -> int:
        return self._raw.fileno()  # type: ignore[no-any-return]

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _SocketWithDeadline:
    """What ``http.client.HTTPResponse`` is given instead of the socket: it only calls
    ``makefile("rb")``, and gets a buffered :class:`DeadlineReader`."""

    __slots__ = ("_sock", "_deadline")

    def __init__(self, sock: Any, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *_args: Any, **_kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(DeadlineReader(self._sock, self._deadline))


class BoundedHTTPResponse(http.client.HTTPResponse):
    """``http.client``'s response, reading through a :class:`DeadlineReader` while the
    thread's request has a deadline (status line, headers and body alike)."""

    def __init__(self, sock: Any, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None) -> None:
        deadline = _active.deadline
        if deadline is not None:
            sock = _SocketWithDeadline(sock, deadline)
        super().__init__(sock, debuglevel, method, url)


def _connect(base: Any) -> Callable[[Any], None]:
    def connect(self: Any) -> None:
        deadline = _active.deadline
        if deadline is not None:
            left = deadline.left()
            if self.timeout is None or self.timeout > left:
                self.timeout = left
        base.connect(self)

    return connect


def _send(base: Any) -> Callable[[Any, Any], None]:
    def send(self: Any, data: Any) -> None:
        deadline = _active.deadline
        if deadline is not None and self.sock is not None:
            left = deadline.left()
            self.sock.settimeout(left if self.timeout is None else min(self.timeout, left))
        base.send(self, data)

    return send


def bounded_connection(base: type) -> type:
    """A subclass of the ``http.client``-based connection class *base* whose connect, sends
    and response reads all hold the thread's request deadline."""
    return type(base.__name__, (base,), {  # the same name: it shows in the library's messages
        "response_class": BoundedHTTPResponse, "connect": _connect(base), "send": _send(base)})



# --- the body ---------------------------------------------------------------------------

class RawResponse(Protocol):
    """What :func:`read_body` needs of a response: urllib3's ``HTTPResponse`` (requests'
    ``Response.raw`` is one)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes: ...

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


def too_large(limit: int) -> ResponseFormatError:
    return ResponseFormatError(f"the response body exceeds max_response_bytes ({limit} bytes)")


def read_body(raw: RawResponse, limit: int, deadline: Deadline | None) -> bytes:
    """The decoded body of *raw*, at most *limit* bytes (else ``ResponseFormatError``).
    On any failure the connection is closed, never reused with unread bytes on it."""
    try:
        return capped_body(raw.headers, limit, deadline,
                           lambda n: raw.read(n, decode_content=False))
    except BaseException:
        raw.close()
        raw.release_conn()
        raise


def capped_body(headers: Mapping[str, str], limit: int, deadline: Deadline | None,
                read: Callable[[int | None], bytes]) -> bytes:
    """The decoded body of a response with *headers* (looked up by lower-case name), read
    by ``read(n)`` (up to *n* raw bytes; ``b""`` at the end; ``read(None)``: the rest), at
    most *limit* bytes (else ``ResponseFormatError``), checking *deadline* between reads."""
    # ("in" first: a missing key costs urllib3's get() an exception)
    encodings = content_encodings(headers["content-encoding"]) if "content-encoding" in headers else None
    if not encodings and "transfer-encoding" not in headers and "content-length" in headers:
        length = headers["content-length"]
        if not length.isascii():  # "\xb2" passes isdigit(), not int(): never a length
            raise TransportError("invalid HTTP response: invalid Content-Length header", kind="protocol")
        if length.isdigit():  # one plain length: read it at once
            if int(length) > limit:
                raise too_large(limit)
            return read(None)
    decoder = Decoder(encodings) if encodings else None
    parts: list[bytes] = []
    size = received = 0
    while True:
        if deadline is not None:
            deadline.left()  # also with transports whose sockets do not hold it
        data = read(CHUNK)
        received += len(data)
        if decoder is not None:
            size += decoder.decode(data, limit - size + 1, parts)
        elif data:
            parts.append(data)
            size += len(data)
        if size > limit or received > limit:
            raise too_large(limit)
        if not data:
            return b"".join(parts)


def content_encodings(header: str) -> list[str]:
    """The codings of a ``Content-Encoding`` header, in the order they were applied."""
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > MAX_ENCODINGS or any(c not in ("gzip", "x-gzip", "deflate") for c in codings):
        raise TransportError(f"unsupported Content-Encoding {header[:40]!r}", kind="protocol")
    return codings


class _Inflater:
    """One gzip or deflate coding, decoded at most *n* bytes at a time (:meth:`pull`)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = coding != "deflate"
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        self._tail = b""  # input not decoded yet
        self._start: bytes | None = None if self._gzip else b""  # deflate: zlib or raw?
        self._members = 0
        self._done = False

    def feed(self, data: bytes) -> None:
        if self._start is not None:
            self._start += data
        self._tail = self._tail + data if self._tail else data

    def pull(self, n: int) -> bytes:
        """Up to *n* decoded bytes; ``b""`` when what was fed gives no more."""
        while not self._done:
            data, self._tail = self._tail, b""
            try:
                out = self._obj.decompress(data, n)
            except zlib.error:
                if self._start is not None:  # not zlib-wrapped: raw deflate, from the start
                    self._obj, self._tail = zlib.decompressobj(-zlib.MAX_WBITS), self._start
                    self._start = None
                    continue
                if self._members:  # trailing garbage after a gzip member: ignored, as others do
                    self._done = True
                    return b""
                raise TransportError(f"invalid {self.coding} response body", kind="protocol") from None
            if out or (self._start is not None and len(self._start) > 2):
                self._start = None  # the zlib header was accepted
            self._tail = self._obj.unconsumed_tail
            if self._obj.eof:
                rest, self._members = self._obj.unused_data, self._members + 1
                if self._gzip and rest:  # another gzip member follows
                    self._obj, self._tail = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
                else:
                    self._done = True
            if out or not self._tail:
                return out
        return b""


class Decoder:
    """Stacked codings, pulled through one after the other so that no stage produces more
    than is asked of it."""

    def __init__(self, encodings: list[str]) -> None:
        self._stages = [_Inflater(c) for c in reversed(encodings)]

    def decode(self, data: bytes, limit: int, into: list[bytes]) -> int:
        """Append what *data* (``b""``: the end) decodes to, at most *limit* bytes, to
        *into*; return how many bytes were appended."""
        if data:
            self._stages[0].feed(data)
        size = 0
        while size < limit:
            piece = self._pull(len(self._stages) - 1, min(limit - size, CHUNK))
            if not piece:
                break
            into.append(piece)
            size += len(piece)
        return size

    def _pull(self, i: int, n: int) -> bytes:
        stage = self._stages[i]
        while True:
            out = stage.pull(n)
            if out or i == 0:
                return out
            more = self._pull(i - 1, CHUNK)
            if not more:
                return b""
            stage.feed(more)



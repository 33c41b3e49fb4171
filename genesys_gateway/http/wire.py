"""HTTP/1.1 framing for the urllib3 transport's direct path (:mod:`.direct`): a request's
head encoded in one piece, and a response's head and body read from a buffered socket
reader.

What http.client and urllib3 do per request and the SDK does not need (a header object
built by the ``email`` parser, a ``putheader`` call and its two regular-expression checks
per header, a response object of each library) is left out; what they check is kept. A
request these functions cannot encode exactly as http.client would (an unusual header
name, a value that is not a plain ``str`` or carries a line break, a ``Content-Length`` or
``Transfer-Encoding`` of the caller's) gets ``None`` from :func:`encode_head`: the
transport then sends it through urllib3, which sends or refuses it as before. Response
failures raise http.client's own exceptions (``RemoteDisconnected``, ``BadStatusLine``,
``IncompleteRead``, ``LineTooLong``), so that the transport's exception table classifies
them as it does urllib3's.
"""

from __future__ import annotations

import http.client
import re
from typing import Callable, Mapping, Protocol

__all__ = ["Buffered", "BodyReader", "encode_head", "read_head", "reusable"]

MAX_LINE = 65536  # http.client's limits
MAX_HEADERS = 100

class Buffered(Protocol):
    """What the response is read from: an ``io.BufferedReader`` over the socket."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...

    def read1(self, size: int = ..., /) -> bytes: ...

    def readline(self, size: int | None = ..., /) -> bytes: ...


#: http.client's rule for a header name (``_is_legal_header_name``), on ``str``.
_legal_name = re.compile(r"[^:\s][^:\r\n]*\Z").match
#: Valid names seen, by their lower-case form (names repeat: checked once each).
_names: dict[str, str] = {}
#: Caller headers that change the framing: such requests go through urllib3.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
#: Methods whose request carries ``Content-Length: 0`` without a body (as http.client's).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _lower_name(name: object) -> str | None:
    """*name* in lower case when http.client would send it; else ``None``."""
    if type(name) is not str or not name.isascii() or not _legal_name(name):
        return None
    lower = name.lower()
    if len(_names) < 1024:
        _names[name] = lower
    return lower


def encode_head(method: str, target: str, host: str, headers: Mapping[str, str],
                body: bytes | None, user_agent: str) -> bytes | None:
    """The request line and headers of a request, as urllib3 sends them (``Host`` and
    ``Accept-Encoding: identity`` unless given, urllib3's ``User-Agent`` unless given,
    ``Content-Length``), or ``None`` when urllib3 should send it (see the module's text)."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    seen = set()
    names = _names
    for name, value in headers.items():
        lower = names.get(name) or _lower_name(name)
        if lower is None or type(value) is not str:
            return None
        seen.add(lower)
        lines.append(f"{name}: {value}\r\n")
    if "host" not in seen:
        lines.append(f"Host: {host}\r\n")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: identity\r\n")
    if "user-agent" not in seen:
        lines.append(f"User-Agent: {user_agent}\r\n")
    if not seen.isdisjoint(_FRAMING):
        return None
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif method in _BODY_METHODS:
        lines.append("Content-Length: 0\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    # every line break is one of the lines' own: no value (or target) carries one
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        return None
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _line(fp: Buffered, what: str) -> bytes:
    line = fp.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong(what)
    return line


def read_head(fp: Buffered) -> tuple[int, int, dict[str, str]]:
    """The response's HTTP version (10 or 11), status and headers (lower-case names;
    repeated ones joined with ``", "``), after any interim ``1xx`` responses."""
    while True:
        # Most heads arrive whole in one receive: split at once what is already buffered.
        buffered = fp.peek(1)
        end = buffered.find(b"\r\n\r\n")
        if 0 <= end < MAX_LINE and buffered.count(b"\n", 0, end) == buffered.count(b"\r\n", 0, end):
            lines = str(fp.read(end + 4), "iso-8859-1").split("\r\n")[:-2]
            if len(lines) > MAX_HEADERS + 1:
                raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
            version, status = _status(lines[0])
            headers = _headers(lines[1:])
        else:
            line = _line(fp, "status line")
            if not line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            version, status = _status(str(line, "iso-8859-1"))
            headers = _read_headers(fp)
        if status >= 200 or status == 101:
            return version, status, headers


def _status(line: str) -> tuple[int, int]:
    """The HTTP version (10 or 11) and the status of a status line (as http.client checks it)."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] == "0":
        raise http.client.BadStatusLine(line)
    version = parts[0]
    if not version.startswith("HTTP/1."):
        raise http.client.UnknownProtocol(version)
    return (10 if version == "HTTP/1.0" else 11), int(code)


def _read_headers(fp: Buffered) -> dict[str, str]:
    lines: list[str] = []
    for _ in range(MAX_HEADERS + 1):
        line = _line(fp, "header line")
        if line in (b"\r\n", b"\n", b""):
            return _headers(lines)
        lines.append(str(line, "iso-8859-1").rstrip("\r\n"))
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for line in lines:
        if line[:1] in (" ", "\t"):  # a folded continuation of the previous header
            if last is not None:
                headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue  # not a header line (http.client's parser records a defect and goes on)
        last = name.strip().lower()
        value = value.strip()
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    return headers


def reusable(version: int, headers: Mapping[str, str]) -> bool:
    """Whether the connection may carry another request after this response (read whole)."""
    connection = headers.get("connection")
    if version == 11:
        return connection is None or "close" not in connection.lower()
    return connection is not None and "keep-alive" in connection.lower()


class BodyReader:
    """A response body framed by its headers: ``read(n)`` gives up to *n* bytes (``b""`` at
    its end), ``read(None)`` the rest. ``whole`` is set once the body was read to its end
    on a connection that may be reused (a body read to the socket's end is not)."""

    __slots__ = ("_fp", "_left", "_chunked", "_to_eof", "whole")

    def __init__(self, fp: Buffered, method: str, status: int, headers: Mapping[str, str]) -> None:
        self._fp = fp
        self._chunked = self._to_eof = False
        self.whole = False
        self._left = 0
        if method == "HEAD" or status in (204, 304) or status < 200:
            self.whole = status != 101  # after a 101 the connection speaks another protocol
        elif "transfer-encoding" in headers and _is_chunked(headers["transfer-encoding"]):
            self._chunked = True
        elif "content-length" in headers:
            self._left = _content_length(headers["content-length"])
            self.whole = self._left == 0
        else:
            self._to_eof = True

    def read(self, n: int | None = None) -> bytes:
        if self._chunked:
            if n is not None:
                return self._read_chunked(n)
            parts = []
            while self._chunked:
                parts.append(self._read_chunked(MAX_LINE))
            return b"".join(parts)
        if self._to_eof:
            return self._fp.read() if n is None else self._fp.read1(n)
        left = self._left
        if not left:
            return b""
        want = left if n is None or n > left else n
        data = self._fp.read(want)
        if len(data) < want:
            raise http.client.IncompleteRead(data, left - len(data))
        self._left = left - want
        self.whole = self._left == 0
        return data

    def read1(self, n: int) -> bytes:
        """Up to *n* bytes of what has arrived, waiting for one receive only when nothing
        is buffered (``b""`` at the body's end): a streamed body's pieces are handed over
        as they arrive, never held back to fill a buffer or to complete a chunk."""
        if self._chunked:
            return self._read_chunked(n, self._fp.read1)
        if self._to_eof:
            return self._fp.read1(n)
        left = self._left
        if not left:
            return b""
        data = self._fp.read1(left if n > left else n)
        if not data:
            raise http.client.IncompleteRead(data, left)
        self._left = left - len(data)
        self.whole = self._left == 0
        return data

    def _read_chunked(self, n: int, read: Callable[[int], bytes] | None = None) -> bytes:
        fp = self._fp
        if not self._left:
            line = _line(fp, "chunk size")
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if size < 0:
                raise http.client.IncompleteRead(b"")
            if size == 0:
                while _line(fp, "trailer line") not in (b"\r\n", b"\n", b""):
                    pass
                self._chunked = False
                self.whole = True
                return b""
            self._left = size
        want = self._left if n > self._left else n
        data = (read or fp.read)(want)
        if not data or (read is None and len(data) < want):
            raise http.client.IncompleteRead(data, self._left - len(data))
        self._left -= len(data)
        if not self._left and _line(fp, "chunk end") not in (b"\r\n", b"\n"):
            raise http.client.IncompleteRead(b"")
        return data


def _is_chunked(value: str) -> bool:
    """Whether a ``Transfer-Encoding`` value says ``chunked``, as http.client reads it (its
    first line only, exactly ``chunked``). Repeated lines arrive here joined with ``", "``:
    ``chunked`` repeated is still chunked, else the body would be read to the connection's
    end (a kept-alive connection: until the read timeout)."""
    return value == "chunked" or {c.strip().lower() for c in value.split(",")} == {"chunked"}


def _content_length(value: str) -> int:
    """A ``Content-Length`` value (repeated equal values accepted)."""
    if value.isdigit() and value.isascii():
        return int(value)
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise http.client.HTTPException("conflicting Content-Length headers")
    text = values.pop()
    if not (text.isascii() and text.isdigit()):  # "\xb2" passes isdigit(), not int()
        raise http.client.HTTPException("invalid Content-Length header")
    return int(text)

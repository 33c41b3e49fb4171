"""The raw-socket floor: how far the SDK is from the least the job can cost in Python.

``http.client`` (the issue's floor, :mod:`benchmarks.baselines.floor`) is not free: on Python
3.11 it sends the headers and the body in two ``send`` calls, builds the headers line by
line and parses the reply's headers with the ``email`` package. This contestant skips all
of that, as the SDK's own transport partly does:

* a plain turn: the same request bytes as the http.client floor (same JSON, same headers,
  a fresh ``Idempotency-Key``) written with one ``sendall`` on a keep-alive ``TCP_NODELAY``
  socket; a minimal reader of the status line, the headers (``Content-Length`` or
  ``Transfer-Encoding: chunked``) and the body; ``json.loads``;
* the tool loop: a hand loop on that socket (instant tools inline, sleeping ones a
  ``threading.Thread`` each), no validation, no timeouts;
* the throughput test: one socket per thread.

It is informational (no target is set against it). It does not stream (a second minimal
SSE reader would measure the reader, not a library). Standard library only.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from typing import Any, Callable
from urllib.parse import urlsplit

from benchmarks.baselines.floor import USER_AGENT, hand_loop, request_body
from benchmarks.scenarios import MODEL, PLAIN_MESSAGES, TOOL_SCENARIOS, handlers


def versions() -> dict[str, str]:
    return {}


class RawConnection:
    """One keep-alive socket and the bytes read past the last response."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    @classmethod
    def open(cls, address: tuple[str, int]) -> RawConnection:
        sock = socket.create_connection(address, timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head, self.buf = self.buf[:end].lower(), self.buf[end + 4:]
        status = int(head[9:12])
        if b"transfer-encoding: chunked" in head:
            return status, self._chunked()
        at = head.find(b"content-length:")
        if at < 0:
            raise ValueError("a response with neither Content-Length nor chunked framing")
        eol = head.find(b"\r\n", at)
        length = int(head[at + 15:eol if eol >= 0 else len(head)])
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while (eol := self.buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(self.buf[:eol].split(b";")[0], 16)
            while len(self.buf) < eol + 2 + size + 2:
                self._fill()
            if size == 0:  # no trailers from the emulator: the last chunk's CRLF ends the body
                self.buf = self.buf[eol + 4:]
                return b"".join(parts)
            parts.append(self.buf[eol + 2:eol + 2 + size])
            self.buf = self.buf[eol + 2 + size + 2:]

    def close(self) -> None:
        self.sock.close()


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        parts = urlsplit(env["url"])
        assert parts.hostname is not None and parts.port is not None
        self.address = (parts.hostname, parts.port)
        self.prefix = (f"POST {env['chat_path']} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                       "Accept-Encoding: identity\r\nContent-Type: application/json\r\n"
                       f"Accept: application/json\r\nUser-Agent: {USER_AGENT}\r\n"
                       f"Authorization: Bearer {env['token']}\r\nIdempotency-Key: ").encode("latin-1")
        self.conn = RawConnection.open(self.address)
        self.handlers = {scenario: handlers(scenario) for scenario in TOOL_SCENARIOS}

    def post(self, conn: RawConnection, payload: dict[str, Any]) -> dict[str, Any]:
        body = request_body(payload)
        status, data = conn.exchange(b"".join((self.prefix, os.urandom(16).hex().encode(), b"\r\nContent-Length: ",
                                               str(len(body)).encode(), b"\r\n\r\n", body)))
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {data[:200]!r}")
        message: dict[str, Any] = json.loads(data)["choices"][0]["message"]
        return message

    def plain(self, conn: RawConnection | None = None) -> Any:
        return self.post(conn or self.conn, {"model": MODEL, "messages": PLAIN_MESSAGES})["content"]

    def tools(self, scenario: str) -> str:
        return hand_loop(functools.partial(self.post, self.conn), self.handlers[scenario], scenario)

    def thread_caller(self) -> Callable[[], Any]:
        conn = RawConnection.open(self.address)  # one socket per thread
        return lambda: self.plain(conn)

    def close(self) -> None:
        self.conn.close()

"""HTTP/1.1 plumbing of :class:`GatewayEmulator`: the threaded server and request handler.

The handler only reads requests and writes responses; what to answer is decided by a
``dispatch(Incoming) -> Outgoing`` callable (the emulator). Design points:

* HTTP/1.1 keep-alive, ``Content-Length`` on every response, status line + headers + body in
  one ``send`` and ``TCP_NODELAY`` (no Nagle / delayed-ACK stalls), no logging to stderr.
* Every accepted connection gets an id and is tracked with its thread, so :meth:`close` can
  shut idle keep-alive sockets down and join every handler thread: nothing is left behind.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable, Optional, Union, cast

import attrs

__all__ = ["EmulatorServer", "Incoming", "Outgoing", "may_keep_alive"]

logger = logging.getLogger("genesys_gateway.testing")

#: Bodies larger than this are not even read: the emulator answers 413 and closes.
HARD_BODY_LIMIT = 16 * 1024 * 1024

class _Writing(threading.local):
    keep_alive = False  # a class default: set only while a handler thread runs a writer


_writing = _Writing()


def may_keep_alive() -> bool:
    """For an :class:`Outgoing` ``writer``, while it runs: whether the request lets the
    connection stay open after the answer (HTTP/1.1, no ``Connection: close``). A writer
    that then frames its whole answer (chunked) and leaves out ``Connection: close`` may
    return ``True`` to keep the connection for the next request."""
    return _writing.keep_alive


#: What ``socketserver`` hands a server per request: the connected socket for stream
#: servers such as this one (``(data, socket)`` for datagram servers).
_Request = Union[socket.socket, tuple[bytes, socket.socket]]


@attrs.frozen
class Incoming:
    """One request as read off the wire (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection_id: int
    body_too_large: bool = False


@attrs.frozen
class Outgoing:
    """What to answer: a response, ``drop=True`` to close the socket without one, or a
    ``writer`` that writes the whole response to the socket itself (then the connection is
    closed, unless the writer returns ``True``: see :func:`may_keep_alive`)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False
    close: bool = False
    writer: Optional[Callable[[socket.socket], Optional[bool]]] = None


def _socket_of(request: _Request) -> socket.socket:
    return request if isinstance(request, socket.socket) else request[1]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "GatewayEmulator"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's per-request stderr logging."""

    def _read_body(self) -> tuple[bytes, bool]:
        """(body, too_large). Handles Content-Length and chunked transfer encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b"", False
        length = int(length_header)  # ValueError handled by the caller
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > HARD_BODY_LIMIT:
            return b"", True
        return self.rfile.read(length), False

    def _read_chunked(self) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts), False
            total += size
            if total > HARD_BODY_LIMIT:
                return b"", True
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _handle(self) -> None:
        try:
            body, too_large = self._read_body()
        except ValueError:
            self._write(Outgoing(400, b'{"message":"invalid request framing","code":"bad.request",'
                                      b'"status":400,"details":[],"errors":[]}', close=True))
            return
        server = cast(EmulatorServer, self.server)  # the only server this handler is made for
        incoming = Incoming(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            connection_id=server.connection_id_of(_socket_of(self.request)),
            body_too_large=too_large,
        )
        try:
            out = server.dispatch(incoming)
        except Exception as exc:  # an emulator bug: answer it rather than drop the connection
            logger.debug("GatewayEmulator dispatch failed", exc_info=True)
            message = f"emulator error: {type(exc).__name__}"
            out = Outgoing(500, ('{"message":"%s","code":"internal.server.error","status":500,'
                                 '"details":[],"errors":[]}' % message).encode(),
                           (("Content-Type", "application/json"),))
        if out.writer is not None:
            keep = not self.close_connection and self.request_version == "HTTP/1.1"
            self.close_connection = True  # unless the writer says otherwise (and may)
            _writing.keep_alive = keep
            try:
                kept = out.writer(self.connection)
            finally:
                _writing.keep_alive = False
            self.close_connection = not (keep and kept is True)
            return
        if out.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if too_large:
            out = attrs.evolve(out, close=True)
        self._write(out)

    def _write(self, out: Outgoing) -> None:
        if out.close:
            self.close_connection = True
        lines = [f"HTTP/1.1 {out.status} {_reason(out.status)}"]
        for name, value in out.headers:
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(out.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + out.body)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle


class EmulatorServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that tracks its connections and their threads."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of clients connecting together
    # (forked workers, stress tests), which then retry only after a second.
    request_queue_size = 128

    if TYPE_CHECKING:
        # socketserver.BaseServer's step of serve_forever() and handle_request(): accept one
        # ready connection and process it. Present at runtime, absent from typeshed.
        def _handle_request_noblock(self) -> None: ...

    def __init__(self, address: tuple[str, int], dispatch: Callable[[Incoming], Outgoing]) -> None:
        host, port = address[0], address[1]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise OSError(errno.EINVAL,
                          f"invalid port {port!r}: use 0 to 65535 (0 picks a free one)")
        if not isinstance(host, str):
            raise OSError(errno.EINVAL, f"invalid host {host!r}: expected a string")
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.dispatch = dispatch
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, tuple[int, threading.Thread]] = {}
        self.connections_opened = 0
        self._stopping = False
        # before binding: a failed bind calls server_close(), which closes these too
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__(address, _Handler)  # a bind failure raises its OSError as-is

    def serve(self) -> None:
        """Accept connections until :meth:`stop`; unlike ``serve_forever`` it stops at once
        (a wake-up socket instead of a poll interval), so closing an emulator costs nothing."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                ready = selector.select()
                if self._stopping or any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                self._handle_request_noblock()

    def stop(self) -> None:
        """Make :meth:`serve` return (from any thread)."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def connection_id_of(self, sock: socket.socket) -> int:
        entry = self._connections.get(sock)
        return entry[0] if entry else 0

    def process_request(self, request: _Request, client_address: object) -> None:
        """Start one daemon thread per connection, registered before it starts."""
        with self._lock:
            self.connections_opened += 1
            conn_id = self.connections_opened
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name=f"GatewayEmulator-conn-{conn_id}",
                daemon=True,
            )
            self._connections[_socket_of(request)] = (conn_id, thread)
        thread.start()

    def process_request_thread(self, request: _Request, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(_socket_of(request), None)

    def handle_error(self, request: _Request, client_address: object) -> None:
        """Connection errors (a client going away, shutdown) are not worth a traceback."""
        logger.debug("emulator connection error from %s", client_address, exc_info=True)

    def close_connections(self, timeout: float = 2.0) -> list[threading.Thread]:
        """Shut every open connection down and join its thread; return threads still alive."""
        with self._lock:
            entries = list(self._connections.items())
        for sock, _ in entries:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        alive: list[threading.Thread] = []
        for _, (_, thread) in entries:
            thread.join(timeout)
            if thread.is_alive():
                alive.append(thread)
        return alive


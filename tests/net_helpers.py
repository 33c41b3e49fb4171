"""Loopback network helpers shared by the tests: free ports and misbehaving servers."""

from __future__ import annotations

import selectors
import socket
import struct
import threading

__all__ = ["free_port", "RawServer", "full_backlog_listener"]


def free_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawServer:
    """A loopback TCP server that reads each request head and then misbehaves.

    *behaviour* is ``"close"`` (close without answering), ``"reset"`` (abort with a TCP
    RST), ``"stall"`` (send a status line and headers promising a body, then send nothing
    until the server closes), ``"bad_status"`` (answer a line that is not an HTTP status
    line), ``"truncate"`` (promise 10 body bytes, send 2, close), ``"truncate_chunked"``
    (a chunked body cut inside its first chunk) or ``"not_tls"`` (answer plain HTTP at once,
    before any request: what a TLS client gets from a plain server). Use as a context manager;
    :attr:`url` is its base URL. Closing stops every handler at once (stalls included).
    """

    BEHAVIOURS = ("close", "reset", "stall", "bad_status", "truncate", "truncate_chunked", "not_tls")

    def __init__(self, behaviour: str) -> None:
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        self._accepter.join(5)
        for conn in self._conns:  # wakes a handler still waiting for a request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                ready = selector.select()
                if self._stop.is_set() or any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                conn, _ = self._listener.accept()
                self._conns.append(conn)
                thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if self.behaviour == "not_tls":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                conn.settimeout(5)
                try:  # read until the client gives up: closing on unread bytes would reset
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            if self.behaviour == "reset":  # SO_LINGER 0: close() sends RST, not FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.behaviour == "stall":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                self._stop.wait()
            elif self.behaviour == "bad_status":
                conn.sendall(b"NOT-HTTP garbage\r\n\r\n")
            elif self.behaviour == "truncate":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
            elif self.behaviour == "truncate_chunked":
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}")


def full_backlog_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener that never accepts, its accept queue filled by pending connections: the
    kernel drops further SYNs, so a new connection to it times out (a real connect
    timeout on loopback). Returns the listener and the fillers; close them all."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    return listener, fillers
